"""A1111's PNG Info: the generation text an image carries, and its fields as A1111 reads them.

A PNG carries it in a ``parameters`` text chunk (what sdrest and A1111 write); a JPEG or WebP from A1111 in the
EXIF ``UserComment``. The fields come back as A1111's ``parse_generation_parameters`` gives them: ``Prompt``,
``Negative prompt``, each ``Key: value`` of the last line as a string, and a size split into ``Size-1`` and
``Size-2``.
"""

from __future__ import annotations

import re
from typing import Any

from PIL import Image

from sdrest.infotext import parse_infotext

__all__ = ["generation_text", "other_texts", "parse_parameters"]

_EXIF_IFD, _USER_COMMENT = 0x8769, 0x9286
_SIZE = re.compile(r"^(\d+)x(\d+)$")


def _user_comment(image: Image.Image) -> str | None:
    raw = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if isinstance(raw, str):
        return raw or None
    if not isinstance(raw, bytes) or len(raw) <= 8:
        return None
    prefix, data = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        for codec in ("utf-16-be", "utf-16-le"):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                continue
            if text.isprintable() or "\n" in text:
                return text
        return None
    return data.decode("utf-8", errors="replace").strip("\x00") or None


def generation_text(image: Image.Image) -> str | None:
    """The image's generation text: the ``parameters`` chunk, else the EXIF user comment; None without one."""
    text = image.info.get("parameters")
    if isinstance(text, str) and text:
        return text
    try:
        return _user_comment(image)
    except Exception:  # a malformed EXIF block is no text at all  # noqa: BLE001
        return None


def other_texts(image: Image.Image) -> dict[str, str]:
    """The image's other text chunks (A1111's ``items``)."""
    return {k: v for k, v in image.info.items() if isinstance(k, str) and isinstance(v, str) and k != "parameters"}


def parse_parameters(text: str) -> dict[str, Any]:
    """The fields of a generation text as A1111 reads them."""
    fields = parse_infotext(text)
    out: dict[str, Any] = {"Prompt": fields.pop("prompt", ""), "Negative prompt": fields.pop("negative_prompt", "")}
    for key, value in fields.items():
        size = _SIZE.match(value)
        if size:
            out[f"{key}-1"], out[f"{key}-2"] = size.group(1), size.group(2)
        else:
            out[key] = value
    return out
