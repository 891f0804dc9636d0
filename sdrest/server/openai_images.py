"""The pixel work of the OpenAI dialect: OpenAI's masks to ours, sizes, and the output formats it asks for.

OpenAI marks what to redraw with *transparent* pixels (alpha 0) of the mask, or of the image itself when no mask
is sent; our inpainting takes a grey mask where *white* is redrawn. Outputs are PNG files; a request may ask for
JPEG or WebP, re-encoded here with ``output_compression`` as the quality.
"""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageOps

#: the output formats a request may ask for -> Pillow's name and the media type
OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
#: a side of every image we generate is a multiple of this
SIDE_STEP = 8


def alpha_of(image: Image.Image) -> Image.Image | None:
    """The alpha channel (mode ``L``) of an image that has one; None for an opaque mode (RGB, L)."""
    if image.mode in ("RGBA", "LA", "PA"):
        return image.getchannel("A")
    return None


def is_transparent_somewhere(alpha: Image.Image) -> bool:
    """Whether an alpha channel has a pixel that is not fully opaque."""
    low, _ = alpha.convert("L").getextrema()
    return int(low) < 255  # type: ignore[arg-type]  # one band: (min, max) of ints


def redraw_mask(alpha: Image.Image) -> Image.Image:
    """Our mask (white: redraw) from an OpenAI alpha channel (transparent: redraw); partial transparency stays
    partial."""
    return ImageOps.invert(alpha.convert("L"))


def auto_size(image: Image.Image) -> tuple[int, int]:
    """The size an edit of ``image`` gets when the request says ``auto``: its own, each side rounded down to a
    multiple of 8 (what the models take)."""
    return image.width // SIDE_STEP * SIDE_STEP, image.height // SIDE_STEP * SIDE_STEP


def fit(image: Image.Image, size: tuple[int, int], resample: Image.Resampling = Image.Resampling.LANCZOS
        ) -> Image.Image:
    """``image`` at ``size`` (stretched, as OpenAI's edits are), or itself when it has that size already."""
    if image.size == size or min(size) < 1:
        return image
    return image.resize(size, resample)


def png_base64(image: Image.Image) -> str:
    """An image as base64 PNG, the form the request parser takes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def encode_output(png: bytes, output_format: str, quality: int) -> bytes:
    """A PNG output in ``output_format`` (png, jpeg or webp); ``quality`` (0-100) for the lossy two.

    A PNG asked for as PNG is returned as it is, with its ``parameters`` text chunk."""
    pillow_name, _ = OUTPUT_FORMATS[output_format]
    if pillow_name == "PNG":
        return png
    with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format=pillow_name, quality=quality)
    return buffer.getvalue()
