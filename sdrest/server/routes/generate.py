"""``POST /api/generate/*``: queue a generation; 202 with the job id, or the images with ``?wait=true``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from sdrest.server.auth import principal_of
from sdrest.server.body import read_json
from sdrest.server.query import Boolean, Number, schemas
from sdrest.generation_fields import request_schema
from sdrest.server.requests import Prepared
from sdrest.server.spec import ApiRoute, Schema
from sdrest.server.state import state_of
from sdrest.server.submit import job_with_images, output_urls, submit, wait_or_cancel

ACCEPTED_SCHEMA: Schema = {"type": "object", "required": ["job_id", "status"], "properties": {
    "job_id": {"type": "string"}, "status": {"type": "string"}, "queue_position": {"type": ["integer", "null"]},
    "events_url": {"type": "string"}, "status_url": {"type": "string"}, "images": {"type": "array"}}}
#: the answer of ``?wait=true`` once the job has succeeded: the job, with its images inline
WAITED_SCHEMA: Schema = {"type": "object", "required": ["id", "status", "images"], "properties": {
    "id": {"type": "string"}, "status": {"type": "string", "enum": ["succeeded"]},
    "images": {"type": "array", "items": {"type": "object", "required": ["filename", "data"], "properties": {
        "filename": {"type": "string"}, "data": {"type": "string", "contentEncoding": "base64"},
        "mime_type": {"type": "string"}, "seed": {"type": ["integer", "null"]}, "url": {"type": "string"}}}}}}


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
                            tag="generate", request=request_schema(kind), response=ACCEPTED_SCHEMA, query=wait,
                            status=202, errors=errors, responses={200: WAITED_SCHEMA}))
    out.append(ApiRoute("/api/generate/upscale", generate_upscale, methods=["POST"], summary="ESRGAN upscale",
                        tag="generate", request=request_schema("upscale"), response=ACCEPTED_SCHEMA, query=wait, status=202,
                        errors=errors, responses={200: WAITED_SCHEMA}))
    return out
