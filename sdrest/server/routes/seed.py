"""The seed's own API (``/api/v1``): ``POST /api/v1/generate`` answering when done, as the seed's Python,
JavaScript and curl examples expect, ``GET /api/v1/generate/{job_id}``, and ``GET /api/v1/models``.

A thin translation onto the native routes: the body is the native one (:mod:`sdrest.generation_fields`) plus the
seed's ``batch_size``; the kind follows from the images given. Everything goes through the queue, owned by the
caller.
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from sdrest.generation_fields import GENERATION_KINDS, request_schema
from sdrest.jobs.store import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Job
from sdrest.server.auth import principal_of
from sdrest.server.body import read_json
from sdrest.server.errors import invalid
from sdrest.server.query import Boolean, schemas
from sdrest.server.routes import models
from sdrest.server.routes.queue import job_of
from sdrest.server.spec import ApiRoute, Schema
from sdrest.server.state import ServerState, state_of
from sdrest.server.submit import job_with_images, output_urls, submit, wait_or_cancel

#: our job states -> the seed's
STATUS = {QUEUED: "queued", RUNNING: "processing", SUCCEEDED: "completed", FAILED: "failed", CANCELLED: "cancelled"}
ASYNC = Boolean("async", False, "answer at once with the job id (202) instead of when the job is done")
#: the longest a synchronous call waits before answering with the job as it is (202)
WAIT_SECONDS = 3600.0
#: the fields the seed's parameters echo
_ECHOED = ("prompt", "negative_prompt", "model", "width", "height", "steps", "cfg_scale", "sampler", "scheduler")


def _kind(body: dict[str, Any]) -> str:
    """The job kind the seed's body asks for: by its ``type``, else by the images it gives."""
    given = body.pop("type", None)
    if given is not None:
        kind = {"text2img": "txt2img"}.get(given, given)
        if kind not in GENERATION_KINDS:
            raise invalid("type", f"expected one of: text2img, {', '.join(GENERATION_KINDS[1:])}")
        return kind
    if "control_image" in body:
        return "controlnet"
    if "mask_image" in body:
        return "inpainting"
    return "img2img" if "init_image" in body else "txt2img"


def _native_body(body: dict[str, Any]) -> dict[str, Any]:
    """The seed's body as the native parser reads it (``batch_size`` is ``batch_count``)."""
    body = dict(body)
    if "batch_size" in body:
        if "batch_count" in body:
            raise invalid("batch_size", "give batch_size or batch_count, not both")
        body["batch_count"] = body.pop("batch_size")
    return body


def _answer(state: ServerState, job: Job, images: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A job in the seed's shape."""
    out: dict[str, Any] = {"job_id": job.id, "status": STATUS.get(job.status, job.status), "progress": job.progress,
                           "images": images or [], "outputs": output_urls(job, state.auth)}
    if job.started_at and job.finished_at:
        out["generation_time"] = round(job.finished_at - job.started_at, 3)
    if job.error:
        out["error"] = job.error
    if job.status == QUEUED:
        out["queue_position"] = job.position
    return out


async def _images(state: ServerState, job: Job) -> list[dict[str, Any]]:
    """The job's images as the seed gives them: base64 data, seed, and the parameters that made each."""
    if job.status != SUCCEEDED:
        return []
    shown = job.to_dict()["parameters"]
    echoed = {key: shown[key] for key in _ECHOED if shown.get(key) is not None}
    echoed["batch_size"] = shown.get("batch_count", 1)
    images = (await job_with_images(state, job))["images"]
    return [{"data": image["data"], "seed": image["seed"], "filename": image["filename"],
             "parameters": {**echoed, "seed": image["seed"]}} for image in images]


async def generate(request: Request) -> JSONResponse:
    state = state_of(request)
    run_async = ASYNC.read(request)
    body = _native_body(await read_json(request))
    kind = _kind(body)
    prepared = await anyio.to_thread.run_sync(state.parser.generation, kind, body)
    job = await submit(state, prepared, principal_of(request))
    if run_async:
        return JSONResponse(_answer(state, job), status_code=202, headers={"Location": f"/api/v1/generate/{job.id}"})
    done = await wait_or_cancel(request, state, job.id, WAIT_SECONDS)
    if done is None:  # still running after the wait, or the server is stopping
        current = state.queue.get(job.id) or job
        return JSONResponse(_answer(state, current), status_code=202,
                            headers={"Location": f"/api/v1/generate/{job.id}"})
    return JSONResponse(_answer(state, done, await _images(state, done)))


async def generation_status(request: Request) -> JSONResponse:
    state = state_of(request)
    job = job_of(request, request.path_params["job_id"])
    return JSONResponse(_answer(state, job, await _images(state, job)))


ANSWER_SCHEMA: Schema = {"type": "object", "required": ["job_id", "status", "images"], "properties": {
    "job_id": {"type": "string"},
    "status": {"type": "string", "enum": sorted(set(STATUS.values()))},
    "images": {"type": "array", "items": {"type": "object", "required": ["data"], "properties": {
        "data": {"type": "string", "contentEncoding": "base64"}, "seed": {"type": ["integer", "null"]},
        "parameters": {"type": "object"}}}},
    "generation_time": {"type": "number"}, "error": {"type": "string"}}}


def _request_schema() -> Schema:
    """The native txt2img body with the seed's extras: its ``batch_size``, a ``type``, and any kind's images."""
    schema = request_schema("txt2img")
    properties = dict(schema["properties"])
    for kind in GENERATION_KINDS[1:]:
        properties.update({k: v for k, v in request_schema(kind)["properties"].items() if k not in properties})
    properties["batch_size"] = {**properties["batch_count"], "description": "the seed's name for batch_count"}
    properties["type"] = {"type": "string", "enum": ["text2img", *GENERATION_KINDS]}
    return {"type": "object", "additionalProperties": False, "properties": properties}


def routes() -> list[ApiRoute]:
    """The seed's ``/api/v1`` routes."""
    errors = (409, 415, 429, 500, 503)
    return [
        ApiRoute("/api/v1/generate", generate, methods=["POST"], summary="Generate, answering when done (the seed's)",
                 tag="seed", request=_request_schema(), response=ANSWER_SCHEMA, query=schemas((ASYNC,)),
                 errors=errors, responses={202: ANSWER_SCHEMA}),
        ApiRoute("/api/v1/generate/{job_id}", generation_status, methods=["GET"],
                 summary="A generation, in the seed's shape", tag="seed", response=ANSWER_SCHEMA),
        ApiRoute("/api/v1/models", models.list_models, methods=["GET"], summary="List models (the seed's path)",
                 tag="seed", query=schemas(models.LISTING)),
    ]
