"""The fields of a generation request, declared once.

Each :class:`Field` says its name, type, default, range, choices, documentation, which kinds of job take it and
which library keyword it becomes. The server's request parser, its OpenAPI document, ``/api/parameters``, the web
UI's form, every API dialect's mapping and the worker's call into the library are all derived from
:data:`FIELDS`; adding a field is one entry here. Bounds that depend on the server's settings (``max_steps``,
``max_batch``) and choices that come from the native library (samplers, schedulers) are named, not copied:
whoever has the settings fills them in.

:data:`FAMILY_DEFAULTS` holds what each model family defaults to (stable-diffusion.cpp's recommendations, from the
seed's architecture table): a request that leaves a field out gets its model family's value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sdrest.models import sdversion as V
from sdrest.models.architectures import family_of

GENERATION_KINDS = ("txt2img", "img2img", "inpainting", "controlnet", "video")
IMAGE_KINDS = ("txt2img", "img2img", "inpainting", "controlnet")
#: the longest prompt (characters)
MAX_PROMPT = 20000
#: the largest width or height of anything the server makes (the pixel count is bounded by ``max_pixels``)
MAX_SIDE = 16384
#: schema keywords naming what bounds a value where the running server decides: a setting (``max_steps``) for
#: its maximum, a list of names (``samplers``) for its choices; the served OpenAPI document fills them in
MAXIMUM_SETTING = "x-maximum-setting"
ENUM_SETTING = "x-enum-setting"
#: the field types: JSON scalars, plus the kinds of value the server resolves itself
TYPES = ("integer", "number", "string", "boolean", "choice", "seed", "image", "model", "loras")


@dataclass(frozen=True)
class Field:
    """One field of a generation request."""

    name: str
    type: str
    doc: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    #: the server setting that bounds the value from above (``max_steps``, ``max_batch``)
    maximum_setting: str | None = None
    multiple_of: int | None = None
    max_length: int | None = None
    #: where the choices come from: ``samplers`` or ``schedulers`` (the native library's names)
    choices: str | None = None
    kinds: tuple[str, ...] = GENERATION_KINDS
    required_for: tuple[str, ...] = ()
    #: the library keyword (and job parameter) it becomes; None: the server consumes it (models, images)
    keyword: str | None = None
    #: whether the worker passes it to the library as it is (when given); False: the task handles it itself
    direct: bool = False
    aliases: tuple[str, ...] = ()
    #: for a ``model`` field: the registry kinds it may name
    model_kinds: tuple[str, ...] = ()

    def schema(self, kind: str) -> dict[str, Any]:
        """The JSON schema of the field in a ``kind`` request (setting-bound limits named by ``x-`` keywords)."""
        out: dict[str, Any]
        if self.type == "seed":
            out = {"oneOf": [{"type": "integer", "maximum": 2**63 - 1, "description": "negative: random"},
                             {"type": "string", "enum": ["random", ""]}]}
        elif self.type == "image":
            out = {"type": "string", "minLength": 1,
                   "description": "a PNG, JPEG or WebP image: base64, a data: URL, or an http(s) URL where the "
                                  "server allows them"}
        elif self.type == "model":
            out = {"type": "string", "minLength": 1}
        elif self.type == "loras":
            weight = {"type": "number", "minimum": -10, "maximum": 10}
            name = {"type": "string", "minLength": 1}
            out = {"type": "array", "maxItems": 32, "items": {"oneOf": [name, {
                "type": "object", "required": ["name"],
                "properties": {"name": name, "multiplier": weight, "strength": weight}}]}}
        elif self.type == "choice":
            out = {"type": "string", ENUM_SETTING: self.choices}
        else:
            out = {"type": self.type}
            for key, value in (("minimum", self.minimum), ("maximum", self.maximum), ("multipleOf", self.multiple_of),
                               ("maxLength", self.max_length)):
                if value is not None:
                    out[key] = value
            if self.maximum_setting:
                out[MAXIMUM_SETTING] = self.maximum_setting
        if self.name == "prompt" and kind in self.required_for:
            out.update(minLength=1, pattern="\\S")
        description = self.doc if "description" not in out else f"{self.doc}: {out['description']}"
        out["description"] = description
        return out

    def describe(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The field for ``/api/parameters``: type, default, range and choices, with ``settings`` (the server's
        limits and the native library's names) filled in."""
        out: dict[str, Any] = {"type": self.type, "doc": self.doc, "kinds": list(self.kinds)}
        if self.default is not None:
            out["default"] = self.default
        for key, value in (("minimum", self.minimum), ("multiple_of", self.multiple_of),
                           ("max_length", self.max_length)):
            if value is not None:
                out[key] = value
        maximum = self.maximum
        if self.maximum_setting:
            bound = settings[self.maximum_setting]
            maximum = bound if maximum is None else min(maximum, bound)
        if maximum is not None:
            out["maximum"] = maximum
        if self.choices:
            out["enum"] = list(settings[self.choices])
        if self.required_for:
            out["required_for"] = list(self.required_for)
        if self.aliases:
            out["aliases"] = list(self.aliases)
        if self.model_kinds:
            out["model_kinds"] = list(self.model_kinds)
        return out


