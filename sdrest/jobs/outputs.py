"""Output files: PNGs that carry their generation parameters (A1111's ``parameters`` chunk), thumbnails."""

from __future__ import annotations

import os
import re
from pathlib import Path

from PIL import Image

# The writers live in the library layer (the CLI and scripts use them too); re-exported under the old names.
from sdrest.imagefiles import save_png
from sdrest.infotext import infotext as a1111_parameters
from sdrest.infotext import parse_infotext as parse_a1111_parameters

__all__ = ["a1111_parameters", "parse_a1111_parameters", "safe_name", "save_png", "thumbnail"]

#: Job ids and output names are ``[A-Za-z0-9_-]`` (+ one extension): nothing can walk out of the data dir.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}(\.[a-z0-9]{1,8})?$")


def safe_name(name: str) -> bool:
    """True for a plain file or id name (no separators, no dots but one extension)."""
    return bool(_SAFE_NAME.match(name))


def thumbnail(source: Path, cache_dir: Path, size: int) -> Path:
    """A cached thumbnail (longest side ``size``) of ``source``, made once."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{source.stem}.{size}.webp"
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    with Image.open(source) as img:
        img.thumbnail((size, size))
        partial = target.with_name(f".{target.name}.partial")
        img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB").save(partial, format="WEBP")
    os.replace(partial, target)
    return target
