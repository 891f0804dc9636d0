"""The OpenAI dialect: ``POST /v1/images/generations|edits|variations``, ``GET /v1/models[/{id}]``.

Every image request goes through our queue like any other (visible in ``/api/queue/status``, owned by the caller,
cancellable, persisted, counted in the metrics) and is answered when its job ends; a client that disconnects
first cancels its job. Requests become native bodies (:mod:`sdrest.server.openai_request`) checked by the one
request parser; errors are answered in OpenAI's shape (:mod:`sdrest.server.openai_errors`). See docs/compat.md.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import anyio
from PIL import Image
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse

from sdrest.jobs.store import Job
from sdrest.models.registry import ModelEntry
from sdrest.server import openai_request
from sdrest.server.auth import principal_of
from sdrest.server.body import read_json
from sdrest.server.errors import ApiError
from sdrest.server.openai_errors import openai_error
from sdrest.server.openai_images import OUTPUT_FORMATS, encode_output
from sdrest.server.openai_request import IGNORED_CHOICES, Translated, bad
from sdrest.server.requests import (
    LOADABLE_KINDS,
    MAX_PROMPT,
    RequestParser,
    display_name,
)
from sdrest.server.spec import ApiRoute, Schema, limited
from sdrest.server.state import ServerState, state_of
from sdrest.server.submit import output_urls, submit, wait_or_cancel

#: the longest a generation is waited for (the client's own timeout, or its leaving, usually ends it sooner)
WAIT_SECONDS = 86400.0
#: the most text a multipart text field may carry (the prompt is the longest)
MAX_TEXT_PART = 4 * MAX_PROMPT + 1024
#: ``usage``: one image token per this many pixels a side (a 512x512 image is 64 tokens)
IMAGE_TOKEN_SIDE = 64
#: ``usage``: text tokens as CLIP's tokenizer splits text before its byte-pair merges (words and punctuation)
_TEXT_TOKEN = re.compile(r"[^\W_]+|[^\w\s]|_")
#: the OpenAPI document's tag of these routes
TAG = "openai"
#: a header naming the job that made the images, for ``/api/queue/job/{id}``
JOB_HEADER = "x-sdrest-job-id"

# -- the OpenAPI description ---------------------------------------------------------------------------

_ENUM = {name: {"type": "string", "enum": list(choices), "description": "accepted and ignored"}
         for name, choices in IGNORED_CHOICES.items()}
GENERATION_SCHEMA: Schema = {"type": "object", "required": ["prompt"], "additionalProperties": False, "properties": {
    "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT, "pattern": "\\S"},
    "model": {"type": "string", "description": "one of GET /v1/models (id or name), or an OpenAI model name "
                                               "(dall-e-2, dall-e-3, gpt-image-*): the server's default model"},
    "n": limited({"type": "integer", "minimum": 1, "description": "how many images"}, maximum="max_batch"),
    "size": {"type": "string", "pattern": "^(auto|[0-9]{1,6}x[0-9]{1,6})$",
             "description": "WIDTHxHEIGHT (multiples of 8), or auto: the model's default"},
    "response_format": {"type": "string", "enum": ["b64_json", "url"],
                        "description": "default b64_json (url for dall-e-2 and dall-e-3); a url is signed and "
                                       "expires, and serves PNG"},
    "output_format": {"type": "string", "enum": list(OUTPUT_FORMATS), "description": "of b64_json images"},
    "output_compression": {"type": "integer", "minimum": 0, "maximum": 100,
                           "description": "the JPEG or WebP quality (default 100)"},
    **{name: _ENUM[name] for name in ("quality", "style", "background", "moderation")},
    "user": {"type": "string", "description": "accepted and ignored"},
    "safety_identifier": {"type": "string", "description": "accepted and ignored"},
    "partial_images": {"type": "integer", "minimum": 0, "maximum": 3, "description": "accepted and ignored"},
    "stream": {"type": "boolean", "enum": [False], "description": "streaming is not supported"},
    "seed": {"oneOf": [{"type": "integer", "maximum": 2**63 - 1, "description": "negative: random"},
                       {"type": "string", "enum": ["random", ""]}]},
    "steps": limited({"type": "integer", "minimum": 1}, maximum="max_steps"),
    "cfg_scale": {"type": "number", "minimum": 0, "maximum": 100},
    "negative_prompt": {"type": "string", "maxLength": MAX_PROMPT},
    "sampler": limited({"type": "string"}, enum="samplers"),
    "scheduler": limited({"type": "string"}, enum="schedulers"),
}}
_USAGE: Schema = {"type": "object", "required": ["input_tokens", "output_tokens", "total_tokens"], "properties": {
    "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"},
    "input_tokens_details": {"type": "object", "properties": {
        "text_tokens": {"type": "integer"}, "image_tokens": {"type": "integer"}}}}}
IMAGES_SCHEMA: Schema = {"type": "object", "required": ["created", "data"], "properties": {
    "created": {"type": "integer"},
    "data": {"type": "array", "items": {"type": "object", "properties": {
        "b64_json": {"type": "string", "contentEncoding": "base64"}, "url": {"type": "string"}}}},
    "size": {"type": "string"}, "output_format": {"type": "string", "enum": list(OUTPUT_FORMATS)},
    "usage": _USAGE}}
MODEL_SCHEMA: Schema = {"type": "object", "required": ["id", "object", "created", "owned_by"], "properties": {
    "id": {"type": "string"}, "object": {"type": "string", "enum": ["model"]}, "created": {"type": "integer"},
    "owned_by": {"type": "string"}, "name": {"type": "string"}, "architecture": {"type": ["string", "null"]}}}
MODEL_LIST_SCHEMA: Schema = {"type": "object", "required": ["object", "data"], "properties": {
    "object": {"type": "string", "enum": ["list"]}, "data": {"type": "array", "items": MODEL_SCHEMA}}}

# -- answering ---------------------------------------------------------------------------------------


def text_tokens(text: str) -> int:
    """``usage``'s count of a prompt: words and punctuation marks."""
    return len(_TEXT_TOKEN.findall(text))


