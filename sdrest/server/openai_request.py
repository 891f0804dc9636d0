"""OpenAI image requests onto our native request bodies.

Each request becomes the body ``POST /api/generate/*`` takes, checked by the same parser
(:class:`sdrest.server.requests.RequestParser`): nothing is validated twice. What is OpenAI's own (``size``,
``response_format``, ``output_format``, ``output_compression``, the OpenAI model names, the masks) is read here.

- ``size``: ``WIDTHxHEIGHT`` or ``auto`` (a generation: the parser's default for the model; an edit or a
  variation: the image's own size, each side rounded down to a multiple of 8). An image of another size is
  stretched to it.
- ``model``: one of our models (id, relative path or unique file name), or an OpenAI name (``dall-e-2``,
  ``dall-e-3``, ``gpt-image-*``, ``chatgpt-image-*``) that is not one: the server's default model.
- ``n`` -> ``batch_count``; the extras ``seed``, ``steps``, ``cfg_scale``, ``negative_prompt``, ``sampler``,
  ``scheduler`` (and ``strength`` for edits and variations; ``prompt`` for variations) pass through.
- Accepted and ignored: ``quality``, ``style``, ``background``, ``moderation``, ``input_fidelity``, ``user``,
  ``safety_identifier``, ``partial_images`` (checked against OpenAI's choices). ``stream: true`` is refused.
- Edits: one image (``image`` or ``image[]``); the mask's transparent pixels (or, without a mask, the image's own)
  mark what to redraw (inpainting, ``strength`` 1.0 by default); an image with neither is redrawn whole
  (img2img, ``strength`` 0.75 by default).
- Variations: img2img of the image with :data:`VARIATION_PROMPT` (or the ``prompt`` extra) at
  :data:`VARIATION_STRENGTH`.

Blocking (images are decoded): call these from a worker thread.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from sdrest.server.errors import ApiError
from sdrest.server.openai_images import (
    OUTPUT_FORMATS,
    alpha_of,
    auto_size,
    fit,
    is_transparent_somewhere,
    png_base64,
    redraw_mask,
)
from sdrest.server.requests import RequestParser

#: OpenAI's model names; one that is not also the name of one of our models means "the default model"
OPENAI_MODEL = re.compile(r"(dall-e-\d+|gpt-image-[\w.-]+|chatgpt-image-[\w.-]+)", re.IGNORECASE)
#: the models whose answers are URLs unless the request says otherwise (as at OpenAI)
URL_BY_DEFAULT = re.compile(r"dall-e-\d+", re.IGNORECASE)
_SIZE = re.compile(r"([0-9]{1,6})x([0-9]{1,6})")

#: the prompt of a variation that sends none
VARIATION_PROMPT = "a high quality, detailed image"
#: how far a variation moves from its image (img2img strength)
VARIATION_STRENGTH = 0.6
#: the strength of an edit with a mask (the masked part is drawn anew) and of one without (all of it changes)
MASKED_EDIT_STRENGTH = 1.0

#: our extras, passed to the parser as they are (native name = OpenAI name)
EXTRAS = {"seed": "integer", "steps": "integer", "cfg_scale": "number", "negative_prompt": "string",
          "sampler": "string", "scheduler": "string"}
#: OpenAI parameters accepted and ignored, with the values OpenAI takes
IGNORED_CHOICES = {
    "quality": ("auto", "standard", "hd", "low", "medium", "high", "xhigh", "max"),
    "style": ("vivid", "natural"),
    "background": ("auto", "transparent", "opaque"),
    "moderation": ("auto", "low"),
    "input_fidelity": ("high", "low"),
}
IGNORED_STRINGS = ("user", "safety_identifier")
#: what each route takes, besides the extras
_DELIVERY = {"model", "n", "size", "response_format", "output_format", "output_compression", "user"}
GENERATION_FIELDS = {*_DELIVERY, *EXTRAS, "prompt", "quality", "style", "background", "moderation",
                     "safety_identifier", "partial_images", "stream"}
EDIT_FIELDS = {*_DELIVERY, *EXTRAS, "prompt", "strength", "quality", "background", "input_fidelity",
               "safety_identifier", "partial_images", "stream"}
VARIATION_FIELDS = {*_DELIVERY, *EXTRAS, "prompt", "strength"}
#: the file fields of the multipart routes
EDIT_FILES = ("image", "image[]", "mask")
VARIATION_FILES = ("image", "image[]")


def bad(param: str, message: str, code: str = "invalid_value") -> ApiError:
    """A 400 about one OpenAI parameter, in the words of the message."""
    return ApiError(400, f"{param}: {message}", field=param, code=code)


@dataclass
class Delivery:
    """How the images go back: ``b64_json`` or ``url``; for ``b64_json``, the format and the lossy quality."""

    response_format: str
    output_format: str
    compression: int


@dataclass
class Translated:
    """An OpenAI request as a native one: the generation kind and body, how to answer, and what ``usage``
    counts (the prompt, the input images' sizes)."""

    kind: str
    body: dict[str, Any]
    delivery: Delivery
    prompt: str
    input_sizes: list[tuple[int, int]] = field(default_factory=list)


class Params:
    """Reads an OpenAI request's parameters: a JSON body, or a multipart form's text fields (all strings, turned
    into numbers where a number is due and left as they are otherwise, for the parser to refuse by name)."""

    def __init__(self, values: Mapping[str, Any], allowed: set[str], *, from_form: bool) -> None:
        for name in values:
            if name not in allowed:
                raise bad(name, f"unrecognized request argument (this route takes: {', '.join(sorted(allowed))})",
                          "unknown_parameter")
        self.values = values
        self.from_form = from_form

    def raw(self, name: str) -> Any:
        """The value as sent; None when absent or null."""
        return self.values.get(name)

    def native(self, name: str, kind: str) -> Any:
        """A value for the parser: from a form, a number where ``kind`` is ``integer`` or ``number`` and the text
        reads as one."""
        value = self.values.get(name)
        if not self.from_form or not isinstance(value, str) or kind == "string":
            return value
        try:
            return int(value) if kind == "integer" else float(value)
        except ValueError:
            return value

    def text(self, name: str) -> str | None:
        """A string parameter; 400 when it is something else."""
        value = self.values.get(name)
        if value is not None and not isinstance(value, str):
            raise bad(name, "expected a string")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        """One of ``choices``; ``default`` when absent; 400 otherwise."""
        value = self.text(name)
        if value is None or value == "":
            return default
        if value not in choices:
            raise bad(name, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        """An integer of ours (not the parser's) between ``low`` and ``high``; 400 otherwise."""
        value = self.native(name, "integer")
        if value is None:
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise bad(name, f"expected an integer from {low} to {high}, got {value!r}")
        return value

    def check_ignored(self) -> None:
        """The accepted-and-ignored parameters hold values OpenAI would take; ``stream`` is not true."""
        for name, choices in IGNORED_CHOICES.items():
            self.choice(name, choices, choices[0])
        for name in IGNORED_STRINGS:
            self.text(name)
        self.integer("partial_images", 0, 0, 3)
        stream = self.raw("stream")
        if stream in (True, "true", "True", "1"):
            raise bad("stream", "streaming is not supported: send stream false (or leave it out)", "unsupported")
        if stream not in (None, False, "false", "False", "0"):
            raise bad("stream", f"expected false, got {stream!r}")


def parse_size(value: Any) -> tuple[int, int] | None:
    """``WIDTHxHEIGHT`` as a pair; None for ``auto`` or nothing; 400 otherwise."""
    if value is None or value == "auto":
        return None
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise bad("size", f"expected WIDTHxHEIGHT (such as 512x512) or auto, got {value!r}", "invalid_size")
    return int(match.group(1)), int(match.group(2))


def resolve_model(ref: Any, find: Callable[[str], Any]) -> Any:
    """The ``model`` to give the parser: None (the default model) for an OpenAI model name that ``find`` (the
    registry's lookup, no rescan) does not know; ``ref`` otherwise, for the parser to resolve or refuse by name."""
    if not isinstance(ref, str) or not ref:
        return ref or None
    if not OPENAI_MODEL.fullmatch(ref):
        return ref
    try:
        find(ref)
    except KeyError as exc:
        return ref if "ambiguous" in str(exc) else None
    return ref


def _common(params: Params, parser: RequestParser) -> tuple[dict[str, Any], Delivery]:
    """The native fields every route shares (model, n, size, extras), and the delivery."""
    params.check_ignored()
    ref = params.raw("model")
    body: dict[str, Any] = {}
    model = resolve_model(ref, parser.registry.find)
    if model is not None:
        body["model"] = model
    n = params.native("n", "integer")
    if n is not None:
        body["batch_count"] = n
    size = parse_size(params.raw("size"))
    if size is not None:
        body["width"], body["height"] = size
    for name, kind in EXTRAS.items():
        value = params.native(name, kind)
        if value is not None:
            body[name] = value
    url_default = isinstance(ref, str) and URL_BY_DEFAULT.fullmatch(ref) is not None
    delivery = Delivery(
        response_format=params.choice("response_format", ("url", "b64_json"), "url" if url_default else "b64_json"),
        output_format=params.choice("output_format", tuple(OUTPUT_FORMATS), "png"),
        compression=params.integer("output_compression", 100, 0, 100))
    return body, delivery


def generation(values: Mapping[str, Any], parser: RequestParser) -> Translated:
    """``POST /v1/images/generations`` (a JSON body) as a native txt2img request."""
    params = Params(values, GENERATION_FIELDS, from_form=False)
    body, delivery = _common(params, parser)
    body["prompt"] = values.get("prompt")
    prompt = body["prompt"] if isinstance(body["prompt"], str) else ""
    return Translated("txt2img", body, delivery, prompt)


def _one_image(files: Mapping[str, list[bytes]], parser: RequestParser) -> Image.Image:
    """The one image of an edit or variation (``image`` or ``image[]``), decoded by the parser's rules."""
    found = [*files.get("image", []), *files.get("image[]", [])]
    if not found:
        raise bad("image", "required: send the image as a file (multipart/form-data)", "missing_required_parameter")
    if len(found) > 1:
        raise bad("image", f"got {len(found)} images; this server edits one image at a time", "too_many_images")
    return parser.image(upload_base64(found[0]), "image")


def upload_base64(data: bytes) -> str:
    """Uploaded bytes as the base64 text the parser takes (it tells the format from the bytes)."""
    return base64.b64encode(data).decode()


def _target(image: Image.Image, body: Mapping[str, Any]) -> tuple[int, int]:
    """The size the output will have: the request's ``size`` or the image's (rounded to multiples of 8)."""
    width, height = body.get("width"), body.get("height")
    if isinstance(width, int) and isinstance(height, int):
        return width, height
    return auto_size(image)


def _fit_within(image: Image.Image, size: tuple[int, int], parser: RequestParser,
                resample: Image.Resampling = Image.Resampling.LANCZOS) -> Image.Image:
    """``image`` stretched to ``size``, unless ``size`` is past the server's pixel limit: then left as it is, for
    the parser to refuse the size by its own rule (no image that large is ever made here)."""
    if size[0] * size[1] > parser.config.max_pixels:
        return image
    return fit(image, size, resample)


def edit(values: Mapping[str, Any], files: Mapping[str, list[bytes]], parser: RequestParser) -> Translated:
    """``POST /v1/images/edits`` (a multipart form) as a native inpainting or img2img request."""
    params = Params(values, EDIT_FIELDS, from_form=True)
    body, delivery = _common(params, parser)
    prompt = params.text("prompt")
    body["prompt"] = prompt
    image = _one_image(files, parser)
    size = _target(image, body)
    body["width"], body["height"] = size
    masks = files.get("mask", [])
    if len(masks) > 1:
        raise bad("mask", "send one mask")
    alpha: Image.Image | None
    if masks:
        mask_image = parser.image(upload_base64(masks[0]), "mask_image")
        alpha = alpha_of(mask_image)
        if alpha is None:
            raise bad("mask", "must have an alpha channel: its fully transparent pixels mark what to redraw",
                      "invalid_mask")
        if mask_image.size != image.size:
            raise bad("mask", f"is {mask_image.width}x{mask_image.height}, the image {image.width}x{image.height}: "
                              "they must be the same size", "invalid_mask")
    else:
        alpha = alpha_of(image)
        if alpha is not None and not is_transparent_somewhere(alpha):
            alpha = None
    rgb = _fit_within(image.convert("RGB"), size, parser)
    strength = params.native("strength", "number")
    if alpha is not None:
        body["source_image"] = png_base64(rgb)
        body["mask_image"] = png_base64(_fit_within(redraw_mask(alpha), size, parser, Image.Resampling.BILINEAR))
        body["strength"] = MASKED_EDIT_STRENGTH if strength is None else strength
        kind = "inpainting"
    else:
        body["init_image"] = png_base64(rgb)
        if strength is not None:
            body["strength"] = strength
        kind = "img2img"
    return Translated(kind, body, delivery, prompt or "", [image.size])


def variation(values: Mapping[str, Any], files: Mapping[str, list[bytes]], parser: RequestParser) -> Translated:
    """``POST /v1/images/variations`` (a multipart form) as a native img2img request."""
    params = Params(values, VARIATION_FIELDS, from_form=True)
    body, delivery = _common(params, parser)
    prompt = params.text("prompt") or VARIATION_PROMPT
    body["prompt"] = prompt
    image = _one_image(files, parser)
    size = _target(image, body)
    body["width"], body["height"] = size
    body["init_image"] = png_base64(_fit_within(image.convert("RGB"), size, parser))
    strength = params.native("strength", "number")
    body["strength"] = VARIATION_STRENGTH if strength is None else strength
    return Translated("img2img", body, delivery, prompt, [image.size])