def _model(name: str, doc: str, model_kinds: tuple[str, ...], **extra: Any) -> Field:
    return Field(name, "model", doc, model_kinds=model_kinds, **extra)


FIELDS: tuple[Field, ...] = (
    Field("prompt", "string", "what to draw; <lora:name:weight> tags in it apply LoRAs", "", max_length=MAX_PROMPT,
          required_for=IMAGE_KINDS, keyword="prompt"),
    Field("negative_prompt", "string", "what not to draw", "", max_length=MAX_PROMPT, keyword="negative_prompt",
          direct=True),
    Field("width", "integer", "pixels; width x height at most the server's max_pixels", 512, 64, MAX_SIDE,
          maximum_setting="max_side", multiple_of=8, keyword="width", direct=True),
    Field("height", "integer", "pixels; width x height at most the server's max_pixels", 512, 64, MAX_SIDE,
          maximum_setting="max_side", multiple_of=8, keyword="height", direct=True),
    Field("steps", "integer", "sampling steps", 20, 1, maximum_setting="max_steps", keyword="steps", direct=True),
    Field("cfg_scale", "number", "classifier-free guidance scale", 7.0, 0, 100, keyword="cfg_scale", direct=True),
    Field("sampling_method", "choice", "the sampler (default: the model's)", choices="samplers", keyword="sampler",
          direct=True, aliases=("sampler",)),
    Field("scheduler", "choice", "the noise schedule (default: the model's)", choices="schedulers",
          keyword="scheduler", direct=True),
    Field("seed", "seed", "the seed; -1, \"random\" or none: a random one", "random", keyword="seed", direct=True),
    Field("batch_count", "integer", "images to make, seeds counting up", 1, 1, maximum_setting="max_batch",
          kinds=IMAGE_KINDS, keyword="batch_count", direct=True),
    Field("clip_skip", "integer", "CLIP layers to skip (-1: the model's default)", None, -1, 12, keyword="clip_skip",
          direct=True),
    Field("guidance", "number", "distilled guidance (Flux)", None, 0, 100, keyword="guidance", direct=True),
    Field("eta", "number", "eta of the DDIM-like samplers", None, 0, 100, keyword="eta", direct=True),
    Field("flow_shift", "number", "flow shift (SD3, Wan, Qwen Image...)", None, 0, 100, keyword="flow_shift",
          direct=True),
    Field("vae_tiling", "boolean", "decode in tiles (less memory for large images)", False, keyword="vae_tiling"),
    Field("preview", "boolean", "send preview images in the job's events", False, keyword="preview"),
    Field("preview_interval", "integer", "a preview every this many steps", 1, 1, 1000, keyword="preview_interval"),
    _model("model", "a model id, relative path or unique file name; none: the loaded model, the server's "
                    "default, or the only one", ("checkpoint", "diffusion_model")),
    _model("vae_model", "a VAE instead of the one the model has or the models dir offers", ("vae",)),
    _model("taesd_model", "a TAESD (tiny, fast) VAE decoder", ("taesd",)),
    _model("clip_l_model", "a CLIP-L text encoder", ("text_encoder",)),
    _model("clip_g_model", "a CLIP-G text encoder", ("text_encoder",)),
    _model("t5xxl_model", "a T5-XXL text encoder", ("text_encoder",)),
    _model("llm_model", "an LLM text encoder (Qwen Image, Z-Image...)", ("text_encoder",)),
    Field("loras", "loras", "LoRAs: names, or {name, multiplier}", keyword="loras"),
    Field("init_image", "image", "the image to start from", kinds=("img2img", "inpainting", "video"),
          required_for=("img2img",)),
    Field("source_image", "image", "the image to inpaint (init_image's other name)", kinds=("inpainting",)),
    Field("mask_image", "image", "white where to redraw, black where to keep", kinds=("inpainting",),
          required_for=("inpainting",)),
    Field("strength", "number", "how far from the image to go (0: not at all, 1: all the way)", 0.75, 0, 1,
          kinds=("img2img", "inpainting"), keyword="strength"),
    Field("control_image", "image", "the ControlNet's input (an edge map, a pose...)", kinds=("controlnet",),
          required_for=("controlnet",)),
    _model("control_net_model", "the ControlNet", ("controlnet",), kinds=("controlnet",), required_for=("controlnet",)),
    Field("control_strength", "number", "how strongly the ControlNet steers", 0.9, 0, 10, kinds=("controlnet",),
          keyword="control_strength"),
    Field("video_frames", "integer", "frames to make", 1, 1, 1000, kinds=("video",), keyword="video_frames"),
)

