"""``convert``: quantize or re-type a model into a GGUF file with sd.cpp's converter."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from sdrest import _native, names
from sdrest.checks import PathLike, check_path
from sdrest.logs import sync_log_threshold
from sdrest.progress import ProgressCallback, progress_adapter

#: sd.cpp's "no type" (``SD_TYPE_COUNT``): each tensor keeps the type it has in the source.
KEEP_TYPES = len(_native.type_names())


def partial_path(target: Path) -> Path:
    """The temporary name ``convert`` writes before renaming: hidden, beside ``target``, same suffix
    (sd.cpp picks safetensors or GGUF output by the name's suffix)."""
    return target.with_name(f".{target.stem}.partial{target.suffix}")


def convert(src: PathLike, dst: PathLike, *, type: Optional[str] = "q8_0", vae: Optional[PathLike] = None,
            tensor_type_rules: Optional[str] = None, convert_name: bool = False,
            progress: Optional[ProgressCallback] = None) -> Path:
    """Write ``src`` (safetensors, ckpt or GGUF) as a GGUF file ``dst`` in weight ``type``.

    ``type`` is a ggml type name (``f16``, ``q8_0``, ``q4_0``, ``q4_K`` ...), or
    ``None`` to keep each tensor's own type (sd.cpp's CLI default, a plain repack);
    ``vae`` merges a VAE file in; ``tensor_type_rules`` is sd.cpp's per-tensor
    override (``"^vae\\.=f16,model\\.=q8_0"``). A ``dst`` ending in ``.safetensors``
    is written as safetensors, as sd.cpp does. The file is written to a temporary
    name beside ``dst`` and renamed, so ``dst`` is never left half-written, also
    when the call is interrupted or fails. ``progress`` gets one ``converting``
    event per tensor.
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
    type_value = KEEP_TYPES if type is None else names.lookup(names.type_table, type, "type")
    partial = partial_path(target)
    try:
        partial.open("wb").close()  # fails here, readably, when the folder is not writable
    except OSError as exc:
        raise exc.__class__(f"dst: cannot write in {str(target.parent)!r}: {exc.strerror}") from exc
    sync_log_threshold()
    try:
        _native.convert(source, vae_path, os.fspath(partial), type_value, tensor_type_rules, bool(convert_name),
                        progress_adapter(progress, None, lambda: None))
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
    return target