def image_tokens(size: tuple[int, int]) -> int:
    """``usage``'s count of an image: one per :data:`IMAGE_TOKEN_SIDE`-pixel square, started squares counted."""
    return math.ceil(size[0] / IMAGE_TOKEN_SIDE) * math.ceil(size[1] / IMAGE_TOKEN_SIDE)


def usage_of(translated: Translated, output_sizes: list[tuple[int, int]]) -> dict[str, Any]:
    """OpenAI's ``usage`` block, counted as docs/compat.md says (we have no tokens: these are a measure)."""
    text = text_tokens(translated.prompt)
    images_in = sum(image_tokens(size) for size in translated.input_sizes)
    images_out = sum(image_tokens(size) for size in output_sizes)
    return {"input_tokens": text + images_in, "output_tokens": images_out, "total_tokens": text + images_in + images_out,
            "input_tokens_details": {"text_tokens": text, "image_tokens": images_in},
            "output_tokens_details": {"text_tokens": 0, "image_tokens": images_out}}


def images_response(state: ServerState, base_url: str, job: Job, translated: Translated) -> dict[str, Any]:
    """The answer to an image request whose job succeeded: each image as base64 (re-encoded to the asked
    format) or as an absolute URL (signed when auth is on, so it needs no header). Blocking: reads files."""
    delivery = translated.delivery
    data = []
    sizes = []
    for name, links in zip(job.outputs, output_urls(job, state.auth)):
        path = state.outputs_dir / job.id / name
        with Image.open(path, formats=["PNG"]) as image:  # the header only: the size the model really made
            sizes.append(image.size)
        if delivery.response_format == "url":
            data.append({"url": base_url.rstrip("/") + links.get("signed_url", links["url"])})
        else:
            encoded = encode_output(path.read_bytes(), delivery.output_format, delivery.compression)
            data.append({"b64_json": base64.b64encode(encoded).decode()})
    width, height = sizes[0] if sizes else (job.params["width"], job.params["height"])
    return {"created": int(job.created_at), "data": data, "size": f"{width}x{height}",
            "output_format": delivery.output_format if delivery.response_format == "b64_json" else "png",
            "usage": usage_of(translated, sizes)}


