"""``StableDiffusion``: a loaded model, ready to turn prompts into images."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from typing_extensions import Unpack

import numpy as np
from PIL import Image

from sdrest import _native, names
from sdrest.checks import (MAX_SIDE, PathLike, check_cache, check_float, check_int, check_path, check_schedule,
                           check_side, check_sigmas, check_tiling, hires_schedule_steps)
from sdrest.errors import Cancelled
from sdrest.imagefiles import has_pattern, output_paths, save_webp_animation, write_all
from sdrest.images import ImageLike, size_of, to_array, to_pil
from sdrest.infotext import infotext
from sdrest.logs import sync_log_threshold
from sdrest.options import ImageOptions, VideoOptions
from sdrest.parameters import describe
from sdrest.progress import ProgressCallback, preview_adapter, progress_adapter
from sdrest.threads import available_physical_cores


#: Largest batch accepted in one call.
MAX_BATCH = 1024
#: Largest step count accepted.
MAX_STEPS = 10000
#: what :meth:`StableDiffusion.cancel` stops: everything now, or the rest of the batch after the current image
CANCEL_MODES = {"all": _native.CancelMode.ALL, "new_latents": _native.CancelMode.NEW_LATENTS}

# Keyword -> sd_ctx_params_t field, for the model files.
_PATH_ARGUMENTS = {
    "model": "model_path",
    "diffusion_model": "diffusion_model_path",
    "high_noise_diffusion_model": "high_noise_diffusion_model_path",
    "vae": "vae_path",
    "taesd": "taesd_path",
    "clip_l": "clip_l_path",
    "clip_g": "clip_g_path",
    "clip_vision": "clip_vision_path",
    "t5xxl": "t5xxl_path",
    "llm": "llm_path",
    "llm_vision": "llm_vision_path",
    "control_net": "control_net_path",
    "photo_maker": "photo_maker_path",
}

# Where sdrest's defaults differ from sd_ctx_params_init(), and why. None changes pixels.
_CONTEXT_OVERRIDES = {
    # A library context serves many calls: keep the weights after the first one.
    "free_params_immediately": False,
    # img2img and inpainting need the VAE encoder; loading it costs little.
    "vae_decode_only": False,
}


@dataclass(frozen=True)
class LoRA:
    """A LoRA applied to one call: a file and its strength."""

    path: PathLike
    multiplier: float = 1.0
    is_high_noise: bool = False


LoRAArgument = Union[LoRA, PathLike, tuple[PathLike, float], Mapping[str, float]]


@dataclass
class GenerationResult:
    """What a generation returns: the images, the seed of each, and the parameters used.

    ``parameters`` is JSON-safe and friendly (see :func:`sdrest.parameters.describe`):
    sampler and scheduler by name, ``seeds`` one per image, model names. Each image carries
    its A1111 ``parameters`` text in ``image.info["parameters"]``; :meth:`save` writes it along.
    """

    images: list[Image.Image]
    seeds: list[int]
    parameters: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Image.Image]:
        return iter(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Image.Image:
        return self.images[index]

    def output_paths(self, path_or_pattern: PathLike, *, begin_index: int = 0) -> list[Path]:
        """Where :meth:`save` writes each image (see :func:`sdrest.imagefiles.output_paths`)."""
        return output_paths(os.fspath(path_or_pattern), self.seeds, begin_index=begin_index)

    def save(self, path_or_pattern: PathLike, *, overwrite: bool = True, begin_index: int = 0,
             fps: int = 16) -> list[Path]:
        """Write the images, each carrying its parameters; returns the paths written.

        ``"cat.png"`` for one image; for several, ``"cat_%03d.png"``, ``"cat-{seed}.png"`` or
        ``"cat-{index}.png"`` (a plain ``"cat.png"`` becomes ``cat_0.png, cat_1.png ...``, as
        sd.cpp's CLI does). A video's frames go to one animated WebP when the name ends in
        ``.webp`` and has no pattern. Nothing is written unless everything can be (all or nothing);
        ``overwrite=False`` raises ``FileExistsError`` first.
        """
        target = os.fspath(path_or_pattern)
        if self.parameters.get("mode") == "video" and len(self.images) > 1 and not has_pattern(target) \
                and Path(target).suffix.lower() == ".webp":
            return [save_webp_animation(self.images, Path(target), fps=fps, overwrite=overwrite,
                                        parameters=self.images[0].info.get("parameters"))]
        paths = self.output_paths(target, begin_index=begin_index)
        return write_all(self.images, paths, [image.info.get("parameters") for image in self.images],
                         overwrite=overwrite)


def _scheduler_name(value: int) -> Optional[str]:
    """sd.cpp's name of a ``scheduler_t`` value; ``None`` for ``SCHEDULER_COUNT`` (the model's default)."""
    return next((name for name, v in names.scheduler_table().items() if v == value), None)


def _check_keywords(options: Mapping[str, Any], allowed: type, method: str) -> None:
    """``TypeError`` for a keyword the options TypedDict does not declare."""
    for key in options:
        if key not in allowed.__annotations__:
            raise TypeError(f"{method}() got an unexpected keyword argument {key!r}")


def _lora_list(loras: Optional[Union[LoRAArgument, Sequence[LoRAArgument]]]) -> list[dict[str, Any]]:
    if loras is None:
        return []
    if isinstance(loras, Mapping):
        items: list[Any] = [LoRA(p, m) for p, m in loras.items()]
    elif isinstance(loras, (LoRA, str, os.PathLike)):
        items = [loras]
    else:
        items = list(loras)
    out = []
    for i, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            item = LoRA(item)
        elif isinstance(item, tuple):
            item = LoRA(*item)
        if not isinstance(item, LoRA):
            raise TypeError(f"loras[{i}]: expected a LoRA, a path or a (path, multiplier) pair")
        out.append({
            "path": check_path(item.path, f"loras[{i}]"),
            "multiplier": check_float(item.multiplier, f"loras[{i}].multiplier", -100.0, 100.0),
            "is_high_noise": bool(item.is_high_noise),
        })
    return out


class StableDiffusion:
    """A stable-diffusion.cpp context: the model files loaded and ready to generate.

    Every ``sd_ctx_params_t`` field is a keyword: the model files by short names
    (``model``, ``diffusion_model``, ``vae``, ``taesd``, ``clip_l``, ``clip_g``,
    ``t5xxl``, ``llm``, ``control_net``, ``photo_maker``, ...), the rest by sd.cpp's
    own field names (``offload_params_to_cpu``, ``flash_attn``, ``wtype`` ...).
    Defaults are sd.cpp's, except that weights are kept between calls and the VAE
    encoder is loaded (neither changes pixels). ``n_threads=None`` uses the
    physical cores this process can actually run on.

    Use it as a context manager, or call :meth:`close`. Calls from several threads
    on one instance run one after another.
    """

    def __init__(
        self,
        model: Optional[PathLike] = None,
        *,
        diffusion_model: Optional[PathLike] = None,
        high_noise_diffusion_model: Optional[PathLike] = None,
        vae: Optional[PathLike] = None,
        taesd: Optional[PathLike] = None,
        clip_l: Optional[PathLike] = None,
        clip_g: Optional[PathLike] = None,
        clip_vision: Optional[PathLike] = None,
        t5xxl: Optional[PathLike] = None,
        llm: Optional[PathLike] = None,
        llm_vision: Optional[PathLike] = None,
        control_net: Optional[PathLike] = None,
        photo_maker: Optional[PathLike] = None,
        embeddings: Optional[Mapping[str, PathLike]] = None,
        n_threads: Optional[int] = None,
        wtype: Optional[str] = None,
        rng: str = "cuda",
        sampler_rng: Optional[str] = None,
        prediction: Optional[str] = None,
        lora_apply_mode: str = "auto",
        tensor_type_rules: Optional[str] = None,
        progress: Optional[ProgressCallback] = None,
        **options: Any,
    ) -> None:
        self._ctx: Optional[_native.Context] = None
        params = self._context_params(locals(), options)
        self.model_files = {k: params[v] for k, v in _PATH_ARGUMENTS.items() if params.get(v)}
        self.n_threads: int = params["n_threads"]
        rng_names = {v: k for k, v in names.rng_table().items()}
        self._rng: Optional[str] = rng_names.get(params["rng_type"])
        self._sampler_rng: Optional[str] = rng_names.get(params.get("sampler_rng_type", -1))
        sync_log_threshold()
        adapter = progress_adapter(progress, None, lambda: None)
        self._ctx = _native.Context(params, adapter)
        self._default_sampler = names.samplers()[self._ctx.default_sample_method()]
        self._supports_video: bool = self._ctx.supports_video_generation()

    # -- construction ---------------------------------------------------------------

    @staticmethod
    def _context_params(arguments: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        defaults = _native.default_ctx_params()
        params: dict[str, Any] = {}
        for argument, c_field in _PATH_ARGUMENTS.items():
            value = arguments[argument]
            if value is not None:
                params[c_field] = check_path(value, argument)
        if not params.get("model_path") and not params.get("diffusion_model_path"):
            raise ValueError("model: give a model file (model=...) or a diffusion model (diffusion_model=...)")
        embeddings = arguments["embeddings"]
        if embeddings:
            params["embeddings"] = [
                {"name": str(name), "path": check_path(path, f"embeddings[{name!r}]")}
                for name, path in embeddings.items()
            ]
        n_threads = arguments["n_threads"]
        params["n_threads"] = (
            available_physical_cores() if n_threads is None else check_int(n_threads, "n_threads", 1, 4096)
        )
        if arguments["wtype"] is not None:
            params["wtype"] = names.lookup(names.type_table, arguments["wtype"], "wtype")
        params["rng_type"] = names.lookup(names.rng_table, arguments["rng"], "rng")
        if arguments["sampler_rng"] is not None:
            params["sampler_rng_type"] = names.lookup(names.rng_table, arguments["sampler_rng"], "sampler_rng")
        if arguments["prediction"] is not None:
            params["prediction"] = names.lookup(names.prediction_table, arguments["prediction"], "prediction")
        params["lora_apply_mode"] = names.lookup(names.lora_apply_mode_table, arguments["lora_apply_mode"], "lora_apply_mode")
        if arguments["tensor_type_rules"] is not None:
            params["tensor_type_rules"] = str(arguments["tensor_type_rules"])
        params.update(_CONTEXT_OVERRIDES)
        reserved = set(_PATH_ARGUMENTS.values()) | {"embeddings", "n_threads", "wtype", "rng_type",
                                                   "sampler_rng_type", "prediction", "lora_apply_mode",
                                                   "tensor_type_rules"}
        for key, value in options.items():
            if key not in defaults or key in reserved:
                raise TypeError(f"StableDiffusion() got an unexpected keyword argument {key!r}")
            expected = type(defaults[key])
            if expected is bool and not isinstance(value, bool):
                raise TypeError(f"{key}: expected a bool, got {type(value).__name__}")
            if expected is float:
                value = check_float(value, key)
            if expected is int:
                value = check_int(value, key, -(2**31), 2**31 - 1)
            params[key] = value
        return params

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop what runs, free the native context. Safe to call twice."""
        ctx = self._ctx
        if ctx is not None:
            ctx.close()  # refuses (ValueError) when called from this context's own callback
            self._ctx = None

    def __enter__(self) -> "StableDiffusion":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        ctx = getattr(self, "_ctx", None)
        if ctx is not None:
            try:
                ctx.close()
            except Exception:  # noqa: BLE001 - never raise from a finaliser
                pass

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._ctx is None

    def _context(self) -> _native.Context:
        ctx = self._ctx
        if ctx is None:
            raise ValueError("this StableDiffusion is closed")
        return ctx

    def cancel(self, mode: str = "all") -> None:
        """Stop the generation in flight from any thread; a no-op when idle.

        ``all`` stops at the next step (the call raises :class:`Cancelled`); ``new_latents`` lets the image
        being sampled finish and starts no other of the batch (the call returns the images finished so far).
        """
        if mode not in CANCEL_MODES:
            raise ValueError(f"mode: expected one of {', '.join(CANCEL_MODES)}, got {mode!r}")
        ctx = self._ctx
        if ctx is not None:
            ctx.cancel(CANCEL_MODES[mode])

    # -- what the model can do -----------------------------------------------------------

    @property
    def default_sampler(self) -> str:
        """sd.cpp's default sampler for this model."""
        return self._default_sampler

    def default_scheduler(self, sampler: Optional[str] = None) -> str:
        """sd.cpp's default scheduler for this model and sampler."""
        method = names.lookup(names.sampler_table, sampler or self._default_sampler, "sampler")
        return names.schedulers()[self._context().default_scheduler(method)]

    @property
    def supports_video(self) -> bool:
        """True for the video families (Wan, SVD)."""
        self._context()
        return self._supports_video

    # -- generation -----------------------------------------------------------------------

    def txt2img(self, prompt: str, **options: Unpack[ImageOptions]) -> GenerationResult:
        """Generate images from a prompt; the keywords are :class:`~sdrest.options.ImageOptions`.

        Returns a :class:`GenerationResult` (``.images``, ``.seeds``, ``.parameters``).
        """
        _check_keywords(options, ImageOptions, "txt2img")
        return self._generate_images(prompt, None, dict(options))

    def img2img(self, image: ImageLike, prompt: str, *, strength: float = 0.75, mask: Optional[ImageLike] = None,
                **options: Unpack[ImageOptions]) -> GenerationResult:
        """Generate from an initial image; ``mask`` (white = repaint) makes it inpainting.

        ``width``/``height`` default to the image's size; other keywords as :meth:`txt2img`.
        """
        _check_keywords(options, ImageOptions, "img2img")
        return self._generate_images(prompt, image, dict(options, strength=strength, mask=mask))

    def generate_video(self, prompt: str, *, init_image: Optional[ImageLike] = None, end_image: Optional[ImageLike] = None,
                       control_frames: Optional[Sequence[ImageLike]] = None, video_frames: Optional[int] = None,
                       **options: Unpack[VideoOptions]) -> GenerationResult:
        """Generate video frames (the Wan family, SVD); the keywords are :class:`~sdrest.options.VideoOptions`."""
        _check_keywords(options, VideoOptions, "generate_video")
        self._context()
        kwargs: dict[str, Any] = dict(options)
        if not self._supports_video:
            raise ValueError("this model cannot generate video (only the Wan family and SVD can)")
        params = _native.default_vid_gen_params()
        high: dict[str, Any] = {}
        for key in [k for k in kwargs if k.startswith("high_noise_")]:
            high[key[len("high_noise_"):]] = kwargs.pop(key)
        for key in ("moe_boundary", "vace_strength"):
            if key in kwargs:
                params[key] = check_float(kwargs.pop(key), key)
        if video_frames is not None:
            params["video_frames"] = check_int(video_frames, "video_frames", 1, 10000)
        if "strength" in kwargs:
            params["strength"] = check_float(kwargs.pop("strength"), "strength", 0.0, 1.0)
        if init_image is not None:
            params["init_image"] = to_array(init_image, channels=3, argument="init_image")
        if end_image is not None:
            params["end_image"] = to_array(end_image, channels=3, argument="end_image")
        if control_frames is not None:
            params["control_frames"] = [to_array(f, channels=3, argument="control_frames") for f in control_frames]
        if high:
            high_kwargs = dict(high)
            self._apply_sampling(params["high_noise_sample_params"], high_kwargs, "high_noise_")
            if high_kwargs:
                raise TypeError(f"generate_video() got an unexpected keyword argument 'high_noise_{next(iter(high_kwargs))}'")
        return self._run(params, prompt, kwargs, mode="video")

    def _generate_images(self, prompt: str, image: Optional[ImageLike], kwargs: dict[str, Any]) -> GenerationResult:
        self._context()
        params = _native.default_img_gen_params()
        mode = "txt2img"
        if image is not None:
            mode = "img2img" if kwargs.get("mask") is None else "inpaint"
            init = to_array(image, channels=3, argument="image")
            params["init_image"] = init
            width, height = size_of(init)
            kwargs.setdefault("width", width)
            kwargs.setdefault("height", height)
            params["strength"] = check_float(kwargs.pop("strength"), "strength", 0.0, 1.0)
            mask = kwargs.pop("mask")
            if mask is not None:
                mask_array = to_array(mask, channels=1, argument="mask")
                if size_of(mask_array) != (width, height):
                    raise ValueError(f"mask: size {size_of(mask_array)} differs from the image's {(width, height)}")
            else:
                # sd.cpp's CLI passes an all-white mask when none is given; so do we (same pixels).
                mask_array = np.full((height, width), 255, dtype=np.uint8)
            params["mask_image"] = mask_array
        for key in ("ref_images",):
            if kwargs.get(key) is not None:
                params[key] = [to_array(r, channels=3, argument=key) for r in kwargs.pop(key)]
        for key in ("auto_resize_ref_image", "increase_ref_index"):
            if key in kwargs:
                params[key] = bool(kwargs.pop(key))
        if kwargs.get("control_image") is not None:
            params["control_image"] = to_array(kwargs.pop("control_image"), channels=3, argument="control_image")
        if "control_strength" in kwargs:
            params["control_strength"] = check_float(kwargs.pop("control_strength"), "control_strength", 0.0, 10.0)
        pm = params["pm_params"]
        if kwargs.get("pm_id_images") is not None:
            pm["id_images"] = [to_array(i, channels=3, argument="pm_id_images") for i in kwargs.pop("pm_id_images")]
        if kwargs.get("pm_id_embed_path") is not None:
            pm["id_embed_path"] = check_path(kwargs.pop("pm_id_embed_path"), "pm_id_embed_path")
        if "pm_style_strength" in kwargs:
            pm["style_strength"] = check_float(kwargs.pop("pm_style_strength"), "pm_style_strength", 0.0, 100.0)
        if kwargs.get("hires") is not None:
            params["hires"] = self._hires(params["hires"], kwargs.pop("hires"))
        kwargs.pop("hires", None)
        return self._run(params, prompt, kwargs, mode=mode)

    @staticmethod
    def _hires(defaults: dict[str, Any], hires: Any) -> dict[str, Any]:
        if hires is True:
            hires = {}
        if not isinstance(hires, Mapping):
            raise TypeError("hires: expected a dict of hires-fix settings (or True)")
        out = dict(defaults, enabled=True)
        for key, value in hires.items():
            if key == "upscaler":
                out["upscaler"] = names.lookup(names.hires_upscaler_table, value, "hires.upscaler")
            elif key == "model_path":
                out["model_path"] = check_path(value, "hires.model_path")
            elif key in ("target_width", "target_height"):
                out[key] = check_side(value, f"hires.{key}")
            elif key == "steps":
                out[key] = check_int(value, "hires.steps", 0, MAX_STEPS)
            elif key == "upscale_tile_size":
                out[key] = check_int(value, "hires.upscale_tile_size", 1, MAX_SIDE)
            elif key == "scale":
                out[key] = check_float(value, "hires.scale", 0.0, 16.0)
            elif key == "denoising_strength":
                # sd.cpp clamps it to 0.0001 and divides the steps by it: 0 would mean 10000 times the steps
                strength = check_float(value, "hires.denoising_strength", 0.0, 1.0)
                if strength <= 0.0:
                    raise ValueError(f"hires.denoising_strength: must be above 0 and at most 1, got {value}")
                out[key] = strength
            elif key == "enabled":
                out[key] = bool(value)
            else:
                raise TypeError(f"hires: unknown setting {key!r}")
        return out

    def _apply_sampling(self, sample: dict[str, Any], kwargs: dict[str, Any], prefix: str = "") -> None:
        """Move the sampling keywords from ``kwargs`` into an ``sd_sample_params_t`` dict."""
        guidance = sample["guidance"]
        if "steps" in kwargs:
            sample["sample_steps"] = check_int(kwargs.pop("steps"), prefix + "steps", 1, MAX_STEPS)
        if "cfg_scale" in kwargs:
            guidance["txt_cfg"] = check_float(kwargs.pop("cfg_scale"), prefix + "cfg_scale", -100.0, 100.0)
        if "img_cfg_scale" in kwargs:
            guidance["img_cfg"] = check_float(kwargs.pop("img_cfg_scale"), prefix + "img_cfg_scale", -100.0, 100.0)
        if "guidance" in kwargs:
            guidance["distilled_guidance"] = check_float(kwargs.pop("guidance"), prefix + "guidance", -100.0, 100.0)
        sampler = kwargs.pop("sampler", None)
        method = names.lookup(names.sampler_table, sampler, prefix + "sampler") if sampler is not None else None
        if method is not None:
            sample["sample_method"] = method
        scheduler = kwargs.pop("scheduler", None)
        if scheduler is not None:
            sample["scheduler"] = names.lookup(names.scheduler_table, scheduler, prefix + "scheduler")
        if kwargs.get("eta") is not None:
            sample["eta"] = check_float(kwargs.pop("eta"), prefix + "eta", 0.0, 100.0)
        kwargs.pop("eta", None)
        if "shifted_timestep" in kwargs:
            sample["shifted_timestep"] = check_int(kwargs.pop("shifted_timestep"), prefix + "shifted_timestep", 0, 1000)
        if kwargs.get("flow_shift") is not None:
            sample["flow_shift"] = check_float(kwargs.pop("flow_shift"), prefix + "flow_shift", 0.0, 100.0)
        kwargs.pop("flow_shift", None)
        if kwargs.get("sigmas") is not None:
            sample["custom_sigmas"] = check_sigmas(kwargs.pop("sigmas"), prefix + "sigmas")
        kwargs.pop("sigmas", None)
        slg = guidance["slg"]
        if kwargs.get("skip_layers") is not None:
            slg["layers"] = [check_int(x, prefix + "skip_layers", 0, 1000) for x in kwargs.pop("skip_layers")]
        kwargs.pop("skip_layers", None)
        for key, c_key in (("skip_layer_start", "layer_start"), ("skip_layer_end", "layer_end"), ("slg_scale", "scale")):
            if key in kwargs:
                slg[c_key] = check_float(kwargs.pop(key), prefix + key, 0.0, 100.0)
        if not prefix and not sample["custom_sigmas"]:
            # the high-noise pass of a video takes its sigmas from this schedule, so it is the one to check
            check_schedule(_scheduler_name(sample["scheduler"]), sample["sample_steps"], "steps")

    def _run(self, params: dict[str, Any], prompt: str, kwargs: dict[str, Any], *, mode: str) -> GenerationResult:
        ctx = self._context()
        video = mode == "video"
        if not isinstance(prompt, str):
            raise TypeError(f"prompt: expected a string, got {type(prompt).__name__}")
        params["prompt"] = prompt
        negative = kwargs.pop("negative_prompt", "")
        if not isinstance(negative, str):
            raise TypeError(f"negative_prompt: expected a string, got {type(negative).__name__}")
        params["negative_prompt"] = negative
        if "width" in kwargs:
            params["width"] = check_side(kwargs.pop("width"), "width")
        if "height" in kwargs:
            params["height"] = check_side(kwargs.pop("height"), "height")
        if "clip_skip" in kwargs:
            params["clip_skip"] = check_int(kwargs.pop("clip_skip"), "clip_skip", -1, 12)
        batch = 1
        if not video:
            batch = check_int(kwargs.pop("batch_count", 1), "batch_count", 1, MAX_BATCH)
            params["batch_count"] = batch
        seed = kwargs.pop("seed", None)
        if seed is None or (isinstance(seed, int) and not isinstance(seed, bool) and seed < 0):
            seed = secrets.randbelow(2**31)
        params["seed"] = check_int(seed, "seed", 0, 2**63 - 1)
        params["loras"] = _lora_list(kwargs.pop("loras", None))
        self._apply_sampling(params["sample_params"], kwargs)
        sample = params["sample_params"]
        if sample["sample_method"] == _native.SAMPLE_METHOD_COUNT:
            sample["sample_method"] = names.sampler_table()[self._default_sampler]
        if sample["scheduler"] == _native.SCHEDULER_COUNT:
            # What sd.cpp's CLI does before every call: the model's default for this sampler.
            sample["scheduler"] = ctx.default_scheduler(sample["sample_method"])
        hires = params.get("hires")
        if not video and hires and hires["enabled"]:
            # sd.cpp schedules the hires pass with the request's scheduler (resolved above, as sd-cli does)
            length = hires_schedule_steps(sample["sample_steps"], hires["steps"], hires["denoising_strength"])
            check_schedule(_scheduler_name(sample["scheduler"]), length, "hires.steps")
        tiling = kwargs.pop("vae_tiling", None)
        if tiling:
            tiling = dict(tiling) if isinstance(tiling, Mapping) else tiling
            params["vae_tiling_params"] = check_tiling(tiling, params["vae_tiling_params"])
        cache_settings = kwargs.pop("cache", None)
        if cache_settings:
            if not isinstance(cache_settings, Mapping):
                raise TypeError("cache: expected a dict of step-cache settings")
            cache = check_cache(dict(cache_settings), params["cache"])
            if "mode" in cache_settings:
                cache["mode"] = names.lookup(names.cache_mode_table, cache_settings["mode"], "cache.mode")
            params["cache"] = cache
        progress = kwargs.pop("progress", None)
        preview = kwargs.pop("preview", None)
        noisy = bool(kwargs.pop("preview_noisy", False))
        preview_options = {
            "mode": names.lookup(names.preview_table, kwargs.pop("preview_mode", "proj"), "preview_mode"),
            "interval": check_int(kwargs.pop("preview_interval", 1), "preview_interval", 1, MAX_STEPS),
            "noisy": noisy,
            "denoised": not noisy,
        }
        cancel = kwargs.pop("cancel", None)
        if cancel is not None and not hasattr(cancel, "is_set"):
            raise TypeError("cancel: expected a threading.Event")
        if kwargs:
            raise TypeError(f"unexpected keyword argument {next(iter(kwargs))!r}")
        for callback, argument in ((progress, "progress"), (preview, "preview")):
            if callback is not None and not callable(callback):
                raise TypeError(f"{argument}: expected a callable")
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled before it started")
        sync_log_threshold()
        adapter = progress_adapter(progress, cancel, ctx.cancel)
        generate = ctx.generate_video if video else ctx.generate_image
        # The native context serializes calls from several threads.
        arrays = generate(params, adapter, preview_adapter(preview), preview_options)
        seed = params["seed"]
        seeds = [seed] * len(arrays) if video else [seed + i for i in range(len(arrays))]
        friendly = describe(params, mode=mode, seeds=seeds, model_files=self.model_files, rng=self._rng,
                            sampler_rng=self._sampler_rng)
        images = [to_pil(a) for a in arrays]
        for image, image_seed in zip(images, seeds):
            image.info["parameters"] = infotext(friendly, image_seed)
        return GenerationResult(images, seeds, friendly)
