"""The models dir as the API sees it: a narrow adapter over the folder layout.

Types come from the seed's folders (``checkpoints/``, ``lora/``, ``esrgan/`` ...).
When :mod:`sdrest.models` offers ``detect``, each entry is enriched with the
detected architecture. Ids are derived from the relative path (stable across
restarts, never a path themselves); lookups accept an id, the relative path,
the file name or its stem, and only ever return files found by the scan, so no
request can name a file outside the models dir.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: folder -> model type (the seed's layout)
FOLDER_TYPES = {
    "checkpoints": "checkpoint", "stable-diffusion": "checkpoint", "diffusion_models": "diffusion_model",
    "unet": "diffusion_model", "vae": "vae", "lora": "lora", "loras": "lora", "taesd": "taesd",
    "esrgan": "esrgan", "upscaler": "esrgan", "upscale_models": "esrgan", "controlnet": "controlnet",
    "embeddings": "embedding", "text_encoders": "text_encoder", "clip": "text_encoder",
    "clip_vision": "clip_vision", "photomaker": "photomaker",
}
MODEL_EXTENSIONS = (".safetensors", ".sft", ".gguf", ".ckpt", ".pt", ".pth", ".bin")
TYPES = tuple(sorted(set(FOLDER_TYPES.values())))


@dataclass
class ModelEntry:
    """One model file."""

    id: str
    name: str
    type: str
    path: Path
    relative_path: str
    size: int
    mtime: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """As the API shows it (no absolute paths)."""
        return {"id": self.id, "name": self.name, "type": self.type, "path": self.relative_path,
                "filename": self.path.name, "size": self.size, "size_mb": round(self.size / 2**20, 2),
                "modified_at": self.mtime, "format": self.path.suffix.lstrip(".").lower(), **self.extra}


def model_id(relative: str) -> str:
    """Stable id of a relative path."""
    return hashlib.sha1(relative.encode()).hexdigest()[:16]


class Catalog:
    """A scan of the models dir, refreshed on demand. Thread-safe."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._entries: dict[str, ModelEntry] = {}
        self._detected: dict[tuple[str, int, float], dict[str, Any]] = {}
        self.scanned_at = 0.0
        self.scan_seconds = 0.0

    def directories(self) -> list[dict[str, Any]]:
        """The type folders present under the root."""
        if self.root is None or not self.root.is_dir():
            return []
        out = []
        for folder, kind in sorted(FOLDER_TYPES.items()):
            path = self.root / folder
            if path.is_dir():
                out.append({"name": folder, "type": kind, "path": folder,
                            "count": sum(1 for e in self.list() if e.relative_path.startswith(folder + "/"))})
        return out

    def refresh(self) -> int:
        """Rescan; returns how many models were found."""
        started = time.monotonic()
        entries: dict[str, ModelEntry] = {}
        if self.root is not None and self.root.is_dir():
            for folder, kind in FOLDER_TYPES.items():
                base = self.root / folder
                if not base.is_dir():
                    continue
                for dirpath, _dirs, files in os.walk(base, followlinks=False):
                    for filename in files:
                        if not filename.lower().endswith(MODEL_EXTENSIONS) or filename.startswith("."):
                            continue
                        path = Path(dirpath) / filename
                        try:
                            st = path.stat()
                        except OSError:
                            continue
                        relative = path.relative_to(self.root).as_posix()
                        entry = ModelEntry(model_id(relative), path.stem, kind, path, relative, st.st_size,
                                           st.st_mtime)
                        entry.extra = dict(self._detect(entry))
                        detected = entry.extra.get("kind")
                        if detected in TYPES and detected != kind:  # the header decides, the folder hints
                            entry.extra["folder_type"] = kind
                            entry.type = detected
                        entries[entry.id] = entry
        with self._lock:
            self._entries = entries
            self.scanned_at = time.time()
            self.scan_seconds = time.monotonic() - started
        return len(entries)

    def _detect(self, entry: ModelEntry) -> dict[str, Any]:
        """What :func:`sdrest.models.detect` reads from the header (cached by path, size, mtime)."""
        key = (str(entry.path), entry.size, entry.mtime)
        if key in self._detected:
            return self._detected[key]
        info: dict[str, Any] = {}
        try:
            from sdrest.models import detect
        except ImportError:  # detection is optional: the folder then decides
            detect = None
        if detect is not None:
            try:
                found = detect(entry.path)
            except Exception as exc:  # noqa: BLE001 - an unreadable header is reported, not fatal
                info["detect_error"] = str(exc)
            else:
                if getattr(found, "error", None):
                    info["detect_error"] = str(found.error)
                for attr in ("architecture", "kind", "quantization", "parameters", "load_as"):
                    value = getattr(found, attr, None)
                    if value is not None and value != "unknown":
                        info[attr] = value if isinstance(value, (str, int, float)) else str(value)
        self._detected[key] = info
        return info

    def list(self, type: str | None = None) -> list[ModelEntry]:
        """All entries (of ``type``), by relative path."""
        with self._lock:
            entries = list(self._entries.values())
        if type:
            entries = [e for e in entries if e.type == type]
        return sorted(entries, key=lambda e: e.relative_path)

    def get(self, ref: str) -> ModelEntry | None:
        """An entry by id."""
        with self._lock:
            return self._entries.get(ref)

    def find(self, ref: str, types: tuple[str, ...]) -> tuple[ModelEntry | None, list[ModelEntry]]:
        """(the entry named ``ref`` among ``types``, entries of other types with that name)."""
        with self._lock:
            entries = list(self._entries.values())
        def matches(e: ModelEntry) -> bool:
            return ref in (e.id, e.relative_path, e.path.name, e.name)
        hits = [e for e in entries if matches(e)]
        right = sorted((e for e in hits if e.type in types), key=lambda e: e.relative_path)
        return (right[0] if right else None), [e for e in hits if e.type not in types]
