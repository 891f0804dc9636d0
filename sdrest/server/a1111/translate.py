"""A1111 request bodies onto native ones, checked by the native parser.

Each ``/sdapi/v1`` body becomes the body a native client would send for the same work (``prompt``, ``width``,
``sampling_method``, ``batch_count``, ``init_image``, ``esrgan_model`` ...), which
:class:`~sdrest.server.requests.RequestParser` checks and prepares exactly as for ``/api/generate/*``. Only
A1111's own fields are read here (their types and ranges), and only to translate them: sampler and scheduler
names (:mod:`sdrest.a1111_names`), model names as A1111 clients send them (:mod:`.catalog`), the caller's options
(:mod:`.options`), and the image work A1111 does around img2img (:mod:`.images`). An error from the parser is
answered naming the A1111 field it came from.

Every function here blocks (images are decoded, the models dir may be rescanned): call them from a thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from sdrest import a1111_names
from sdrest.models.registry import ModelEntry
from sdrest.server.a1111 import catalog
from sdrest.server.a1111.errors import as_a1111, field_error
from sdrest.server.a1111.images import FILL_MODES, RESIZE_MODES, InpaintPlan, encode_png, plan_img2img
from sdrest.server.errors import ApiError
from sdrest.server.requests import Fields, Prepared, RequestParser, display_name

__all__ = ["A1111_FIELDS", "Extras", "Generation", "extras", "generation", "img2img_defaults", "resize_plain",
           "txt2img_defaults"]

#: native field -> the A1111 field it is made from, for errors from the parser
A1111_FIELDS = {
    "sampling_method": "sampler_name", "batch_count": "batch_size", "init_image": "init_images[0]",
    "source_image": "init_images[0]", "mask_image": "mask", "strength": "denoising_strength",
    "model": "sd_model_checkpoint", "vae_model": "sd_vae", "taesd_model": "sd_vae",
    "clip_skip": "CLIP_stop_at_last_layers", "esrgan_model": "upscaler_1", "upscale_factor": "upscaling_resize",
    "preview_interval": "show_progress_every_n_steps",
}

#: what A1111 answers in ``parameters`` for a txt2img field the request left out (its API model's defaults)
TXT2IMG_DEFAULTS: dict[str, Any] = {
    "prompt": "", "negative_prompt": "", "styles": None, "seed": -1, "subseed": -1, "subseed_strength": 0,
    "seed_resize_from_h": -1, "seed_resize_from_w": -1, "sampler_name": None, "scheduler": None, "batch_size": 1,
    "n_iter": 1, "steps": 50, "cfg_scale": 7.0, "width": 512, "height": 512, "restore_faces": None, "tiling": None,
    "do_not_save_samples": False, "do_not_save_grid": False, "eta": None, "denoising_strength": None,
    "override_settings": None, "override_settings_restore_afterwards": True, "sampler_index": "Euler",
    "script_name": None, "script_args": [], "send_images": True, "save_images": False, "alwayson_scripts": {},
    "enable_hr": False,
}
IMG2IMG_DEFAULTS: dict[str, Any] = {
    **{k: v for k, v in TXT2IMG_DEFAULTS.items() if k != "enable_hr"}, "init_images": None, "resize_mode": 0,
    "image_cfg_scale": None, "mask": None, "mask_blur": None, "mask_blur_x": 4, "mask_blur_y": 4,
    "inpainting_fill": 0, "inpaint_full_res": True, "inpaint_full_res_padding": 0, "inpainting_mask_invert": 0,
    "initial_noise_multiplier": None, "denoising_strength": 0.75, "include_init_images": False,
}


def txt2img_defaults() -> dict[str, Any]:
    """A copy of :data:`TXT2IMG_DEFAULTS`."""
    return dict(TXT2IMG_DEFAULTS)


def img2img_defaults() -> dict[str, Any]:
    """A copy of :data:`IMG2IMG_DEFAULTS`."""
    return dict(IMG2IMG_DEFAULTS)


@dataclass
class Generation:
    """A translated txt2img or img2img request: what to queue, how to finish its images, and what to echo."""

    prepared: Prepared
    plan: InpaintPlan | None
    parameters: dict[str, Any]
    prompt: str
    negative_prompt: str
    send_images: bool


@dataclass
class Extras:
    """A translated extras (upscale) request for one image: the job to queue (None for a plain resize, done in
    ``resized``), and the size A1111 answers with (it resizes the model's output to it)."""

    prepared: Prepared | None
    target: tuple[int, int]
    crop: tuple[int, int] | None = None
    resized: Image.Image | None = None
    upscaler: str = "None"
    notes: list[str] = field(default_factory=list)


def _parse(parse: Callable[[], Prepared], fields: dict[str, str] = A1111_FIELDS) -> Prepared:
    try:
        return parse()
    except ApiError as exc:
        raise as_a1111(exc, fields) from None


def _flag(f: Fields, name: str, default: bool) -> bool:
    """A boolean A1111 also takes as 0 or 1."""
    value = f.body.get(name)
    if value in (0, 1) and not isinstance(value, bool):
        return bool(value)
    return f.boolean(name, default)


def _refuse_unsupported(f: Fields) -> None:
    """422 for what A1111 can do and sdrest cannot, when a request asks for it (its defaults are accepted)."""
    for name, what in (("enable_hr", "hires fix"), ("restore_faces", "face restoration"), ("tiling", "tiling")):
        if f.body.get(name) not in (None, False, 0):
            raise field_error(name, f"{what} is not supported by this server")
    script = f.string("script_name", None, 200)
    if script:
        raise field_error("script_name", f"Script '{script}' not found")
    scripts = f.body.get("alwayson_scripts")
    if scripts not in (None, {}):
        if not isinstance(scripts, dict):
            raise field_error("alwayson_scripts", "expected an object")
        raise field_error("alwayson_scripts", f"always on script {next(iter(scripts))} not found")


def _choose_model(parser: RequestParser, rescan: Callable[[], Any], ref: str, field_name: str,
                  find: Callable[[], list[ModelEntry]], what: str) -> ModelEntry:
    hits = find()
    if not hits:
        rescan()
        hits = find()
    if not hits:
        raise field_error(field_name, f"no {what} {ref!r}")
    if len(hits) > 1:
        raise field_error(field_name, f"{ref!r} is ambiguous: {', '.join(catalog.title(e) for e in hits)}")
    return hits[0]


def _settings(f: Fields, options: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The options this request runs with (the caller's, under its ``override_settings``) and the prefix naming
    where a bad one came from in errors."""
    overrides = f.body.get("override_settings")
    if overrides is None:
        return dict(options), ""
    if not isinstance(overrides, dict):
        raise field_error("override_settings", "expected an object")
    return {**options, **overrides}, "override_settings."


def _apply_settings(native: dict[str, Any], settings: Mapping[str, Any], prefix: str, parser: RequestParser,
                    rescan: Callable[[], Any]) -> None:
    """The model, VAE, CLIP skip and previews the caller's options (and the request's overrides) choose."""
    registry = parser.registry
    checkpoint = settings.get("sd_model_checkpoint")
    if checkpoint not in (None, ""):
        if not isinstance(checkpoint, str) or not checkpoint.strip():
            raise field_error(prefix + "sd_model_checkpoint", "expected a model title or name")
        entry = _choose_model(parser, rescan, checkpoint, prefix + "sd_model_checkpoint",
                              lambda: catalog.find_checkpoint(checkpoint, registry), "checkpoint")
        native["model"] = entry.id
    vae = settings.get("sd_vae")
    if vae is not None and (not isinstance(vae, str) or vae.strip().lower() not in ("", "automatic", "none")):
        if not isinstance(vae, str):
            raise field_error(prefix + "sd_vae", "expected a VAE name, Automatic or None")
        entry = _choose_model(parser, rescan, vae, prefix + "sd_vae",
                              lambda: catalog.find_named(vae, [e for e in registry.entries()
                                                               if e.kind in ("vae", "taesd")]), "VAE")
        native["taesd_model" if entry.kind == "taesd" else "vae_model"] = entry.id
    skip = Fields(settings).integer("CLIP_stop_at_last_layers", 1, 1, 12) if "CLIP_stop_at_last_layers" in settings \
        else 1
    if skip and skip > 1:
        native["clip_skip"] = skip
    every = settings.get("show_progress_every_n_steps")
    if settings.get("live_previews_enable") is True and isinstance(every, int) and not isinstance(every, bool) \
            and every > 0:
        native["preview"] = True
        native["preview_interval"] = min(every, 1000)


def _common(f: Fields, parser: RequestParser, rescan: Callable[[], Any], options: Mapping[str, Any],
            max_batch: int) -> dict[str, Any]:
    """The native fields shared by txt2img and img2img."""
    _refuse_unsupported(f)
    native: dict[str, Any] = {}
    for name in ("prompt", "negative_prompt", "width", "height", "steps", "cfg_scale", "seed"):
        if f.has(name):
            native[name] = f.body[name]
    sampler = f.string("sampler_name", None, 200) or f.string("sampler_index", None, 200)
    try:
        native["sampling_method"], native["scheduler"] = a1111_names.resolve(
            sampler, f.string("scheduler", None, 200), parser.samplers, parser.schedulers)
    except a1111_names.UnknownName as exc:
        raise field_error(exc.field, str(exc)) from None
    size = f.integer("batch_size", 1, 1, max_batch) or 1
    iterations = f.integer("n_iter", 1, 1, max_batch) or 1
    native["batch_count"] = size * iterations
    settings, prefix = _settings(f, options)
    _apply_settings(native, settings, prefix, parser, rescan)
    return {k: v for k, v in native.items() if v is not None}


def _echo(body: Mapping[str, Any], defaults: dict[str, Any], prepared: Prepared) -> dict[str, Any]:
    """The ``parameters`` A1111 answers: the request over A1111's defaults, with the size, steps and CFG scale the
    job really ran with where the request left them out (the model family's, not A1111's)."""
    echo = {**defaults, **body}
    for name in ("width", "height", "steps", "cfg_scale"):
        if name not in body and prepared.params.get(name) is not None:
            echo[name] = prepared.params[name]
    return echo


def generation(kind: str, body: Mapping[str, Any], parser: RequestParser, rescan: Callable[[], Any],
               options: Mapping[str, Any], max_batch: int) -> Generation:
    """A translated ``txt2img`` or ``img2img`` request (``kind``), prepared by the parser."""
    f = Fields(body)
    native = _common(f, parser, rescan, options, max_batch)
    send = _flag(f, "send_images", True)
    prompt, negative = f.string("prompt", "", 10**6) or "", f.string("negative_prompt", "", 10**6) or ""
    if kind == "txt2img":
        prepared = _parse(lambda: parser.generation("txt2img", native))
        return Generation(prepared, None, _echo(body, txt2img_defaults(), prepared), prompt, negative, send)
    # the size and every field the parser checks, before any image work at that size
    probe = _parse(lambda: parser.generation("txt2img", native))
    width, height = probe.params["width"], probe.params["height"]
    init_images = body.get("init_images")
    if not isinstance(init_images, list) or not init_images:
        raise field_error("init_images", "required: a list of base64 images")
    image = parser.image(init_images[0], "init_images[0]")
    mask_value = body.get("mask")
    mask = parser.image(mask_value, "mask") if mask_value not in (None, "") else None
    blur = f.integer("mask_blur", None, 0, 64)
    if blur is None:
        blur = max(f.integer("mask_blur_x", 4, 0, 64) or 0, f.integer("mask_blur_y", 4, 0, 64) or 0)
    plan = plan_img2img(
        image, mask, width=width, height=height,
        resize_mode=f.integer("resize_mode", 0, min(RESIZE_MODES), max(RESIZE_MODES)) or 0,
        mask_blur=blur, invert=_flag(f, "inpainting_mask_invert", False),
        fill=f.integer("inpainting_fill", 0, min(FILL_MODES), max(FILL_MODES)) or 0,
        full_res=_flag(f, "inpaint_full_res", True),
        padding=f.integer("inpaint_full_res_padding", 0, 0, 1024) or 0, seed=probe.params["seed"])
    native.update(width=width, height=height, seed=probe.params["seed"], init_image=encode_png(plan.image))
    if f.has("denoising_strength"):
        native["strength"] = body["denoising_strength"]
    native_kind = "img2img"
    if plan.mask is not None:
        native_kind, native["mask_image"] = "inpainting", encode_png(plan.mask)
    prepared = _parse(lambda: parser.generation(native_kind, native))
    echo = _echo(body, img2img_defaults(), prepared)
    if not _flag(f, "include_init_images", False):
        echo["init_images"], echo["mask"] = None, None
    return Generation(prepared, plan if plan.mask is not None else None, echo, prompt, negative, send)


def _plain(name: str) -> str | None:
    return next((n for n in catalog.UPSCALER_NAMES if n.lower() == name.strip().lower()), None)


def resize_plain(image: Image.Image, size: tuple[int, int], upscaler: str) -> Image.Image:
    """What A1111's model-less upscalers do: "Nearest" resizes with the nearest pixel, "None" and "Lanczos" with
    Lanczos."""
    method = Image.Resampling.NEAREST if upscaler == "Nearest" else Image.Resampling.LANCZOS
    return image.convert("RGB").resize(size, method)


def extras(body: Mapping[str, Any], image_value: Any, image_field: str, parser: RequestParser,
           rescan: Callable[[], Any], max_pixels: int) -> Extras:
    """One image of an ``extra-single-image`` or ``extra-batch-images`` request: the upscale job the parser
    prepares (an ESRGAN model, by the smallest whole factor that reaches A1111's size), or the plain resize."""
    f = Fields(body)
    for name, what in (("gfpgan_visibility", "GFPGAN"), ("codeformer_visibility", "CodeFormer")):
        if (f.number(name, 0.0, 0.0, 1.0) or 0.0) > 0:
            raise field_error(name, f"face restoration ({what}) is not supported by this server")
    second = f.string("upscaler_2", "None", 200) or "None"
    if _plain(second) != "None" and (f.number("extras_upscaler_2_visibility", 0.0, 0.0, 1.0) or 0.0) > 0:
        raise field_error("upscaler_2", "a second upscaler is not supported by this server")
    image = parser.image(image_value, image_field).convert("RGB")
    mode = f.integer("resize_mode", 0, 0, 1)
    crop: tuple[int, int] | None = None
    if mode == 1:
        to_w = f.integer("upscaling_resize_w", 512, 1, 16384) or 512
        to_h = f.integer("upscaling_resize_h", 512, 1, 16384) or 512
        scale = max(to_w / image.width, to_h / image.height)
        if _flag(f, "upscaling_crop", True):
            crop = (to_w, to_h)
    else:
        scale = f.number("upscaling_resize", 2.0, 0.01, 8.0) or 2.0
    # A1111's size: each side times the scale, down to a multiple of 8
    target = (max(8, int(image.width * scale) // 8 * 8), max(8, int(image.height * scale) // 8 * 8))
    if target[0] * target[1] > 4 * max_pixels:
        raise field_error("upscaling_resize", f"the result would be {target[0]}x{target[1]}, more than "
                                              f"{4 * max_pixels} pixels")
    name = f.string("upscaler_1", "None", 200) or "None"
    plain = _plain(name)
    if plain is not None or scale <= 1:
        upscaler = plain or "Lanczos"
        return Extras(None, target, crop, resize_plain(image, target, upscaler), upscaler)
    entry = _choose_model(parser, rescan, name, "upscaler_1", lambda: catalog.find_named(
        name, [e for e in parser.registry.entries() if e.kind == "esrgan"]), "upscaler")
    native = {"image": image_value, "esrgan_model": entry.id, "upscale_factor": min(8, max(1, math.ceil(scale)))}
    prepared = _parse(lambda: parser.upscale(native), {**A1111_FIELDS, "image": image_field})
    return Extras(prepared, target, crop, None, display_name(entry))