async def _finish(state: ServerState, request: Request, job_id: str) -> Job:
    """Wait for the job and return it once it succeeded; an OpenAI-shaped error otherwise (the job cancelled
    when nobody will take its images: the client left, the server stops, the wait ran out)."""
    done = await wait_or_cancel(request, state, job_id, WAIT_SECONDS)
    if done is None:
        state.queue.cancel(job_id)  # nobody will take its images (wait_or_cancel did already if the client left)
        if await request.is_disconnected():
            raise ApiError(409, "the client disconnected: the generation was cancelled", code="client_disconnected")
        if state.stopping.is_set():
            raise ApiError(503, "the server is stopping: the generation was cancelled; send it again later",
                           code="unavailable", headers={"Retry-After": "5"})
        raise ApiError(504, f"the generation did not end within {WAIT_SECONDS:.0f} s and was cancelled",
                       code="timeout")
    if done.status == "cancelled":
        raise ApiError(409, f"the generation was cancelled (job {done.id})", code="job_cancelled")
    if done.status != "succeeded":
        raise ApiError(500, f"the generation failed (job {done.id}): {done.error or done.status}", code="job_failed")
    return done


async def _generate(request: Request, translate: Callable[[RequestParser], Translated]) -> JSONResponse:
    """Translate, parse, queue as the caller's, wait, answer."""
    state = state_of(request)

    def prepare() -> tuple[Translated, Any]:
        translated = translate(state.parser)
        return translated, state.parser.generation(translated.kind, translated.body)

    # images are decoded and prompts scanned: never on the event loop
    translated, prepared = await anyio.to_thread.run_sync(prepare)
    job = await submit(state, prepared, principal_of(request))
    done = await _finish(state, request, job.id)
    body = await anyio.to_thread.run_sync(images_response, state, str(request.base_url), done, translated)
    return JSONResponse(body, headers={JOB_HEADER: done.id})


async def read_form(request: Request, file_fields: tuple[str, ...]) -> tuple[dict[str, str], dict[str, list[bytes]]]:
    """A multipart form's text fields (the last of each name) and its files (by field name); 400 for a file where
    text is due or the reverse, 415 (a 400 in this dialect) for a body that is not multipart."""
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(415, "expected a multipart/form-data body, with the image as a file",
                       code="unsupported_media_type")
    values: dict[str, str] = {}
    files: dict[str, list[bytes]] = {}
    async with request.form(max_files=8, max_fields=64, max_part_size=MAX_TEXT_PART) as form:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name not in file_fields:
                    raise bad(name, "expected a text field, got a file")
                files.setdefault(name, []).append(await value.read())
            elif name in file_fields:
                raise bad(name, "expected a file (a multipart upload), got a text field")
            else:
                values[name] = value
    return values, files


# -- the endpoints -------------------------------------------------------------------------------------


async def images_generations(request: Request) -> JSONResponse:
    """``POST /v1/images/generations``: txt2img, answered with the images."""
    body = await read_json(request)
    return await _generate(request, lambda parser: openai_request.generation(body, parser))


async def images_edits(request: Request) -> JSONResponse:
    """``POST /v1/images/edits``: inpainting (a mask, or the image's transparency) or img2img."""
    values, files = await read_form(request, openai_request.EDIT_FILES)
    return await _generate(request, lambda parser: openai_request.edit(values, files, parser))


async def images_variations(request: Request) -> JSONResponse:
    """``POST /v1/images/variations``: img2img of the image with a generic prompt."""
    values, files = await read_form(request, openai_request.VARIATION_FILES)
    return await _generate(request, lambda parser: openai_request.variation(values, files, parser))


