"""``POST /api/generate/*``: queue a generation; 202 with the job id, or the images with ``?wait=true``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from sdrest.server.auth import principal_of
from sdrest.server.body import read_json
from sdrest.server.query import Boolean, Number, schemas
from sdrest.server.requests import MAX_PROMPT, Prepared
from sdrest.server.spec import ApiRoute, Schema, limited
from sdrest.server.state import state_of
from sdrest.server.submit import job_with_images, output_urls, submit, wait_or_cancel

# What the parser (sdrest.server.requests.RequestParser) enforces, stated for clients; the limits that depend on
# the server's settings (max_steps, max_batch, max_pixels) and the names it knows (samplers) are filled in by the
# served document (sdrest.server.openapi.with_limits).
_IMAGE: Schema = {"type": "string", "minLength": 1, "description": "a PNG, JPEG or WebP image: base64, a data: URL, "
                                                                  "or an http(s) URL where url_images is on"}
_NAME: Schema = {"type": "string", "minLength": 1, "description": "a model id, relative path or unique file name"}
_SIDE: Schema = limited({"type": "integer", "minimum": 64, "maximum": 16384, "multipleOf": 8,
                          "description": "pixels; width x height at most the server's max_pixels"}, maximum="max_side")
_PROMPT: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT, "pattern": "\\S",
                   "description": "<lora:name:weight> tags in it apply LoRAs"}
_LORA_WEIGHT: Schema = {"type": "number", "minimum": -10, "maximum": 10}


def _number(low: float, high: float) -> Schema:
    return {"type": "number", "minimum": low, "maximum": high}


def _integer(low: int, high: int | None = None, description: str = "") -> Schema:
    schema: Schema = {"type": "integer", "minimum": low}
    if high is not None:
        schema["maximum"] = high
    if description:
        schema["description"] = description
    return schema


_GENERATION_PROPERTIES: Schema = {
    "prompt": _PROMPT, "negative_prompt": {"type": "string", "maxLength": MAX_PROMPT},
    "width": _SIDE, "height": _SIDE,
    "steps": limited(_integer(1), maximum="max_steps"), "cfg_scale": _number(0, 100),
    "sampling_method": limited({"type": "string"}, enum="samplers"),
    "sampler": limited({"type": "string", "description": "sampling_method's other name"}, enum="samplers"),
    "scheduler": limited({"type": "string"}, enum="schedulers"),
    "seed": {"oneOf": [{"type": "integer", "maximum": 2**63 - 1, "description": "negative: random"},
                       {"type": "string", "enum": ["random", ""]}]},
    "batch_count": limited(_integer(1), maximum="max_batch"), "clip_skip": _integer(-1, 12),
    "model": {"type": "string", "description": "a model id, relative path or unique file name; "
                                               "none: the server's default model"},
    "vae_model": _NAME, "taesd_model": _NAME, "clip_l_model": _NAME, "clip_g_model": _NAME,
    "t5xxl_model": _NAME, "llm_model": _NAME,
    "loras": {"type": "array", "maxItems": 32, "items": {"oneOf": [_NAME, {
        "type": "object", "required": ["name"],
        "properties": {"name": _NAME, "multiplier": _LORA_WEIGHT, "strength": _LORA_WEIGHT}}]}},
    "preview": {"type": "boolean"}, "preview_interval": _integer(1, 1000, "a preview every this many steps"),
    "vae_tiling": {"type": "boolean"},
    "guidance": _number(0, 100), "eta": _number(0, 100), "flow_shift": _number(0, 100),
}
_EXTRA: dict[str, Schema] = {
    "txt2img": {},
    "img2img": {"init_image": _IMAGE, "strength": _number(0, 1)},
    "inpainting": {"source_image": _IMAGE, "init_image": _IMAGE, "mask_image": _IMAGE, "strength": _number(0, 1)},
    "controlnet": {"control_image": _IMAGE, "control_net_model": _NAME, "control_strength": _number(0, 10)},
    "video": {"init_image": _IMAGE, "video_frames": _integer(1, 1000)},
}
_REQUIRED = {"txt2img": ["prompt"], "img2img": ["prompt", "init_image"],
             "inpainting": ["prompt", "mask_image"],
             "controlnet": ["prompt", "control_image", "control_net_model"], "video": []}
UPSCALE_SCHEMA: Schema = {"type": "object", "required": ["image"], "additionalProperties": False, "properties": {
    "image": _IMAGE, "esrgan_model": {"type": "string", "description": "none: the only ESRGAN model, if one"},
    "model": {"type": "string", "description": "esrgan_model's other name"}, "upscale_factor": _integer(1, 8)}}
ACCEPTED_SCHEMA: Schema = {"type": "object", "required": ["job_id", "status"], "properties": {
    "job_id": {"type": "string"}, "status": {"type": "string"}, "queue_position": {"type": ["integer", "null"]},
    "events_url": {"type": "string"}, "status_url": {"type": "string"}, "images": {"type": "array"}}}
#: the answer of ``?wait=true`` once the job has succeeded: the job, with its images inline
WAITED_SCHEMA: Schema = {"type": "object", "required": ["id", "status", "images"], "properties": {
    "id": {"type": "string"}, "status": {"type": "string", "enum": ["succeeded"]},
    "images": {"type": "array", "items": {"type": "object", "required": ["filename", "data"], "properties": {
        "filename": {"type": "string"}, "data": {"type": "string", "contentEncoding": "base64"},
        "mime_type": {"type": "string"}, "seed": {"type": ["integer", "null"]}, "url": {"type": "string"}}}}}}


def generation_schema(kind: str) -> Schema:
    """The request schema of a generation kind (unknown fields are refused)."""
    properties = {**_GENERATION_PROPERTIES, **_EXTRA[kind]}
    if kind == "video":
        properties["prompt"] = {"type": "string", "maxLength": MAX_PROMPT}
    schema: Schema = {"type": "object", "additionalProperties": False, "required": _REQUIRED[kind],
                      "properties": properties}
    if kind == "inpainting":
        schema["anyOf"] = [{"required": ["source_image"]}, {"required": ["init_image"]}]
    return schema


#: ``?wait=true`` holds the request until the job ends (or ``timeout`` seconds pass) and answers with its images
WAIT = Boolean("wait", False, "answer when the job has ended, with its images (200), instead of at once (202)")
TIMEOUT = Number("timeout", 3600.0, "with wait: the longest to wait, in seconds; 202 after it",
                 minimum=0.0, maximum=86400.0)


def wait_seconds(request: Request) -> float | None:
    """How long ``?wait=true&timeout=S`` asks to wait; None without ``wait``. 400 naming a bad parameter."""
    timeout = TIMEOUT.read(request)
    return timeout if WAIT.read(request) else None


async def _respond(request: Request, prepared: Prepared, wait: float | None) -> JSONResponse:
    state = state_of(request)
    job = await submit(state, prepared, principal_of(request))
    if wait is not None:
        done = await wait_or_cancel(request, state, job.id, wait)
        if done is not None:
            body = await job_with_images(state, done)
            if done.status == "succeeded":
                return JSONResponse(body)
            status = 409 if done.status == "cancelled" else 500
            return JSONResponse({**body, "error": {"code": f"job_{done.status}", "message": done.error or done.status}},
                                status_code=status)
        job = state.queue.get(job.id) or job
    body = {"job_id": job.id, "id": job.id, "status": job.status, "kind": job.kind, "queue_position": job.position,
            "status_url": f"/api/queue/job/{job.id}", "events_url": f"/api/queue/job/{job.id}/events",
            "outputs": output_urls(job, state.auth)}
    return JSONResponse(body, status_code=202, headers={"Location": f"/api/queue/job/{job.id}"})


def _generation_endpoint(kind: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        state = state_of(request)
        wait = wait_seconds(request)
        body = await read_json(request)
        # decoding images and scanning long prompts takes time: never on the event loop
        prepared = await anyio.to_thread.run_sync(state.parser.generation, kind, body)
        return await _respond(request, prepared, wait)
    endpoint.__name__ = f"generate_{kind}"
    return endpoint


async def generate_upscale(request: Request) -> JSONResponse:
    state = state_of(request)
    wait = wait_seconds(request)
    body = await read_json(request)
    return await _respond(request, await anyio.to_thread.run_sync(state.parser.upscale, body), wait)


def routes() -> list[ApiRoute]:
    """The generation routes."""
    wait = schemas((WAIT, TIMEOUT))
    # 409 and 500: with ?wait, the job was cancelled or failed (the job, plus an error)
    errors = (409, 415, 429, 500, 503)
    out = []
    for path, kind, summary in (("text2img", "txt2img", "Text to image"), ("img2img", "img2img", "Image to image"),
                                ("inpainting", "inpainting", "Inpainting"), ("controlnet", "controlnet", "ControlNet"),
                                ("video", "video", "Video (Wan family)")):
        out.append(ApiRoute(f"/api/generate/{path}", _generation_endpoint(kind), methods=["POST"], summary=summary,
                            tag="generate", request=generation_schema(kind), response=ACCEPTED_SCHEMA, query=wait,
                            status=202, errors=errors, responses={200: WAITED_SCHEMA}))
    out.append(ApiRoute("/api/generate/upscale", generate_upscale, methods=["POST"], summary="ESRGAN upscale",
                        tag="generate", request=UPSCALE_SCHEMA, response=ACCEPTED_SCHEMA, query=wait, status=202,
                        errors=errors, responses={200: WAITED_SCHEMA}))
    return out
