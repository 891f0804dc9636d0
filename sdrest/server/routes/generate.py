"""``POST /api/generate/*``: queue a generation; 202 with the job id, or the images with ``?wait=true``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from sdrest.server.body import read_json
from sdrest.server.query import Boolean, Number, schemas
from sdrest.server.requests import Prepared
from sdrest.server.spec import ApiRoute, Schema
from sdrest.server.state import ServerState, state_of
from sdrest.server.submit import job_with_images, output_urls, submit, wait_for

_IMAGE = {"type": "string", "description": "base64 or a data: URL"}
_GENERATION_PROPERTIES: Schema = {
    "prompt": {"type": "string"}, "negative_prompt": {"type": "string"},
    "width": {"type": "integer", "minimum": 64, "multipleOf": 8}, "height": {"type": "integer", "minimum": 64, "multipleOf": 8},
    "steps": {"type": "integer", "minimum": 1}, "cfg_scale": {"type": "number"},
    "sampling_method": {"type": "string"}, "scheduler": {"type": "string"},
    "seed": {"oneOf": [{"type": "integer"}, {"type": "string", "enum": ["random"]}]},
    "batch_count": {"type": "integer", "minimum": 1}, "clip_skip": {"type": "integer"},
    "model": {"type": "string"}, "vae_model": {"type": "string"}, "taesd_model": {"type": "string"},
    "clip_l_model": {"type": "string"}, "clip_g_model": {"type": "string"}, "t5xxl_model": {"type": "string"},
    "llm_model": {"type": "string"},
    "loras": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "object", "properties": {
        "name": {"type": "string"}, "multiplier": {"type": "number"}}, "required": ["name"]}]}},
    "preview": {"type": "boolean"}, "preview_interval": {"type": "integer"}, "vae_tiling": {"type": "boolean"},
    "guidance": {"type": "number"}, "eta": {"type": "number"}, "flow_shift": {"type": "number"},
}
_EXTRA: dict[str, Schema] = {
    "txt2img": {},
    "img2img": {"init_image": _IMAGE, "strength": {"type": "number", "minimum": 0, "maximum": 1}},
    "inpainting": {"source_image": _IMAGE, "mask_image": _IMAGE, "strength": {"type": "number"}},
    "controlnet": {"control_image": _IMAGE, "control_net_model": {"type": "string"},
                   "control_strength": {"type": "number"}},
    "video": {"init_image": _IMAGE, "video_frames": {"type": "integer", "minimum": 1}},
}
_REQUIRED = {"txt2img": ["prompt"], "img2img": ["prompt", "init_image"],
             "inpainting": ["prompt", "source_image", "mask_image"],
             "controlnet": ["prompt", "control_image", "control_net_model"], "video": []}
UPSCALE_SCHEMA: Schema = {"type": "object", "required": ["image"], "additionalProperties": False, "properties": {
    "image": _IMAGE, "esrgan_model": {"type": "string"}, "upscale_factor": {"type": "integer", "minimum": 1}}}
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
    """The request schema of a generation kind."""
    return {"type": "object", "additionalProperties": False, "required": _REQUIRED[kind],
            "properties": {**_GENERATION_PROPERTIES, **_EXTRA[kind]}}


#: ``?wait=true`` holds the request until the job ends (or ``timeout`` seconds pass) and answers with its images
WAIT = Boolean("wait", False, "answer when the job has ended, with its images (200), instead of at once (202)")
TIMEOUT = Number("timeout", 3600.0, "with wait: the longest to wait, in seconds; 202 after it",
                 minimum=0.0, maximum=86400.0)


def wait_seconds(request: Request) -> float | None:
    """How long ``?wait=true&timeout=S`` asks to wait; None without ``wait``. 400 naming a bad parameter."""
    timeout = TIMEOUT.read(request)
    return timeout if WAIT.read(request) else None


async def _respond(state: ServerState, prepared: Prepared, wait: float | None) -> JSONResponse:
    job = await submit(state, prepared)
    if wait is not None:
        done = await wait_for(state, job.id, wait)
        if done is not None:
            body = await job_with_images(state, done)
            if done.status == "succeeded":
                return JSONResponse(body)
            status = 409 if done.status == "cancelled" else 500
            return JSONResponse({**body, "error": {"code": f"job_{done.status}", "message": done.error or done.status}},
                                status_code=status)
        job = state.jobs.store.get(job.id) or job
    body = {"job_id": job.id, "id": job.id, "status": job.status, "kind": job.kind, "queue_position": job.position,
            "status_url": f"/api/queue/job/{job.id}", "events_url": f"/api/queue/job/{job.id}/events",
            "outputs": output_urls(job)}
    return JSONResponse(body, status_code=202, headers={"Location": f"/api/queue/job/{job.id}"})


def _generation_endpoint(kind: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        state = state_of(request)
        wait = wait_seconds(request)
        body = await read_json(request)
        # decoding images and scanning long prompts takes time: never on the event loop
        prepared = await anyio.to_thread.run_sync(state.parser.generation, kind, body)
        return await _respond(state, prepared, wait)
    endpoint.__name__ = f"generate_{kind}"
    return endpoint


async def generate_upscale(request: Request) -> JSONResponse:
    state = state_of(request)
    wait = wait_seconds(request)
    body = await read_json(request)
    return await _respond(state, await anyio.to_thread.run_sync(state.parser.upscale, body), wait)


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
