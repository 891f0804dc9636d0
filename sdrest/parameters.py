"""A generation's parameters as a person reads them: names instead of enum numbers, JSON-safe values.

:func:`describe` turns the sd.cpp parameter dict a call actually ran with (C field
names, enums as integers, ``inf`` for "the model's default") into
``GenerationResult.parameters``: sampler and scheduler names, the seed of each image,
model names, unset values left out. :func:`sdrest.infotext.infotext` reads the same keys.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from sdrest import names

__all__ = ["describe", "tidy_float"]


def tidy_float(value: float) -> Optional[float]:
    """A C float as the number it was meant to be (``0.8999999761581421`` -> ``0.9``); None for inf/NaN."""
    number = float(value)
    if math.isinf(number) or math.isnan(number):
        return None
    return float(f"{number:.7g}")


def _name_of(table: Mapping[str, int], value: int) -> Optional[str]:
    for name, number in table.items():
        if number == value:
            return name
    return None


def _stem(path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    return Path(path).stem if not os.path.isdir(path) else Path(path).name


def _sampling(sample: Mapping[str, Any], *, resolve_scheduler: Any = None) -> dict[str, Any]:
    guidance = sample["guidance"]
    out: dict[str, Any] = {
        "steps": sample["sample_steps"],
        "cfg_scale": tidy_float(guidance["txt_cfg"]),
        "img_cfg_scale": tidy_float(guidance["img_cfg"]),
        "guidance": tidy_float(guidance["distilled_guidance"]),
        "sampler": _name_of(names.sampler_table(), sample["sample_method"]),
        "scheduler": _name_of(names.scheduler_table(), sample["scheduler"]),
        "eta": tidy_float(sample["eta"]),
        "flow_shift": tidy_float(sample["flow_shift"]),
    }
    if sample.get("shifted_timestep"):
        out["shifted_timestep"] = sample["shifted_timestep"]
    if sample.get("custom_sigmas"):
        out["sigmas"] = [tidy_float(s) for s in sample["custom_sigmas"]]
    slg = guidance["slg"]
    if slg["scale"]:
        out.update(slg_scale=tidy_float(slg["scale"]), skip_layers=list(slg["layers"]),
                   skip_layer_start=tidy_float(slg["layer_start"]), skip_layer_end=tidy_float(slg["layer_end"]))
    return {k: v for k, v in out.items() if v is not None}


def _cache(cache: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    if not cache.get("mode"):
        return None
    out: dict[str, Any] = {"mode": _name_of(names.cache_mode_table(), cache["mode"])}
    for key, value in cache.items():
        if key == "mode" or value is None:
            continue
        out[key] = tidy_float(value) if isinstance(value, float) else value
    return out


def _hires(hires: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    if not hires.get("enabled"):
        return None
    upscaler = _name_of(names.hires_upscaler_table(), hires["upscaler"])
    if hires.get("model_path"):
        upscaler = _stem(hires["model_path"])
    return {"upscaler": upscaler, "scale": tidy_float(hires["scale"]), "target_width": hires["target_width"],
            "target_height": hires["target_height"], "steps": hires["steps"],
            "denoising_strength": tidy_float(hires["denoising_strength"]),
            "upscale_tile_size": hires["upscale_tile_size"]}


def describe(params: Mapping[str, Any], *, mode: str, seeds: Sequence[int], model_files: Mapping[str, str],
             rng: Optional[str], sampler_rng: Optional[str]) -> dict[str, Any]:
    """Friendly, JSON-safe parameters of a call that ran with the sd.cpp dict ``params``.

    ``mode`` is ``txt2img``, ``img2img``, ``inpaint`` or ``video``; ``seeds`` one per image;
    ``model_files`` the context's files by keyword (``model``, ``vae`` ...).
    """
    out: dict[str, Any] = {"mode": mode, "prompt": params["prompt"], "negative_prompt": params["negative_prompt"] or "",
                           "width": params["width"], "height": params["height"]}
    out.update(_sampling(params["sample_params"]))
    out["seed"] = params["seed"]
    out["seeds"] = list(seeds)
    if "batch_count" in params:
        out["batch_count"] = params["batch_count"]
    if params.get("clip_skip", -1) > 0:
        out["clip_skip"] = params["clip_skip"]
    if params.get("init_image") is not None or mode in ("img2img", "inpaint"):
        out["strength"] = tidy_float(params["strength"])
    if params.get("control_image") is not None:
        out["control_strength"] = tidy_float(params["control_strength"])
    main = model_files.get("model") or model_files.get("diffusion_model")
    out["model_name"] = _stem(main)
    if model_files.get("vae"):
        out["vae_name"] = _stem(model_files["vae"])
    out["models"] = {role: _stem(path) for role, path in model_files.items()}
    out["rng"] = rng
    if sampler_rng:
        out["sampler_rng"] = sampler_rng
    out["loras"] = [{"name": _stem(lo["path"]), "path": lo["path"], "multiplier": tidy_float(lo["multiplier"]),
                     **({"is_high_noise": True} if lo.get("is_high_noise") else {})} for lo in params.get("loras", [])]
    tiling = params.get("vae_tiling_params") or {}
    if tiling.get("enabled"):
        out["vae_tiling"] = {k: (tidy_float(v) if isinstance(v, float) else v) for k, v in tiling.items()}
    cache = _cache(params.get("cache") or {})
    if cache:
        out["cache"] = cache
    hires = _hires(params.get("hires") or {})
    if hires:
        out["hires"] = hires
    if "video_frames" in params:
        out["video_frames"] = params["video_frames"]
        out["high_noise"] = _sampling(params["high_noise_sample_params"])
        out["moe_boundary"] = tidy_float(params["moe_boundary"])
        out["vace_strength"] = tidy_float(params["vace_strength"])
    pm = params.get("pm_params") or {}
    if pm.get("id_images") or pm.get("id_embed_path"):
        out["pm_style_strength"] = tidy_float(pm["style_strength"])
    return out
