"""The models dir as A1111 lists it, and A1111's names for a model matched back to the registry.

A1111 names a checkpoint by its path under its checkpoints folder (``sd1.safetensors``), shows it as a title with
its short hash (``sd1.safetensors [6ce0161689]``), and also knows it as ``model_name`` (no extension), by its
hashes and its file name; clients send any of these, sometimes lower-cased (``webuiapi``'s ``util_set_model``).
Hashes come from the registry's cache only (A1111 too shows a hash once it has computed it): a listing never
reads a whole model file. ``filename`` is the path inside the models dir: clients never see server paths.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from sdrest.models.registry import ModelEntry, Registry

__all__ = ["CHECKPOINT_KINDS", "UPSCALER_NAMES", "checkpoint_item", "checkpoints", "find_checkpoint", "find_named",
           "lora_item", "title", "upscaler_items", "vae_items"]

#: the registry kinds A1111 lists as checkpoints
CHECKPOINT_KINDS = ("checkpoint", "diffusion_model")
#: A1111's upscalers that are plain resizes (no model): "None" resizes with Lanczos as A1111's does
UPSCALER_NAMES = ("None", "Lanczos", "Nearest")
_TITLE = re.compile(r"^(.*?)\s*\[([0-9a-fA-F]{8,64})\]$")


def _name(entry: ModelEntry) -> str:
    """The path under the model's folder (A1111's ``name``): ``sd1.safetensors``, ``sdxl/base.safetensors``."""
    path = PurePosixPath(entry.rel_path)
    if entry.folder and path.parts and path.parts[0] == entry.folder:
        return str(PurePosixPath(*path.parts[1:]))
    return str(path)


def _stem(name: str) -> str:
    path = PurePosixPath(name)
    return str(path.with_suffix("")) if path.suffix else name


def title(entry: ModelEntry) -> str:
    """A1111's title: the name, with the short hash in brackets once the registry knows it."""
    name = _name(entry)
    return f"{name} [{entry.hashes.autov2}]" if entry.hashes else name


def checkpoints(registry: Registry) -> list[ModelEntry]:
    """The models A1111 calls checkpoints (whole checkpoints and standalone diffusion models)."""
    return [e for e in registry.entries() if e.kind in CHECKPOINT_KINDS]


def checkpoint_item(entry: ModelEntry) -> dict[str, Any]:
    """One item of ``GET /sdapi/v1/sd-models``."""
    name = _name(entry)
    return {"title": title(entry), "model_name": _stem(name).replace("/", "_"),
            "hash": entry.hashes.autov2 if entry.hashes else None,
            "sha256": entry.hashes.sha256 if entry.hashes else None, "filename": entry.rel_path, "config": None}


def _spellings(entry: ModelEntry) -> set[str]:
    name = _name(entry)
    names = {title(entry), name, _stem(name), _stem(name).replace("/", "_"), entry.name, _stem(entry.name),
             entry.rel_path, entry.id}
    if entry.hashes:
        names.update({entry.hashes.autov2, entry.hashes.sha256, entry.hashes.legacy})
    return {n.lower() for n in names}


def find_named(ref: str, entries: list[ModelEntry]) -> list[ModelEntry]:
    """The entries ``ref`` names, in any case, as a title (``name [hash]``: by the name, and when the hash is known
    it must agree), a name with or without extension, a file name, a path in the models dir, an id, a hash, or a
    path elsewhere (A1111's ``filename``: an absolute path on its machine) by its file name."""
    wanted = ref.strip().replace("\\", "/").lower()
    hits = [e for e in entries if wanted in _spellings(e)]
    if hits:
        return hits
    match = _TITLE.match(wanted)
    if match is not None:
        base, digest = match.group(1), match.group(2)
        return [e for e in entries if base in _spellings(e)
                and (e.hashes is None or e.hashes.sha256.startswith(digest) or e.hashes.legacy == digest)]
    if "/" in wanted:  # a path on the client's machine (A1111's filename): its file name
        return find_named(PurePosixPath(wanted).name, entries)
    return []


def find_checkpoint(ref: str, registry: Registry) -> list[ModelEntry]:
    """The checkpoints ``ref`` names (see :func:`find_named`)."""
    return find_named(ref, checkpoints(registry))


def vae_items(registry: Registry) -> list[dict[str, Any]]:
    """``GET /sdapi/v1/sd-vae``: the VAEs, and the TAESDs (sd.cpp decodes with a TAESD too)."""
    return [{"model_name": e.name, "filename": e.rel_path} for e in registry.entries() if e.kind in ("vae", "taesd")]


def lora_item(entry: ModelEntry) -> dict[str, Any]:
    """One item of ``GET /sdapi/v1/loras``: its name (what ``<lora:name:weight>`` takes), the path in the models
    dir, and the metadata its header carries (safetensors ``__metadata__``)."""
    name = _stem(entry.name)
    return {"name": name, "alias": name, "path": entry.rel_path, "metadata": dict(entry.info.metadata or {})}


def upscaler_items(registry: Registry) -> list[dict[str, Any]]:
    """``GET /sdapi/v1/upscalers``: A1111's plain resizes, then each ESRGAN model (named as ``upscaler_1`` takes
    it) with its scale."""
    plain = [{"name": name, "model_name": None, "model_path": None, "model_url": None, "scale": 4}
             for name in UPSCALER_NAMES]
    models = [{"name": _stem(e.name), "model_name": "ESRGAN", "model_path": e.rel_path, "model_url": None,
               "scale": int(e.info.details.get("scale") or 4)}
              for e in registry.entries() if e.kind == "esrgan"]
    return plain + models
