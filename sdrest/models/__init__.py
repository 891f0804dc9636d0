"""Model files: header readers, architecture detection and the models-dir registry.

Pure Python: nothing here needs the native extension, so an API node without a
build can still tell what a models folder holds.

    from sdrest.models import Registry, detect, resolve

    info = detect("models/diffusion_models/flux1-dev-q8_0.gguf")   # architecture, kind, quant...
    registry = Registry("models", cache_path="data/models-cache.json")
    registry.scan()
    params = resolve(registry, "flux1-dev-q8_0").sd_params()          # model + VAE + text encoders
"""

from __future__ import annotations

from sdrest.models.companions import CompanionSet, resolve
from sdrest.models.detect import KINDS, Companion, ModelInfo, detect
from sdrest.models.hashing import FileChanged, Hashes
from sdrest.models.registry import ModelEntry, Page, Registry, ScanReport, Skipped
from sdrest.models.templates import Template, TemplateError
from sdrest.models.tensors import FormatError, TensorInfo, TensorTable

__all__ = [
    "KINDS",
    "Companion",
    "CompanionSet",
    "FileChanged",
    "FormatError",
    "Hashes",
    "ModelEntry",
    "ModelInfo",
    "Page",
    "Registry",
    "ScanReport",
    "Skipped",
    "Template",
    "TemplateError",
    "TensorInfo",
    "TensorTable",
    "detect",
    "resolve",
]