def describe_model(entry: ModelEntry) -> dict[str, Any]:
    """A model as OpenAI lists one (plus its name and architecture)."""
    return {"id": entry.id, "object": "model", "created": entry.mtime_ns // 10**9, "owned_by": "sdrest",
            "name": display_name(entry), "architecture": entry.architecture}


def image_models(entries: list[ModelEntry]) -> list[ModelEntry]:
    """The models an image request may name (checkpoints and diffusion models), by id."""
    return sorted((e for e in entries if e.kind in LOADABLE_KINDS), key=lambda e: e.id)


async def list_models(request: Request) -> JSONResponse:
    """``GET /v1/models``: the checkpoints and diffusion models."""
    state = state_of(request)
    return JSONResponse({"object": "list",
                         "data": [describe_model(e) for e in image_models(state.registry.entries())]})


async def get_model(request: Request) -> JSONResponse:
    """``GET /v1/models/{id}``: one of them, by id or unique name; 404 otherwise."""
    state = state_of(request)
    ref = request.path_params["model_id"]
    try:
        entry = await anyio.to_thread.run_sync(state.parser.lookup, ref)
    except KeyError as exc:
        reason = str(exc.args[0]) if exc.args else ref
        if "ambiguous" in reason:
            raise bad("model", f"{reason}; name it by id") from None
        entry = None
    if entry is None or entry.kind not in LOADABLE_KINDS:
        raise ApiError(404, f"the model {ref!r} does not exist", field="model", code="model_not_found")
    return JSONResponse(describe_model(entry))


def _multipart_summary(name: str, fields: Mapping[str, str]) -> str:
    """The summary of a multipart route, listing its fields (the document describes JSON bodies only)."""
    listed = "; ".join(f"{key}: {what}" for key, what in fields.items())
    return f"{name} (OpenAI; a multipart/form-data body: {listed})"


def routes() -> list[ApiRoute]:
    """The OpenAI routes; every one needs credentials and answers errors in OpenAI's shape."""
    # 409: the job was cancelled; 500: it failed; 504: it did not end in time; 413 and 415 (as 400): the body
    errors = (400, 409, 413, 415, 429, 500, 503, 504)
    extras = "seed, steps, cfg_scale, negative_prompt, sampler, scheduler, strength (extras)"
    edit = _multipart_summary("Edit an image", {
        "image or image[]": "one PNG, JPEG or WebP file", "mask": "a PNG whose transparent pixels mark what to redraw",
        "prompt": "text", "model, n, size, response_format, output_format, output_compression": "as generations",
        "extras": extras})
    variation = _multipart_summary("Variations of an image", {
        "image": "one PNG, JPEG or WebP file", "model, n, size, response_format": "as generations",
        "extras": f"prompt, {extras}"})
    return [
        ApiRoute("/v1/images/generations", images_generations, methods=["POST"],
                 summary="Generate images (OpenAI)", request=GENERATION_SCHEMA, response=IMAGES_SCHEMA,
                 errors=errors, tag=TAG, error_format=openai_error),
        ApiRoute("/v1/images/edits", images_edits, methods=["POST"], summary=edit, response=IMAGES_SCHEMA,
                 errors=errors, tag=TAG, error_format=openai_error),
        ApiRoute("/v1/images/variations", images_variations, methods=["POST"], summary=variation,
                 response=IMAGES_SCHEMA, errors=errors, tag=TAG, error_format=openai_error),
        ApiRoute("/v1/models", list_models, methods=["GET"], summary="The image models (OpenAI)",
                 response=MODEL_LIST_SCHEMA, tag=TAG, error_format=openai_error),
        ApiRoute("/v1/models/{model_id:path}", get_model, methods=["GET"], summary="One image model (OpenAI)",
                 response=MODEL_SCHEMA, errors=(400, 404), tag=TAG, error_format=openai_error),
    ]
