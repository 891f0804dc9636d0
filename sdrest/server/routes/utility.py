"""Samplers, schedulers, the parameter table, request validation, estimates, image resize, crop and download."""

from __future__ import annotations

import base64
import io
from typing import Any

import anyio
from PIL import Image
from starlette.requests import Request
from starlette.responses import JSONResponse

from sdrest.generation_fields import FAMILY_DEFAULTS, FIELDS, UPSCALE_FIELDS
from sdrest.jobs.store import QUEUED
from sdrest.server.body import read_json
from sdrest.server.errors import ApiError, invalid
from sdrest.server.images import URLS_DISABLED, is_url
from sdrest.server.openapi import server_limits
from sdrest.server.query import Text, bad_query, schemas
from sdrest.server.requests import Fields
from sdrest.server.spec import ApiRoute
from sdrest.server.state import ServerState, state_of
from sdrest.server.urlfetch import MAX_URL_LENGTH

def _parameters(state: ServerState) -> dict[str, Any]:
    """Every generation (and upscale) field with its type, default, range and choices (this server's limits and
    names)."""
    settings = {**server_limits(state), "max_steps": state.config.max_steps, "max_batch": state.config.max_batch}
    fields = {field.name: field.describe(settings) for field in (*FIELDS, *UPSCALE_FIELDS)}
    fields["max_pixels"] = {"type": "integer", "value": state.config.max_pixels,
                            "doc": "the most pixels (width x height) a request may ask for"}
    return {**fields, "per_architecture": FAMILY_DEFAULTS}


async def samplers(request: Request) -> JSONResponse:
    return JSONResponse({"samplers": state_of(request).parser.samplers})


async def schedulers(request: Request) -> JSONResponse:
    return JSONResponse({"schedulers": state_of(request).parser.schedulers})


async def parameters(request: Request) -> JSONResponse:
    return JSONResponse({"parameters": _parameters(state_of(request))})


_KINDS = {"text2img": "txt2img", "txt2img": "txt2img", "img2img": "img2img", "inpainting": "inpainting",
          "controlnet": "controlnet", "video": "video", "upscale": "upscale"}


def _kind_and_body(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    kind = _KINDS.get(str(body.get("type", "text2img")))
    if kind is None:
        raise invalid("type", f"expected one of: {', '.join(_KINDS)}")
    inner = body.get("parameters", {k: v for k, v in body.items() if k != "type"})
    if not isinstance(inner, dict):
        raise invalid("parameters", "expected an object")
    return kind, inner


async def validate(request: Request) -> JSONResponse:
    """Check a generation request without queueing it."""
    state = state_of(request)
    kind, inner = _kind_and_body(await read_json(request))
    try:
        if kind == "upscale":
            await anyio.to_thread.run_sync(state.parser.upscale, inner)
        else:
            await anyio.to_thread.run_sync(state.parser.generation, kind, inner)
    except ApiError as exc:
        return JSONResponse({"valid": False, "errors": [{"field": exc.field, "message": exc.message}]})
    return JSONResponse({"valid": True, "errors": []})


async def estimate(request: Request) -> JSONResponse:
    """Time and memory, from the measured history of similar jobs (pixels x steps)."""
    state = state_of(request)
    kind, inner = _kind_and_body(await read_json(request))
    f = Fields(inner)
    width = f.integer("width", 512, 64, 16384) or 512
    height = f.integer("height", 512, 64, 16384) or 512
    steps = f.integer("steps", 20, 1, state.config.max_steps) or 20
    batch = f.integer("batch_count", 1, 1, state.config.max_batch) or 1
    work = width * height * steps * batch
    rates = []
    for params, seconds in state.queue.durations(kind, limit=50):
        done = (params.get("width") or 512) * (params.get("height") or 512) * (params.get("steps") or 1) * \
               (params.get("batch_count") or 1)
        if seconds > 0 and done:
            rates.append(seconds / done)
    seconds = sum(rates) / len(rates) * work if rates else None
    latent = width * height // 64 * 4 * 4 * batch
    memory_mb = round((latent * 40) / 2**20 + 64, 1)
    ahead = state.queue.counts()[QUEUED]
    return JSONResponse({"type": kind, "estimated_seconds": round(seconds, 3) if seconds is not None else None,
                         "based_on_jobs": len(rates), "estimated_memory_mb": memory_mb,
                         "queue_wait_seconds": round(ahead * state.queue.seconds_per_job(), 3)})


def _encode(image: Image.Image, fmt: str) -> dict[str, Any]:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt.upper())
    mime = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}[fmt]
    data = buffer.getvalue()
    return {"image": f"data:{mime};base64," + base64.b64encode(data).decode(),
            "width": image.width, "height": image.height, "mime_type": mime, "size_bytes": len(data)}


def _format(f: Fields) -> str:
    fmt = (f.string("format", "png") or "png").lower()
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt not in ("png", "jpeg", "webp"):
        raise invalid("format", "expected png, jpeg or webp")
    return fmt


