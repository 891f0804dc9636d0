"""Image inputs: base64, ``data:`` URLs or (when the server allows) http(s) URLs of PNG, JPEG or WebP only,
checked for size before they are decoded.

The format is told by the first bytes, and Pillow is asked to open that format alone: the many other formats
it can read (and their parsers' bugs) are never reached from a request.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from PIL import Image

from sdrest.server.errors import ApiError, invalid
from sdrest.server.urlfetch import UrlFetcher, UrlFetchError

#: Pillow's format name -> the media type clients know it by
ALLOWED_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def sniff_format(data: bytes) -> str | None:
    """``"PNG"``, ``"JPEG"`` or ``"WEBP"`` from the file signature; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


#: the answer to an image URL when the server does not fetch them
URLS_DISABLED = ("URL downloads are not enabled on this server (an admin enables them with the setting url_images: "
                 "--url-images, or SDREST_URL_IMAGES=1)")


def is_url(value: str) -> bool:
    """Whether ``value`` is an http(s) URL rather than base64 or a data URL."""
    return value[:8].lower().startswith(("http://", "https://"))


def _bytes_of(value: Any, field: str, urls: UrlFetcher | None) -> bytes:
    if not isinstance(value, str) or not value:
        raise invalid(field, "expected a base64 image or a data URL")
    if is_url(value):
        if urls is None:
            raise invalid(field, f"{URLS_DISABLED}; send the image as base64")
        try:
            return urls(value).data
        except UrlFetchError as exc:
            raise invalid(field, str(exc)) from None
    if value.startswith("data:"):
        header, _, value = value.partition(",")
        if ";base64" not in header:
            raise invalid(field, "only base64 data URLs are accepted")
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise invalid(field, "not valid base64") from None


def decode_image(value: Any, field: str, max_pixels: int, urls: UrlFetcher | None = None) -> Image.Image:
    """A base64 string, ``data:`` URL or (with ``urls``, the server's fetcher) http(s) URL as a loaded
    RGB(A)/L image.

    415 naming ``field`` for a format other than PNG, JPEG or WebP; 422 for anything unreadable or larger
    than ``max_pixels``, and for a URL without ``urls`` or one refused or failed (:mod:`sdrest.server.urlfetch`).
    Blocking (fetching and decoding take time): call it from a worker thread in async code.
    """
    raw = _bytes_of(value, field, urls)
    fmt = sniff_format(raw)
    if fmt is None:
        raise ApiError(415, f"{field}: not a PNG, JPEG or WebP image", field=field, code="unsupported_media_type")
    try:
        img = Image.open(io.BytesIO(raw), formats=[fmt])
        width, height = img.size
        if width * height > max_pixels:
            raise invalid(field, f"the image is {width}x{height}, more than {max_pixels} pixels")
        img.load()
    except ApiError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise invalid(field, f"not a readable {fmt} image ({exc})") from None
    return img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else ("L" if img.mode in ("L", "1") else "RGB"))
