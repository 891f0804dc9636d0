"""Output files: PNGs that carry their generation parameters (A1111's ``parameters`` chunk), thumbnails."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

#: Job ids and output names are ``[A-Za-z0-9_-]`` (+ one extension): nothing can walk out of the data dir.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}(\.[a-z0-9]{1,8})?$")


def safe_name(name: str) -> bool:
    """True for a plain file or id name (no separators, no dots but one extension)."""
    return bool(_SAFE_NAME.match(name))


def a1111_parameters(params: Mapping[str, Any], seed: int) -> str:
    """The ``parameters`` text A1111 writes, so the image can be reproduced (and read by its tools)."""
    lines = [str(params.get("prompt", ""))]
    negative = params.get("negative_prompt")
    if negative:
        lines.append(f"Negative prompt: {negative}")
    fields = [("Steps", params.get("steps")), ("Sampler", params.get("sampler")),
              ("Schedule type", params.get("scheduler")), ("CFG scale", params.get("cfg_scale")),
              ("Seed", seed), ("Size", f"{params.get('width')}x{params.get('height')}"),
              ("Model hash", params.get("model_hash")), ("Model", params.get("model_name")),
              ("Denoising strength", params.get("strength")), ("Clip skip", params.get("clip_skip")),
              ("Control strength", params.get("control_strength"))]
    loras = params.get("loras") or []
    if loras:
        fields.append(("Lora hashes", ", ".join(f"{lo['name']}: {lo.get('multiplier', 1.0)}" for lo in loras)))
    lines.append(", ".join(f"{k}: {v}" for k, v in fields if v is not None and v != ""))
    return "\n".join(lines)


def parse_a1111_parameters(text: str) -> dict[str, str]:
    """Read back ``parameters`` text: ``prompt``, ``negative_prompt`` and the ``Key: value`` fields."""
    lines = text.split("\n")
    out = {"prompt": lines[0]}
    rest = lines[1:]
    if rest and rest[0].startswith("Negative prompt: "):
        out["negative_prompt"] = rest.pop(0)[len("Negative prompt: "):]
    if rest:
        for part in re.findall(r"\s*([^:,]+):\s*((?:[^,]|,(?!\s*[^:,]+:))*)", rest[-1]):
            out[part[0].strip()] = part[1].strip()
    return out


def save_png(image: Image.Image, path: Path, parameters: str | None) -> None:
    """Write ``image`` as PNG with a ``parameters`` text chunk, atomically (temp name, fsync, rename)."""
    info = PngImagePlugin.PngInfo()
    if parameters is not None:
        info.add_text("parameters", parameters)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as f:
        image.save(f, format="PNG", pnginfo=info)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


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
