"""Inputs of ``sdrest generate`` read the way sd.cpp's CLI reads them, so the same files give the same pixels.

- images: an image whose size differs from the requested one is centre-cropped to the
  target's aspect ratio and resized with a box filter (sd-cli uses stb's box filter;
  PIL's ``BOX`` is close, not bit-identical); a mask becomes grey with stb's luma
  weights (77, 150, 29)/256, exactly;
- folders of frames (``--control-video``, ``--pm-id-images-dir``) in name order;
- ``<lora:NAME:WEIGHT>`` tags in the prompt (``--lora-model-dir``), textual-inversion
  embeddings of ``--embd-dir``, a hires upscaler by name, the step-cache settings.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image

__all__ = ["cache_settings", "embeddings_in", "extract_loras", "find_model_file", "load_folder", "load_image",
           "load_mask"]

LOG = logging.getLogger("sdrest.generate")

#: What sd-cli loads from a folder of frames.
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: LoRA and embedding files sd-cli looks for when a name has no extension.
LORA_SUFFIXES = (".gguf", ".safetensors", ".pt")
#: sd-cli's tag: ``<lora:NAME:WEIGHT>``, NAME may start with ``|high_noise|``.
LORA_TAG = re.compile(r"<lora:([^:>]+):([^>]+)>")


def _open_rgb_array(path: str, channels: int, argument: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{argument}: no such file: {path!r}")
    try:
        with Image.open(path) as image:
            image.load()
            if channels == 3:
                return np.asarray(image.convert("RGB"))
            rgb = np.asarray(image.convert("RGB")).astype(np.uint32)
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{argument}: cannot read {path!r} as an image ({exc})") from None
    # stb_image's grey: (77 r + 150 g + 29 b) >> 8
    return ((rgb[..., 0] * 77 + rgb[..., 1] * 150 + rgb[..., 2] * 29) >> 8).astype(np.uint8)


def _fit(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """sd-cli's resize: centre-crop to the target's aspect ratio, then resize (box filter)."""
    h, w = array.shape[:2]
    if (w, h) == (width, height):
        return array
    dst_aspect, src_aspect = width / height, w / h
    x0, y0, cw, ch = 0, 0, w, h
    if src_aspect > dst_aspect:
        cw = int(h * dst_aspect)
        x0 = (w - cw) // 2
    elif src_aspect < dst_aspect:
        ch = int(w / dst_aspect)
        y0 = (h - ch) // 2
    LOG.info("resize input image from %dx%d to %dx%d", w, h, width, height)
    image = Image.fromarray(np.ascontiguousarray(array[y0:y0 + ch, x0:x0 + cw]))
    return np.asarray(image.resize((width, height), Image.Resampling.BOX))


def load_image(path: str, argument: str, size: Optional[tuple[int, int]] = None) -> np.ndarray:
    """An RGB image as (H, W, 3) uint8; fitted to ``size`` (width, height) when given."""
    array = _open_rgb_array(path, 3, argument)
    return _fit(array, *size) if size else array


def load_mask(path: str, size: tuple[int, int]) -> np.ndarray:
    """A mask as (H, W) uint8 grey (stb's weights), fitted to ``size``."""
    return _fit(_open_rgb_array(path, 1, "mask"), *size)


def load_folder(folder: str, argument: str, size: Optional[tuple[int, int]] = None,
                limit: int = 0) -> list[np.ndarray]:
    """The images of ``folder`` in name order (sd-cli's extensions), fitted to ``size``; at most ``limit`` (0: all)."""
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"{argument}: {folder!r} is not a folder")
    names = sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(FRAME_SUFFIXES))
    frames = []
    for name in names:
        frames.append(load_image(os.path.join(folder, name), argument, size))
        if limit and len(frames) >= limit:
            break
    return frames


def find_model_file(name: str, folder: Optional[str], suffixes: tuple[str, ...]) -> Optional[Path]:
    """``name`` as a file: absolute, or under ``folder``, as given or with one of ``suffixes`` added."""
    base = Path(name) if Path(name).is_absolute() or not folder else Path(folder) / name
    if base.exists():
        return base
    for suffix in suffixes:
        candidate = base.with_name(base.name + suffix)
        if candidate.exists():
            return candidate
    return None


