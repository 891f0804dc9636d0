"""Which reader a path needs, tried in stable-diffusion.cpp's order.

``ModelLoader::init_from_file`` tries: a directory (diffusers layout), GGUF
magic, safetensors, a zip (torch), the legacy torch format. :func:`read_tensors`
does the same, so a file is read as the format sd.cpp would read it as.
"""

from __future__ import annotations

import os
from pathlib import Path

from sdrest.models.gguf import GGUF_MAGIC, read_gguf
from sdrest.models.safetensors import read_safetensors
from sdrest.models.sdversion import is_unused_tensor
from sdrest.models.tensors import FormatError, NotThisFormat, TensorTable
from sdrest.models.torchfile import read_torch_legacy, read_torch_zip

__all__ = ["DIFFUSERS_PARTS", "is_diffusers_folder", "read_tensors"]

DIFFUSERS_PARTS: tuple[tuple[str, str, bool], ...] = (
    ("unet/diffusion_pytorch_model.safetensors", "unet.", True),
    ("vae/diffusion_pytorch_model.safetensors", "vae.", False),
    ("text_encoder/model.safetensors", "te.", False),
    ("text_encoder_2/model.safetensors", "te.1.", False),
)
"""(file, prefix, required): the parts of a diffusers folder sd.cpp loads, as it loads them."""


def is_diffusers_folder(path: str | os.PathLike[str]) -> bool:
    """True for a folder in the diffusers layout (``model_index.json`` or a ``unet/`` model)."""
    p = Path(path)
    return p.is_dir() and ((p / "model_index.json").is_file() or (p / DIFFUSERS_PARTS[0][0]).is_file())


def read_tensors(path: str | os.PathLike[str]) -> TensorTable:
    """The tensor table of a model file or diffusers folder; :class:`FormatError` if unreadable."""
    p = Path(path)
    if p.is_dir():
        return _read_diffusers(p)
    with open(p, "rb", buffering=0) as f:  # unbuffered: read the 4 bytes, not a 8 KiB buffer
        magic = f.read(4)
    if magic == GGUF_MAGIC:
        return read_gguf(p)
    reasons: list[str] = []
    for reader in (read_safetensors, read_torch_zip):
        try:
            return reader(p)
        except NotThisFormat as exc:
            reasons.append(str(exc))
    try:
        return read_torch_legacy(p)
    except FormatError as exc:
        reasons.append(f"not a torch pickle ({exc})")
    if p.stat().st_size == 0:
        raise FormatError("empty file")
    raise FormatError("unknown format: not GGUF; " + "; ".join(reasons))


def _read_diffusers(folder: Path) -> TensorTable:
    table = TensorTable(format="diffusers")
    for rel, prefix, required in DIFFUSERS_PARTS:
        part = folder / rel
        try:
            sub = read_safetensors(part)
        except (OSError, FormatError) as exc:
            if required:
                why = str(exc) if isinstance(exc, FormatError) else (exc.strerror or type(exc).__name__)
                raise FormatError(
                    f"diffusers folder without a readable {rel} (sd.cpp loads only that layout): {why}"
                ) from None
            continue
        table.bytes_read += sub.bytes_read
        table.header_size += sub.header_size
        table.data_size += sub.data_size
        table.problems.extend(sub.problems)
        table.warnings.extend(f"{rel}: {w}" for w in sub.warnings)
        for name, info in sub.tensors.items():
            if name in sub.sdcpp_skipped or is_unused_tensor(name):
                continue
            key = name if name.startswith(prefix) else prefix + name
            table.add(type(info)(key, info.dtype, info.shape, info.ne, info.nbytes, info.offset))
        table.metadata[rel] = dict(sub.metadata)
    return table
