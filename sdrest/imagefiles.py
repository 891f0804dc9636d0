"""Writing generated images: output names from a pattern, and atomic writes that carry the parameters.

Names follow sd.cpp's CLI so a user's ``-o`` means the same: ``out_%03d.png`` is a
printf pattern over the image index, ``out.png`` with several images becomes
``out_0.png, out_1.png ...``, an unknown extension gets ``.png`` appended. sdrest also
takes ``{seed}`` and ``{index}`` fields (``cat-{seed}.png``). Files are written under a
temporary name and renamed, so an interrupted write leaves nothing half-done.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from PIL import Image, PngImagePlugin

__all__ = ["IMAGE_SUFFIXES", "has_pattern", "output_paths", "save_image", "save_png", "save_webp_animation",
           "write_all"]

#: Extensions written as they are; any other gets ``.png`` appended, as sd.cpp's CLI does.
IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
#: sd.cpp's CLI's printf specifier: ``%d``, ``%03d`` ... (``%%`` escapes a percent sign).
_PRINTF = re.compile(r"(?:[^%]|^)(?:%%)*(%(\d{0,3})d)")
_FIELDS = re.compile(r"\{(seed|index)(:[^}]*)?\}")
#: EXIF tag of the Exif IFD and its UserComment, where A1111 keeps the parameters of JPEG and WebP files.
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286


def has_pattern(path: str) -> bool:
    """True when ``path`` names one file per image (a ``%d`` specifier or a ``{seed}``/``{index}`` field)."""
    return bool(_PRINTF.search(path) or _FIELDS.search(path))


def _printf(pattern: str, index: int) -> str:
    out = pattern
    while True:
        match = _PRINTF.search(out)
        if match is None:
            break
        width = match.group(2)
        number = f"{index:0{width}d}" if width and width.startswith("0") else (
            f"{index:>{width}d}" if width else str(index))
        out = out[:match.start(1)] + number + out[match.end(1):]
    return out.replace("%%", "%")


def output_paths(pattern: str, seeds: Sequence[int], *, begin_index: int = 0) -> list[Path]:
    """The file each image goes to, for images with ``seeds`` (one per image), as sd.cpp's CLI names them."""
    count = len(seeds)
    path = Path(pattern)
    suffix = path.suffix.lower()
    known = suffix in IMAGE_SUFFIXES
    if has_pattern(pattern):
        base = pattern if known else pattern + ".png"
        out = []
        for i, seed in enumerate(seeds):
            values = {"seed": seed, "index": begin_index + i}

            def field(match: re.Match[str], values: dict[str, int] = values) -> str:
                return format(values[match.group(1)], (match.group(2) or ":")[1:])

            out.append(Path(_FIELDS.sub(field, _printf(base, begin_index + i))))
        if len(set(out)) != len(out):
            raise ValueError(f"output: {pattern!r} gives several images the same name; use %d or {{index}}")
        return out
    stem, ext = (pattern[: -len(path.suffix)], path.suffix) if known else (pattern, ".png")
    if count == 1:
        return [Path(stem + ext)]
    return [Path(f"{stem}_{begin_index + i}{ext}") for i in range(count)]


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _exif_with_comment(text: str) -> Image.Exif:
    exif = Image.Exif()
    exif.get_ifd(_EXIF_IFD)[_USER_COMMENT] = b"UNICODE\x00" + text.encode("utf-16-be")
    return exif


def _write(image: Image.Image, target: Path, parameters: Optional[str], quality: int,
           fmt: Optional[str] = None) -> None:
    """Write to ``target`` (a temporary name: the format comes from ``fmt`` or the name without ``.partial``)."""
    if fmt is None:
        real_suffix = Path(target.name.removesuffix(".partial")).suffix.lower()
        fmt = IMAGE_SUFFIXES.get(real_suffix, "PNG")
    options: dict[str, object] = {}
    if fmt == "PNG":
        if parameters is not None:
            info = PngImagePlugin.PngInfo()
            info.add_text("parameters", parameters)
            options["pnginfo"] = info
    else:
        options["quality"] = quality
        if parameters is not None:
            options["exif"] = _exif_with_comment(parameters)
    image = image.convert("RGB") if fmt == "JPEG" and image.mode not in ("RGB", "L") else image
    with open(target, "wb") as f:
        image.save(f, format=fmt, **options)
        f.flush()
        os.fsync(f.fileno())


def save_image(image: Image.Image, path: Path, parameters: Optional[str] = None, *, quality: int = 90) -> None:
    """Write ``image`` (PNG, JPEG or WebP by extension) with its ``parameters`` text, atomically.

    PNG keeps the text in a ``parameters`` chunk; JPEG and WebP in the EXIF UserComment, as A1111 does.
    """
    partial = _partial(path)
    try:
        _write(image, partial, parameters, quality)
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()


def save_png(image: Image.Image, path: Path, parameters: Optional[str]) -> None:
    """Write ``image`` as PNG (whatever the extension) with a ``parameters`` text chunk, atomically."""
    partial = _partial(path)
    try:
        _write(image, partial, parameters, 90, fmt="PNG")
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()


def write_all(images: Sequence[Image.Image], paths: Sequence[Path], parameters: Sequence[Optional[str]], *,
              overwrite: bool = True, quality: int = 90) -> list[Path]:
    """Write every image to its path, all or nothing: each goes to a temporary name first, and the
    renames happen only once all are written (an error or Ctrl-C removes the temporary files).

    With ``overwrite=False``, ``FileExistsError`` names the first path that exists, before anything is written.
    """
    if not overwrite:
        for path in paths:
            if path.exists():
                raise FileExistsError(f"output: {str(path)!r} exists (use --force to overwrite)")
    partials = [_partial(p) for p in paths]
    try:
        for image, partial, text in zip(images, partials, parameters, strict=True):
            partial.parent.mkdir(parents=True, exist_ok=True)
            _write(image, partial, text, quality)
        for partial, path in zip(partials, paths, strict=True):
            os.replace(partial, path)
    finally:
        for partial in partials:
            if partial.exists():
                partial.unlink()
    return list(paths)


def save_webp_animation(frames: Sequence[Image.Image], path: Path, *, fps: int, parameters: Optional[str] = None,
                        overwrite: bool = True) -> Path:
    """Write frames as one animated, lossless WebP at ``fps`` frames a second, atomically."""
    if not frames:
        raise ValueError("no frames to write")
    if not overwrite and path.exists():
        raise FileExistsError(f"output: {str(path)!r} exists (use --force to overwrite)")
    partial = _partial(path)
    options: dict[str, object] = {}
    if parameters is not None:
        options["exif"] = _exif_with_comment(parameters)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as f:
            frames[0].save(f, format="WEBP", save_all=True, append_images=list(frames[1:]), lossless=True,
                           duration=max(1, round(1000 / fps)), loop=0, **options)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
    return path