def extract_loras(prompt: str, lora_dir: Optional[str]) -> tuple[str, list[tuple[str, float, bool]]]:
    """Take ``<lora:NAME:WEIGHT>`` tags out of the prompt, as sd-cli does.

    Returns the prompt without the tags and ``(path, weight, is_high_noise)`` per LoRA,
    sorted by path with weights of the same file added up (sd-cli keeps them in a
    ``std::map``). A tag whose weight does not parse, or whose file is not found, is
    dropped with a warning. With no ``lora_dir`` the prompt is left as it is.
    """
    if not lora_dir:
        return prompt, []
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    for raw_name, raw_weight in LORA_TAG.findall(prompt):
        try:
            weight = float(raw_weight)
        except ValueError:
            LOG.warning("lora %s: weight %r is not a number; ignored", raw_name, raw_weight)
            continue
        is_high = raw_name.startswith("|high_noise|")
        name = raw_name[len("|high_noise|"):] if is_high else raw_name
        found = find_model_file(name, lora_dir, LORA_SUFFIXES)
        if found is None:
            LOG.warning("lora %s not found in %s; ignored", name, lora_dir)
            continue
        key = os.path.normpath(str(found))
        target = high if is_high else low
        target[key] = target.get(key, 0.0) + weight
    cleaned = LORA_TAG.sub("", prompt)
    loras = [(p, w, False) for p, w in sorted(low.items())] + [(p, w, True) for p, w in sorted(high.items())]
    return cleaned, loras


def embeddings_in(folder: Optional[str]) -> dict[str, str]:
    """``--embd-dir``: {file stem: path} of the .gguf, .safetensors and .pt files (a missing folder gives none)."""
    if not folder or not os.path.isdir(folder):
        return {}
    return {Path(e.name).stem: e.path for e in sorted(os.scandir(folder), key=lambda e: e.name)
            if e.is_file() and Path(e.name).suffix in LORA_SUFFIXES}


# --cache-option key -> sd_cache_params_t field; some keys depend on the mode, as in sd-cli.
_CACHE_KEYS: dict[str, tuple[str, type]] = {
    "start": ("start_percent", float), "end": ("end_percent", float), "decay": ("error_decay_rate", float),
    "relative": ("use_relative_threshold", bool), "reset": ("reset_error_on_compute", bool),
    "Fn": ("Fn_compute_blocks", int), "fn": ("Fn_compute_blocks", int), "Bn": ("Bn_compute_blocks", int),
    "bn": ("Bn_compute_blocks", int), "w": ("spectrum_w", float), "m": ("spectrum_m", int),
    "lam": ("spectrum_lam", float), "window": ("spectrum_window_size", int), "flex": ("spectrum_flex_window", float),
    "stop": ("spectrum_stop_percent", float),
}


def cache_settings(mode: Optional[str], options: Optional[str], scm_mask: Optional[str],
                   scm_policy: Optional[str]) -> Optional[dict[str, Any]]:
    """The library's ``cache`` dict from sd-cli's ``--cache-mode``/``--cache-option``/``--scm-*``
    (None without a mode)."""
    if not mode:
        return None
    out: dict[str, Any] = {"mode": mode.replace("-", "_")}
    for token in (options or "").split(","):
        if not token:
            continue
        key, sep, value = token.partition("=")
        if not sep:
            raise ValueError(f"--cache-option: {token!r} lacks '='")
        try:
            if key == "threshold":
                field = "reuse_threshold" if mode in ("easycache", "ucache") else "residual_diff_threshold"
                out[field] = float(value)
            elif key == "warmup":
                out["spectrum_warmup_steps" if mode == "spectrum" else "max_warmup_steps"] = int(value)
            elif key in _CACHE_KEYS:
                field, kind = _CACHE_KEYS[key]
                out[field] = float(value) != 0.0 if kind is bool else kind(value)
            else:
                raise ValueError(f"--cache-option: unknown setting {key!r}")
        except ValueError as exc:
            if "unknown setting" in str(exc):
                raise
            raise ValueError(f"--cache-option: invalid value {value!r} for {key!r}") from None
    if mode in ("easycache", "ucache"):
        threshold = out.get("reuse_threshold")
        start, end = out.get("start_percent", 0.15), out.get("end_percent", 0.95)
        if threshold is not None and threshold < 0:
            raise ValueError("--cache-option: threshold must be non-negative")
        if not 0.0 <= start < end <= 1.0:
            raise ValueError("--cache-option: start and end must satisfy 0 <= start < end <= 1")
    if scm_mask:
        out["scm_mask"] = scm_mask
    if mode in ("dbcache", "taylorseer", "cache-dit"):
        out["scm_policy_dynamic"] = scm_policy != "static"
    return out

