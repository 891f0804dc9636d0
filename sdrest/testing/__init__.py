"""Test support for sdrest: synthetic (random-weight) models sd.cpp can load.

See :mod:`sdrest.testing.synthetic` (also importable from here). The tensor tables
it writes from live in ``tables/*.json`` and were checked against sd.cpp's loader
by :mod:`sdrest.testing.derive_tables`. :mod:`sdrest.testing.headers` writes
header-only (sparse) files and :mod:`sdrest.testing.signatures` holds, for every
architecture sd.cpp detects, the tensors that make it say so: detection tests
and benchmarks use those.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdrest.testing.synthetic import (
        all_models,
        cache_dir,
        esrgan,
        populate_models_dir,
        sd1_checkpoint,
        sd1_controlnet,
        sd1_lora,
        sd1_vae,
        taesd,
        write_safetensors,
        wrong_vae,
    )

__all__ = [
    "all_models",
    "cache_dir",
    "esrgan",
    "populate_models_dir",
    "sd1_checkpoint",
    "sd1_controlnet",
    "sd1_lora",
    "sd1_vae",
    "taesd",
    "write_safetensors",
    "wrong_vae",
]


def __getattr__(name: str) -> Any:
    """Import :mod:`sdrest.testing.synthetic` on first use (keeps ``python -m`` clean)."""
    if name in __all__:
        return getattr(importlib.import_module("sdrest.testing.synthetic"), name)
    raise AttributeError(f"module 'sdrest.testing' has no attribute {name!r}")