#: the fields of an upscale (``POST /api/generate/upscale``): kept apart from the generations' (their alias
#: ``model`` would shadow the generations' ``model`` in :data:`BY_NAME`)
UPSCALE_FIELDS: tuple[Field, ...] = (
    Field("image", "image", "the image to upscale", kinds=("upscale",), required_for=("upscale",)),
    _model("esrgan_model", "the ESRGAN model (default: the only one)", ("esrgan",), kinds=("upscale",),
           aliases=("model",)),
    Field("upscale_factor", "integer", "exactly this many times larger (default: the model's own scale)", None, 1, 8,
          kinds=("upscale",)),
)
UPSCALE_FACTOR = UPSCALE_FIELDS[2]

#: each field by its name and by its aliases
BY_NAME: dict[str, Field] = {**{f.name: f for f in FIELDS}, **{a: f for f in FIELDS for a in f.aliases}}

#: model family (sd.cpp's version name of the family's base) -> what its requests default to
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    V.SD1: {"width": 512, "height": 512, "cfg_scale": 7.0, "steps": 20},
    V.SD2: {"width": 768, "height": 768, "cfg_scale": 7.0, "steps": 20},
    V.SDXL: {"width": 1024, "height": 1024, "cfg_scale": 7.0, "steps": 20},
    V.SD3: {"width": 1024, "height": 1024, "cfg_scale": 4.5, "steps": 20, "sampling_method": "euler"},
    V.FLUX: {"width": 1024, "height": 1024, "cfg_scale": 1.0, "steps": 20, "sampling_method": "euler"},
    V.FLUX2: {"width": 1024, "height": 1024, "cfg_scale": 1.0, "steps": 20, "sampling_method": "euler"},
    V.WAN2: {"width": 832, "height": 480, "cfg_scale": 6.0, "steps": 20, "sampling_method": "euler",
             "flow_shift": 3.0, "video_frames": 33},
    V.QWEN_IMAGE: {"width": 1024, "height": 1024, "cfg_scale": 2.5, "steps": 20, "sampling_method": "euler",
                   "flow_shift": 3.0},
    V.Z_IMAGE: {"width": 1024, "height": 1024, "cfg_scale": 1.0, "steps": 9, "sampling_method": "euler"},
}


def fields_for(kind: str) -> tuple[Field, ...]:
    """The fields a ``kind`` request takes (``upscale`` too)."""
    return tuple(f for f in (*FIELDS, *UPSCALE_FIELDS) if kind in f.kinds)


def family_defaults(architecture: str | None) -> dict[str, Any]:
    """What a request for a model of ``architecture`` (sd.cpp's version name) defaults to; {} when unknown."""
    if not architecture:
        return {}
    return dict(FAMILY_DEFAULTS.get(family_of(architecture), {}))


def library_keywords(kind: str) -> tuple[str, ...]:
    """The job parameters of a ``kind`` job the worker passes to the library as they are (when given)."""
    return tuple(f.keyword for f in fields_for(kind) if f.direct and f.keyword)


def request_schema(kind: str) -> dict[str, Any]:
    """The JSON schema of a ``kind`` request body (unknown fields refused)."""
    properties = {}
    for f in fields_for(kind):
        properties[f.name] = f.schema(kind)
        for alias in f.aliases:
            properties[alias] = {**f.schema(kind), "description": f"{f.name}'s other name"}
    required = [f.name for f in fields_for(kind) if kind in f.required_for]
    if kind == "inpainting":  # the image is init_image or source_image
        schema: dict[str, Any] = {"anyOf": [{"required": ["source_image"]}, {"required": ["init_image"]}]}
    else:
        schema = {}
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties,
            **schema}
