"""Companion resolution: which files of a registry complete a model into a loadable set.

For a Flux, SD3, Wan, Qwen Image... model, each required role (``vae``,
``clip_l``, ``t5xxl``, ``llm``...) the file does not contain is filled with the
best-fitting file of the registry, or reported missing. ``sd_params()`` gives
the paths as stable-diffusion.cpp's context parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sdrest.models.architectures import LLM_HIDDEN_FOR
from sdrest.models.registry import ModelEntry, Registry

__all__ = ["CompanionSet", "candidates", "resolve"]

_LOADABLE_KINDS = ("checkpoint", "diffusion_model")


@dataclass(slots=True)
class CompanionSet:
    """A model and the files chosen for its companions; what is still missing, and the runners-up."""

    model: ModelEntry
    files: dict[str, ModelEntry] = field(default_factory=dict)
    contained: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    optional_missing: list[str] = field(default_factory=list)
    alternatives: dict[str, list[str]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every required companion is contained or found."""
        return not self.missing

    def sd_params(self) -> dict[str, str]:
        """Paths as sd.cpp context parameters (``model_path`` or ``diffusion_model_path``, ``vae_path``...)."""
        key = "diffusion_model_path" if self.model.info.load_as == "diffusion_model" else "model_path"
        params = {key: self.model.path}
        for role, entry in self.files.items():
            params[f"{role}_path"] = entry.path
        return params

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "model": self.model.id,
            "architecture": self.model.architecture,
            "complete": self.complete,
            "files": {role: e.id for role, e in self.files.items()},
            "contained": list(self.contained),
            "missing": list(self.missing),
            "optional_missing": list(self.optional_missing),
            "alternatives": {k: list(v) for k, v in self.alternatives.items()},
            "sd_params": self.sd_params(),
        }


def _accepts(entry: ModelEntry, accepts: str, version: str) -> bool:
    info = entry.info
    if info.error is not None:
        return False
    if accepts in ("vae", "taesd"):
        return info.kind == accepts and version in info.fits
    if accepts == "diffusion_model":
        return info.kind in _LOADABLE_KINDS and info.architecture == version
    te_type, _, variant = accepts.partition(":")
    if info.kind != "text_encoder" or info.text_encoder_type != te_type:
        return False
    return not variant or info.details.get("variant") == variant


def _score(entry: ModelEntry, role: str, version: str, model: ModelEntry) -> tuple[int, ...]:
    info = entry.info
    hidden = LLM_HIDDEN_FOR.get(version, ())
    size_fit = 1 if role == "llm" and info.details.get("hidden_size") in hidden else 0
    folder_fit = 1 if entry.folder is not None else 0
    same_dir = 1 if entry.rel_path.rsplit("/", 1)[0] == model.rel_path.rsplit("/", 1)[0] else 0
    return (size_fit, same_dir, folder_fit)


def candidates(registry: Registry, model: ModelEntry, role: str, accepts: str) -> list[ModelEntry]:
    """Entries that can fill ``role`` for ``model``, best first."""
    version = model.architecture or ""
    if role == "high_noise_diffusion_model":
        return _high_noise(registry, model)
    found = [e for e in registry.entries() if e.id != model.id and _accepts(e, accepts, version)]
    found.sort(key=lambda e: e.id)
    found.sort(key=lambda e: _score(e, role, version, model), reverse=True)
    return found


def _high_noise(registry: Registry, model: ModelEntry) -> list[ModelEntry]:
    """For a Wan 2.2 "LowNoise" model: same-architecture "HighNoise" files, its twin first."""
    if not re.search(r"low[_ -]?noise", model.name, re.I):
        return []
    twin = re.sub(r"(?i)low([_ -]?noise)", r"high\1", model.id).lower()
    found = [
        e
        for e in registry.entries()
        if e.id != model.id
        and e.info.kind in _LOADABLE_KINDS
        and e.info.architecture == model.architecture
        and re.search(r"high[_ -]?noise", e.name, re.I)
    ]
    found.sort(key=lambda e: (e.id.lower() != twin, e.id))
    return found


def resolve(registry: Registry, name: str) -> CompanionSet:
    """The companion set of a model given by id or file name (see :meth:`Registry.find`).

    :class:`KeyError` if there is no such model; :class:`ValueError` if it is not a
    diffusion model or checkpoint, or sd.cpp does not recognise its architecture.
    """
    model = registry.find(name)
    info = model.info
    if info.kind not in _LOADABLE_KINDS:
        raise ValueError(f"{model.id} is a {info.kind}, not a model to generate with")
    if info.architecture is None:
        raise ValueError(f"{model.id}: sd.cpp does not recognise this model's architecture")
    out = CompanionSet(model)
    vision_in_llm = False
    for comp in info.companions:
        if comp.contained:
            out.contained.append(comp.role)
            continue
        if comp.role == "llm_vision" and vision_in_llm:
            out.contained.append(comp.role)
            continue
        found = candidates(registry, model, comp.role, comp.accepts)
        if found:
            out.files[comp.role] = found[0]
            if len(found) > 1:
                out.alternatives[comp.role] = [e.id for e in found[1:]]
            if comp.role == "llm" and found[0].info.details.get("vision"):
                vision_in_llm = True
        elif comp.required:
            out.missing.append(comp.role)
        else:
            out.optional_missing.append(comp.role)
    return out
