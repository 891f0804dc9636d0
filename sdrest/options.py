"""The keywords a generation takes, typed: ``txt2img(prompt, **options)`` checks against these.

Each key maps onto a field of sd.cpp's ``sd_img_gen_params_t`` / ``sd_vid_gen_params_t``
(see docs/library.md). Omitted keys keep sd.cpp's defaults; unknown keys raise ``TypeError``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Optional, TypedDict, Union

from sdrest.images import ImageLike
from sdrest.progress import PreviewCallback, ProgressCallback


class SamplingOptions(TypedDict, total=False):
    """``sd_sample_params_t``: how the sampler runs.

    ``sampler``/``scheduler`` are sd.cpp's names (``euler_a``, ``karras`` ...; default: the
    model's); ``guidance`` is the distilled guidance of Flux-like models; ``sigmas`` a custom
    schedule; ``skip_layers``/``skip_layer_start``/``skip_layer_end``/``slg_scale`` skip-layer
    guidance for DiT models.
    """

    steps: int
    cfg_scale: float
    img_cfg_scale: float
    guidance: float
    sampler: str
    scheduler: str
    eta: Optional[float]
    shifted_timestep: int
    flow_shift: Optional[float]
    sigmas: Optional[Sequence[float]]
    skip_layers: Optional[Sequence[int]]
    skip_layer_start: float
    skip_layer_end: float
    slg_scale: float


class CommonOptions(SamplingOptions, total=False):
    """What images and videos share: size, seed, LoRAs, VAE tiling, step cache, callbacks.

    ``seed=None`` picks a random seed (reported in the result); ``loras`` takes
    ``LoRA`` objects, paths, ``(path, multiplier)`` pairs or ``{path: multiplier}``;
    ``vae_tiling`` is ``True`` or a dict of ``sd_tiling_params_t`` fields; ``cache`` a dict
    of ``sd_cache_params_t`` fields with ``mode`` by name. ``progress`` gets a
    :class:`~sdrest.Progress` per step, ``preview`` ``(step, images, is_noisy)``;
    ``preview_noisy`` previews the noisy latents instead of the denoised ones;
    ``cancel`` is an event that stops the call within one step.
    """

    negative_prompt: str
    width: int
    height: int
    clip_skip: int
    seed: Optional[int]
    loras: Any
    vae_tiling: Union[bool, Mapping[str, Any], None]
    cache: Optional[Mapping[str, Any]]
    progress: Optional[ProgressCallback]
    preview: Optional[PreviewCallback]
    preview_mode: str
    preview_interval: int
    preview_noisy: bool
    cancel: Optional[threading.Event]


class ImageOptions(CommonOptions, total=False):
    """Image generation: batches, ControlNet, reference images, PhotoMaker, hires fix."""

    batch_count: int
    control_image: Optional[ImageLike]
    control_strength: float
    ref_images: Optional[Sequence[ImageLike]]
    auto_resize_ref_image: bool
    increase_ref_index: bool
    pm_id_images: Optional[Sequence[ImageLike]]
    pm_id_embed_path: Optional[str]
    pm_style_strength: float
    hires: Union[bool, Mapping[str, Any], None]


class VideoOptions(CommonOptions, total=False):
    """Video generation (Wan family): the high-noise expert's sampling (every sampling keyword with a
    ``high_noise_`` prefix), MoE/VACE settings, and ``strength`` for an init image."""

    strength: float
    high_noise_steps: int
    high_noise_cfg_scale: float
    high_noise_img_cfg_scale: float
    high_noise_guidance: float
    high_noise_sampler: str
    high_noise_scheduler: str
    high_noise_eta: Optional[float]
    high_noise_skip_layers: Optional[Sequence[int]]
    high_noise_skip_layer_start: float
    high_noise_skip_layer_end: float
    high_noise_slg_scale: float
    moe_boundary: float
    vace_strength: float
