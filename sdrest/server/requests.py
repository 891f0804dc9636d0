"""Request bodies to job parameters: every field checked, every model resolved, before anything is queued."""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from PIL import Image

from sdrest.checks import ArgumentError, check_schedule
from sdrest.config import ServerConfig
from sdrest.generation_fields import BY_NAME, MAX_PROMPT, MAX_SIDE, UPSCALE_FACTOR, family_defaults, fields_for
from sdrest.generation_fields import Field as GenerationField
from sdrest.models.companions import resolve
from sdrest.models.registry import MODEL_EXTENSIONS, ModelEntry, Registry
from sdrest.server.body import read_json  # noqa: F401  (routes import it from here)
from sdrest.server.errors import ApiError, invalid
from sdrest.server.images import decode_image
from sdrest.server.urlfetch import UrlFetcher

#: ``<lora:name>`` or ``<lora:name:weight>``. Every repeat is bounded and no two can trade characters, so a
#: scan costs at most a few hundred steps per ``<`` of the prompt: linear, whatever the prompt holds
_LORA_IN_PROMPT = re.compile(r"<lora:([^:<>]{1,256})(?::([^:<>]{1,32}))?>")
_LORA_WEIGHT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")

class Fields:
    """Typed reads of a request body; every failure is a 422 naming the field. A field given as ``null`` is
    read as not given (its default)."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body

    def has(self, name: str) -> bool:
        return self.body.get(name) is not None

    def _get(self, name: str, default: Any) -> Any:
        value = self.body.get(name)
        return default if value is None else value

    def integer(self, name: str, default: int | None, low: int, high: int) -> int | None:
        value = self._get(name, default)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(name, f"expected an integer, got {json.dumps(value)[:40]}")
        if not low <= value <= high:
            raise invalid(name, f"must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float | None, low: float, high: float) -> float | None:
        value = self._get(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise invalid(name, f"expected a number, got {json.dumps(value)[:40]}")
        if not low <= value <= high:
            raise invalid(name, f"must be between {low} and {high}, got {value}")
        return float(value)

    def string(self, name: str, default: str | None = None, max_length: int = 1024) -> str | None:
        value = self._get(name, default)
        if value is None:
            return None
        if not isinstance(value, str):
            raise invalid(name, "expected a string")
        if len(value) > max_length:
            raise invalid(name, f"longer than {max_length} characters")
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise invalid(name, "expected true or false")
        return value

    def choice(self, name: str, choices: list[str]) -> str | None:
        value = self.string(name)
        if value is None or value == "":
            return None
        if value not in choices:
            raise invalid(name, f"unknown value {value!r}; expected one of: {', '.join(choices)}")
        return value


#: companion role -> the request field that names it explicitly
ROLE_FIELDS = {"vae": "vae_model", "taesd": "taesd_model", "clip_l": "clip_l_model", "clip_g": "clip_g_model",
               "t5xxl": "t5xxl_model", "llm": "llm_model"}
LOADABLE_KINDS = ("checkpoint", "diffusion_model")


def display_name(entry: ModelEntry) -> str:
    """The name a person knows a model by: the file name without its model extension (A1111's "Model")."""
    path = PurePosixPath(entry.name)
    return path.stem if path.suffix.lower() in MODEL_EXTENSIONS else entry.name


@dataclass
class Prepared:
    """A request turned into job parameters and the input images to store with the job."""

    kind: str
    params: dict[str, Any]
    images: dict[str, Image.Image]


class RequestParser:
    """Turns request bodies into job parameters using the config's limits and the models registry."""

    def __init__(self, config: ServerConfig, registry: Registry, rescan: Callable[[], Any], samplers: list[str],
                 schedulers: list[str], weight_types: list[str], loaded_model: Callable[[], str | None]) -> None:
        self.config = config
        self.registry = registry
        self._rescan = rescan
        self.samplers = samplers
        self.schedulers = schedulers
        self.weight_types = weight_types
        self._loaded_model = loaded_model
        #: fetches image fields given as http(s) URLs; None when the server does not (``url_images`` off)
        self.urls: UrlFetcher | None = UrlFetcher.from_config(config) if config.url_images else None

    def image(self, value: Any, field: str) -> Image.Image:
        """The image field ``field``: base64, a data URL, or an http(s) URL when ``url_images`` is on; checked
        and decoded (:func:`~sdrest.server.images.decode_image`). Blocking: call it from a worker thread."""
        return decode_image(value, field, self.config.max_pixels, self.urls)

    # -- models ---------------------------------------------------------------------

    def lookup(self, ref: str) -> ModelEntry:
        """The registry entry ``ref`` names (id, relative path, or a unique file name with or without
        extension); rescans once when nothing matches. :class:`KeyError` (with the reason) otherwise."""
        try:
            return self.registry.find(ref)
        except KeyError as exc:
            if "ambiguous" in str(exc):
                raise
        self._rescan()
        return self.registry.find(ref)

    def model(self, ref: Any, field: str, types: tuple[str, ...]) -> ModelEntry:
        """The registry entry ``ref`` names among ``types``; 422 when unknown, ambiguous or of the wrong kind."""
        if not isinstance(ref, str) or not ref:
            raise invalid(field, "expected a model name or id")
        try:
            entry = self.lookup(ref)
        except KeyError as exc:
            reason = exc.args[0] if exc.args else ref
            if "ambiguous" in str(reason):
                raise invalid(field, f"{reason}; name it by id") from None
            raise invalid(field, f"no model {ref!r} in the models dir") from None
        if entry.kind not in types:
            raise invalid(field, f"{ref!r} is a {entry.kind}, not a {' or '.join(types)}")
        return entry

    def _main_model(self, fields: Fields) -> ModelEntry:
        """The model a request names; else the one a worker holds loaded, the configured default, or the only
        checkpoint or diffusion model in the models dir (in that order)."""
        ref = fields.body.get("model") or self._loaded_model() or self.config.default_model
        if not ref:
            candidates = self.registry.search(kind=LOADABLE_KINDS).items
            if len(candidates) == 1:
                return candidates[0]
            raise invalid("model", "required (name a model: GET /api/models?type=checkpoint)")
        return self.model(ref, "model", LOADABLE_KINDS)

    def context_files(self, model: ModelEntry, explicit: Mapping[str, str] | None = None,
                      field: str = "model") -> dict[str, str]:
        """The files of a diffusion context for ``model``: the model itself, the companions
        :func:`sdrest.models.resolve` finds for what it does not contain, and ``explicit`` (role -> path,
        from the request) over them. A required companion neither found nor given is a 422 naming it."""
        explicit = dict(explicit or {})
        if model.kind not in LOADABLE_KINDS:
            raise invalid(field, f"a {model.kind} cannot be loaded alone; load a checkpoint or an esrgan model")
        key = "diffusion_model" if model.info.load_as == "diffusion_model" else "model"
        files = {key: model.path}
        if model.architecture is not None:
            companions = resolve(self.registry, model.id)
            missing = [role for role in companions.missing
                       if role not in explicit and not (role == "vae" and "taesd" in explicit)]
            if missing:
                named = ROLE_FIELDS.get(missing[0]) if field == "model" else None
                target = named or field
                hint = ", ".join(f"{role} ({ROLE_FIELDS[role]})" if role in ROLE_FIELDS else role for role in missing)
                raise ApiError(422, f"{target}: {model.id} ({model.architecture}) needs companion files the models "
                               f"dir lacks: {hint}; add them to the models dir or name them in the request",
                               field=target, code="missing_companion")
            files.update({role: entry.path for role, entry in companions.files.items() if role not in explicit})
        files.update(explicit)
        return files

    # -- generation ------------------------------------------------------------------

    def _limit(self, field: GenerationField) -> tuple[float, float]:
        """The range of a numeric field, with its setting-bound maximum from this server's config."""
        high = field.maximum if field.maximum is not None else math.inf
        if field.maximum_setting == "max_steps":
            high = min(high, self.config.max_steps)
        elif field.maximum_setting == "max_batch":
            high = min(high, self.config.max_batch)
        return (field.minimum if field.minimum is not None else -math.inf), high

    def _scalar(self, f: Fields, field: GenerationField, default: Any) -> Any:
        """A scalar field of the request (by its name or an alias), checked against its declaration."""
        name = next((n for n in (field.name, *field.aliases) if f.has(n)), field.name)
        if field.type == "integer":
            low, high = self._limit(field)
            value = f.integer(name, default, int(low), int(high))
            if value is not None and field.multiple_of and value % field.multiple_of:
                raise invalid(name, f"must be a multiple of {field.multiple_of}, got {value}")
            return value
        if field.type == "number":
            return f.number(name, default, *self._limit(field))
        if field.type == "boolean":
            return f.boolean(name, default)
        if field.type == "choice":
            choices = self.samplers if field.choices == "samplers" else self.schedulers
            given = f.choice(name, choices)
            return given if given is not None else (default if default in choices else None)
        return f.string(name, default, field.max_length or 1024)

    def generation(self, kind: str, body: Mapping[str, Any]) -> Prepared:
        """Parameters of a txt2img, img2img, inpainting, controlnet or video request, read by the declaration of
        each field (:mod:`sdrest.generation_fields`); what a request leaves out, its model's family decides."""
        fields = fields_for(kind)
        allowed = {name for field in fields for name in (field.name, *field.aliases)}
        for key in body:
            if key not in allowed:
                raise invalid(key, f"unknown field for {kind}")
        f = Fields(body)
        cfg = self.config
        for field in fields:
            if kind in field.required_for and field.type != "string" and not f.has(field.name):
                raise invalid(field.name, "required")
        if kind == "inpainting" and not (f.has("source_image") or f.has("init_image")):
            raise invalid("source_image", "required")
        prompt = f.string("prompt", "", MAX_PROMPT) or ""
        if not prompt.strip() and kind in BY_NAME["prompt"].required_for:
            raise invalid("prompt", "required")
        try:  # first: its family decides the defaults; its error comes after those of the fields
            model: ModelEntry | None = self._main_model(f)
            model_error: ApiError | None = None
        except ApiError as exc:
            model, model_error = None, exc
        defaults = family_defaults(model.architecture if model is not None else None)
        params: dict[str, Any] = {"prompt": prompt}
        for field in fields:
            if field.type in ("integer", "number", "string", "boolean", "choice") and field.name != "prompt":
                sized_by_image = field.name in ("width", "height") and kind in ("img2img", "inpainting")
                default = None if sized_by_image else defaults.get(field.name, field.default)
                params[field.keyword or field.name] = self._scalar(f, field, default)
        try:
            check_schedule(params["scheduler"], params["steps"])
        except ArgumentError as exc:
            raise invalid(exc.argument, str(exc)) from None
        seed = body.get("seed", "random")
        if seed in ("random", None, "") or (isinstance(seed, (int, float)) and not isinstance(seed, bool) and seed < 0):
            params["seed"] = secrets.randbelow(2**31)
        else:
            params["seed"] = f.integer("seed", None, 0, 2**63 - 1)
        images: dict[str, Image.Image] = {}
        if kind in ("img2img", "inpainting"):
            field_name = "source_image" if kind == "inpainting" and f.has("source_image") else "init_image"
            images["image"] = self.image(body[field_name], field_name).convert("RGB")
            if kind == "inpainting":
                mask = self.image(body["mask_image"], "mask_image").convert("L")
                if mask.size != images["image"].size:
                    raise invalid("mask_image", f"size {mask.size} differs from the image's {images['image'].size}")
                images["mask"] = mask
            params["width"] = params["width"] or images["image"].width
            params["height"] = params["height"] or images["image"].height
            for side, value in zip(("width", "height"), images["image"].size):
                if value % 8:
                    raise invalid(field_name, f"the image's {side} ({value}) must be a multiple of 8")
        if kind == "video" and f.has("init_image"):
            images["image"] = self.image(body["init_image"], "init_image").convert("RGB")
        pixels = params["width"] * params["height"]
        if pixels > cfg.max_pixels:
            larger = "height" if params["height"] > params["width"] else "width"
            raise invalid(larger, f"{params['width']}x{params['height']} is more than {cfg.max_pixels} pixels")
        if model is None:
            raise model_error  # type: ignore[misc]
        architecture = model.architecture or ""
        if kind == "video" and architecture and not any(a in architecture.lower() for a in ("wan", "svd")):
            raise invalid("model", f"{display_name(model)} ({architecture}) cannot generate video; use a Wan model")
        explicit: dict[str, str] = {}
        for role, field_name in ROLE_FIELDS.items():
            if f.has(field_name):
                explicit[role] = self.model(body[field_name], field_name, BY_NAME[field_name].model_kinds).path
        context = self.context_files(model, explicit)
        if kind == "controlnet":
            images["control_image"] = self.image(body["control_image"], "control_image").convert("RGB")
            context["control_net"] = self.model(body.get("control_net_model"), "control_net_model",
                                                BY_NAME["control_net_model"].model_kinds).path
        params["loras"], params["prompt"] = self.loras(body.get("loras"), params["prompt"])
        params["model_name"] = display_name(model)
        params["model"] = model.id
        params["model_hash"] = None
        params["_context"] = context
        params["_inputs"] = {name: f"{name}.png" for name in images}
        return Prepared(kind, params, images)

    def loras(self, value: Any, prompt: str) -> tuple[list[dict[str, Any]], str]:
        """LoRAs from the ``loras`` field and ``<lora:name:weight>`` tags in the prompt (removed from it)."""
        items: list[tuple[str, Any, str]] = []
        if value is not None:
            if not isinstance(value, list) or len(value) > 32:
                raise invalid("loras", "expected a list (at most 32) of {name, multiplier}")
            for i, item in enumerate(value):
                if isinstance(item, str):
                    items.append((item, 1.0, f"loras[{i}]"))
                elif isinstance(item, dict) and isinstance(item.get("name"), str):
                    items.append((item["name"], item.get("multiplier", item.get("strength", 1.0)), f"loras[{i}]"))
                else:
                    raise invalid(f"loras[{i}]", "expected a name or {name, multiplier}")
        for match in _LORA_IN_PROMPT.finditer(prompt):
            weight = match.group(2)
            if weight is not None and not _LORA_WEIGHT.fullmatch(weight):
                raise invalid("prompt", f"<lora:{match.group(1)}:{weight}>: the weight is not a number")
            items.append((match.group(1), float(weight or 1.0), "prompt"))
        prompt = _LORA_IN_PROMPT.sub("", prompt).strip()
        out = []
        for name, multiplier, field in items:
            entry = self.model(name, field, ("lora",))
            if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)) or not -10 <= multiplier <= 10:
                raise invalid(field, "multiplier must be a number between -10 and 10")
            out.append({"name": display_name(entry), "id": entry.id, "multiplier": float(multiplier),
                        "_path": entry.path})
        return out, prompt

    def upscale(self, body: Mapping[str, Any]) -> Prepared:
        """Parameters of an upscale request."""
        for key in body:
            if key not in ("image", "esrgan_model", "upscale_factor", "model"):
                raise invalid(key, "unknown field for upscale")
        f = Fields(body)
        if "image" not in body:
            raise invalid("image", "required")
        image = self.image(body["image"], "image").convert("RGB")
        factor = f.integer("upscale_factor", None, int(UPSCALE_FACTOR.minimum or 1), int(UPSCALE_FACTOR.maximum or 8))
        for name in ("esrgan_model", "model"):
            if name in body and not (isinstance(body[name], str) and body[name]):
                raise invalid(name, "expected a model name (leave it out for the only ESRGAN model)")
        ref = body.get("esrgan_model") or body.get("model")
        if not ref:
            candidates = self.registry.search(kind="esrgan").items
            if len(candidates) != 1:
                raise invalid("esrgan_model", "required")
            entry = candidates[0]
        else:
            entry = self.model(ref, "esrgan_model", ("esrgan",))
        side = max(image.size) * (factor or 4)
        if side > MAX_SIDE:
            raise invalid("upscale_factor", f"the result would be {side} pixels a side, more than {MAX_SIDE}")
        params = {"esrgan_model": display_name(entry), "esrgan_model_id": entry.id, "upscale_factor": factor,
                  "width": image.width, "height": image.height, "_upscaler": entry.path, "_inputs": {"image": "image.png"}}
        return Prepared("upscale", params, {"image": image})
