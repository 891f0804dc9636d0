"""``convert``: quantize or re-type a model into a GGUF file with sd.cpp's converter."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from sdrest import _native, names
from sdrest.checks import PathLike, check_path
from sdrest.logs import sync_log_threshold
from sdrest.progress import ProgressCallback, progress_adapter


def convert(src: PathLike, dst: PathLike, *, type: str = "q8_0", vae: Optional[PathLike] = None,
            tensor_type_rules: Optional[str] = None, convert_name: bool = False,
            progress: Optional[ProgressCallback] = None) -> Path:
    """Write ``src`` (safetensors, ckpt or GGUF) as a GGUF file ``dst`` in weight ``type``.

    ``type`` is a ggml type name (``f16``, ``q8_0``, ``q4_0``, ``q4_K`` ...);
    ``vae`` merges a VAE file in; ``tensor_type_rules`` is sd.cpp's per-tensor
    override (``"^vae\\.=f16,model\\.=q8_0"``). The file is written to a temporary
    name and renamed, so ``dst`` is never left half-written.
    """
    source = check_path(src, "src")
    vae_path = check_path(vae, "vae") if vae is not None else None
    target = Path(dst)
    if target.is_dir():
        raise IsADirectoryError(f"dst: {str(target)!r} is a folder")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"dst: no such folder: {str(target.parent)!r}")
    if target.resolve() == Path(source).resolve():
        raise ValueError("dst: must differ from src")
    type_value = names.lookup(names.type_table, type, "type")
    partial = target.with_name(f".{target.name}.partial")
    sync_log_threshold()
    try:
        _native.convert(source, vae_path, os.fspath(partial), type_value, tensor_type_rules, bool(convert_name),
                        progress_adapter(progress, None, lambda: None))
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
    return target
