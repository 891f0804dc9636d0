"""What a generation's infotext says about the files it used, the way A1111 records them.

A1111 writes ``VAE hash`` and ``VAE`` (the file that decoded the image: here a TAESD when one is used, since
sd.cpp then decodes with it) and ``Lora hashes`` (each LoRA's short hash, :func:`sdrest.models.hashing.lora_hash`);
civitai reads them to link an uploaded image to the resources that made it. The hashes come from the models
registry (sha256, cached with each file's size and mtime) and, for LoRAs, from a cache of this process keyed the
same way. Runs on a worker, before the images are written.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from sdrest.models.hashing import lora_hash
from sdrest.models.registry import ModelEntry, Registry

__all__ = ["add_file_hashes", "cached_lora_hash"]

_lora_hashes: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def cached_lora_hash(path: str) -> str | None:
    """:func:`~sdrest.models.hashing.lora_hash` of ``path``, computed once per (path, size, mtime); None when the
    file cannot be read."""
    try:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        with _lock:
            if key in _lora_hashes:
                return _lora_hashes[key]
        found = lora_hash(path)
    except OSError:
        return None
    with _lock:
        _lora_hashes[key] = found
    return found


def _entry_of(registry: Registry, path: str) -> ModelEntry | None:
    for entry in registry.entries():
        if entry.path == path:
            return entry
    return None


def _short_hash(registry: Registry, entry: ModelEntry) -> str | None:
    try:
        return registry.hashes(entry.id).autov2
    except (KeyError, OSError):
        return None


def add_file_hashes(params: dict[str, Any], registry: Registry | None) -> None:
    """Set ``vae_name`` and ``vae_hash`` (the file that decodes: the TAESD, else a separate VAE; nothing when the
    checkpoint's own VAE decodes) and each LoRA's ``hash`` in a generation's ``params``. A file that cannot be
    read or hashed is left out, never an error: the image is what matters."""
    files = params.get("_context") or {}
    decoder = files.get("taesd") or files.get("vae")
    if decoder:
        params["vae_name"] = Path(decoder).name
        entry = _entry_of(registry, decoder) if registry is not None else None
        if entry is not None:
            params["vae_hash"] = _short_hash(registry, entry)  # type: ignore[arg-type]
    for lora in params.get("loras") or []:
        path = lora.get("_path")
        if path and not lora.get("hash"):
            lora["hash"] = cached_lora_hash(path)