async def resize(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await read_json(request)
    f = Fields(body)
    image = await anyio.to_thread.run_sync(state.parser.image, body.get("image"), "image")
    width = f.integer("width", None, 1, 16384)
    height = f.integer("height", None, 1, 16384)
    if width is None and height is None:
        raise invalid("width", "give width, height or both")
    width = width or max(1, round(image.width * height / image.height))  # type: ignore[operator]
    height = height or max(1, round(image.height * width / image.width))
    if width * height > state.config.max_pixels:
        raise invalid("width", "the result is too large")
    fmt = _format(f)
    if fmt == "jpeg":
        image = image.convert("RGB")
    result = await anyio.to_thread.run_sync(lambda: image.resize((width, height), Image.Resampling.LANCZOS))
    return JSONResponse(await anyio.to_thread.run_sync(_encode, result, fmt))


async def crop(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await read_json(request)
    f = Fields(body)
    image = await anyio.to_thread.run_sync(state.parser.image, body.get("image"), "image")
    x = f.integer("x", 0, 0, image.width - 1) or 0
    y = f.integer("y", 0, 0, image.height - 1) or 0
    width = f.integer("width", image.width - x, 1, image.width - x) or 1
    height = f.integer("height", image.height - y, 1, image.height - y) or 1
    fmt = _format(f)
    result = image.crop((x, y, x + width, y + height))
    if fmt == "jpeg":
        result = result.convert("RGB")
    return JSONResponse(await anyio.to_thread.run_sync(_encode, result, fmt))


#: the image to fetch (``GET /api/image/download?url=``)
URL = Text("url", None, "an http or https URL of a PNG, JPEG or WebP image", max_length=MAX_URL_LENGTH)


async def download(request: Request) -> JSONResponse:
    """The image at ``?url=``, fetched under the server's URL policy (:mod:`sdrest.server.urlfetch`), checked
    and decoded like any image input, and answered as a PNG data URL: never the fetched bytes as they came."""
    state = state_of(request)
    if state.parser.urls is None:
        raise ApiError(403, URLS_DISABLED, field="url", code="disabled")
    url = URL.read(request)
    if url is None:
        raise bad_query("url", "required")
    if not is_url(url):
        raise bad_query("url", "expected an http or https URL")
    image = await anyio.to_thread.run_sync(state.parser.image, url, "url")
    return JSONResponse(await anyio.to_thread.run_sync(_encode, image, "png"))


def routes() -> list[ApiRoute]:
    """The utility routes."""
    image_out = {"type": "object", "required": ["image", "width", "height", "mime_type", "size_bytes"],
                 "properties": {"image": {"type": "string", "description": "a data: URL"},
                                "width": {"type": "integer"}, "height": {"type": "integer"},
                                "mime_type": {"type": "string"}, "size_bytes": {"type": "integer"}}}
    gen_check = {"type": "object", "properties": {
        "type": {"type": "string", "enum": list(_KINDS), "default": "text2img"},
        "parameters": {"type": "object", "description": "the request; without it, the other fields are"}}}
    image = {"type": "string", "minLength": 1, "description": "a PNG, JPEG or WebP image: base64, a data: URL, "
                                                               "or an http(s) URL where url_images is on"}
    fmt = {"type": "string", "enum": ["png", "jpeg", "jpg", "webp"], "default": "png", "description": "any case"}
    side = {"type": "integer", "minimum": 1, "maximum": 16384}
    resize_schema = {"type": "object", "required": ["image"], "properties": {
        "image": image, "width": side, "height": side, "format": fmt},
        "anyOf": [{"required": ["width"]}, {"required": ["height"]}]}
    crop_schema = {"type": "object", "required": ["image"], "properties": {
        "image": image, "x": {"type": "integer", "minimum": 0}, "y": {"type": "integer", "minimum": 0},
        "width": side, "height": side, "format": fmt}}
    return [
        ApiRoute("/api/samplers", samplers, methods=["GET"], summary="Sampler names", tag="utility"),
        ApiRoute("/api/schedulers", schedulers, methods=["GET"], summary="Scheduler names", tag="utility"),
        ApiRoute("/api/parameters", parameters, methods=["GET"], summary="Every parameter with its range",
                 tag="utility"),
        ApiRoute("/api/validate", validate, methods=["POST"], summary="Check a request without queueing it",
                 tag="utility", request=gen_check),
        ApiRoute("/api/estimate", estimate, methods=["POST"], summary="Estimate time and memory", tag="utility",
                 request=gen_check),
        ApiRoute("/api/image/resize", resize, methods=["POST"], summary="Resize an image", tag="utility",
                 response=image_out, request=resize_schema),
        ApiRoute("/api/image/crop", crop, methods=["POST"], summary="Crop an image", tag="utility",
                 response=image_out, request=crop_schema),
        # 403: url_images is off; 415: not a PNG, JPEG or WebP; 422: the URL refused (an address that is not
        # public, too many redirects, too large), failed (unreachable, not 200, past url_timeout_seconds) or
        # the image too large
        ApiRoute("/api/image/download", download, methods=["GET"], summary="Fetch an image from a URL",
                 tag="utility", response=image_out, query=schemas((URL,)), errors=(403, 415, 422)),
    ]
