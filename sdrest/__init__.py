"""sdrest: stable-diffusion.cpp from Python.

    from sdrest import StableDiffusion
    with StableDiffusion("models/checkpoints/v1-5.safetensors") as sd:
        image = sd.txt2img("a lovely cat", steps=20, seed=42).images[0]

Names are imported on first use, so the parts that need no native code (model
detection, the API server's front half) work where the extension is not built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Cancelled": "sdrest.errors",
    "NativeError": "sdrest.errors",
    "GenerationResult": "sdrest.diffusion",
    "LoRA": "sdrest.diffusion",
    "StableDiffusion": "sdrest.diffusion",
    "Upscaler": "sdrest.upscaler",
    "Progress": "sdrest.progress",
    "ImageOptions": "sdrest.options",
    "VideoOptions": "sdrest.options",
    "convert": "sdrest.conversion",
    "preprocess_canny": "sdrest.preprocess",
    "samplers": "sdrest.names",
    "schedulers": "sdrest.names",
    "weight_types": "sdrest.names",
    "system_info": "sdrest.system",
    "sdcpp_version": "sdrest.system",
    "available_physical_cores": "sdrest.threads",
    "detect": "sdrest.models",
    "ModelInfo": "sdrest.models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sdrest' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from sdrest.conversion import convert
    from sdrest.diffusion import GenerationResult, LoRA, StableDiffusion
    from sdrest.errors import Cancelled, NativeError
    from sdrest.models import ModelInfo, detect
    from sdrest.names import samplers, schedulers, weight_types
    from sdrest.preprocess import preprocess_canny
    from sdrest.options import ImageOptions, VideoOptions
    from sdrest.progress import Progress
    from sdrest.system import sdcpp_version, system_info
    from sdrest.threads import available_physical_cores
    from sdrest.upscaler import Upscaler
