"""The queue: status, one job, cancel, clear, live events, and the output files."""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from sdrest.jobs.outputs import safe_name, thumbnail
from sdrest.jobs.queue import CANCEL_MODES
from sdrest.jobs.store import FINISHED, QUEUED, RUNNING, Job
from sdrest.server.auth import authorize, maybe_principal, owner_filter, principal_of, sees
from sdrest.server.body import read_json
from sdrest.server.errors import ApiError, invalid
from sdrest.server.query import Boolean, Integer, Text, schemas
from sdrest.server.spec import PUBLIC, USER, ApiRoute, Schema
from sdrest.server.sse import event_stream
from sdrest.server.state import ServerState, state_of
from sdrest.server.submit import output_urls

JOB_SCHEMA: Schema = {"type": "object", "required": ["id", "status", "kind"], "properties": {
    "id": {"type": "string"}, "job_id": {"type": "string"}, "kind": {"type": "string"},
    "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
    "progress": {"type": "number"}, "step": {"type": "integer"}, "steps": {"type": "integer"},
    "queue_position": {"type": ["integer", "null"]}, "error": {"type": ["string", "null"]},
    "outputs": {"type": "array"}, "parameters": {"type": "object"}}}


#: how many queued jobs ``/api/queue/status`` lists
LIMIT = Integer("limit", 100, "most queued jobs to list", minimum=1, maximum=1000)
THUMB = Boolean("thumb", False, "a WebP thumbnail instead of the file")
EXPIRES = Text("expires", None, "a signed URL's expiry (seconds since the epoch)")
SIGNATURE = Text("signature", None, "a signed URL's signature")
SIZE = Integer("size", 256, "with thumb: the thumbnail's longest side, in pixels", minimum=16, maximum=2048)
DOWNLOAD = Boolean("download", False, "as an attachment (Content-Disposition)")


#: one Server-Sent Event as the document describes it: ``event`` names it, ``data`` is a JSON object
SSE_EVENT_SCHEMA: Schema = {"type": "object", "required": ["data"], "properties": {
    "event": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"},
    "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {
        "type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}}}}}


def job_of(request: Request, job_id: str, *, signed: bool = False) -> Job:
    """The job, if the request's principal may see it (or, with ``signed``, the URL is signed for it): another
    user's job is a 404, exactly like a job that does not exist."""
    state = state_of(request)
    job = state.queue.get(job_id) if safe_name(job_id) else None
    if job is None or not (sees(request, job.owner) or signed and _signed(request)):
        if job is not None and maybe_principal(request) is None:
            authorize(request.scope, USER)  # no credentials at all: say so (401) rather than 404
        raise ApiError(404, f"no job {job_id!r}", field="job_id")
    return job


def _signed(request: Request) -> bool:
    auth = state_of(request).auth
    return auth.urls.valid(request.url.path, request.query_params.get("expires"),
                           request.query_params.get("signature"))


def _job_body(state: ServerState, job: Job) -> dict:
    body = job.to_dict()
    body["outputs"] = output_urls(job, state.auth)
    return body


async def queue_status(request: Request) -> JSONResponse:
    state = state_of(request)
    limit = LIMIT.read(request)
    queue = state.queue
    owner = owner_filter(principal_of(request))
    active = queue.list_jobs(statuses=[RUNNING], owner=owner) + queue.list_jobs(statuses=[QUEUED], limit=limit,
                                                                              owner=owner)
    recent = queue.list_jobs(statuses=list(FINISHED), limit=20, newest_first=True, owner=owner)
    counts = queue.counts()
    return JSONResponse({"queue_size": counts[QUEUED], "running": counts[RUNNING], "counts": counts,
                         "limit": queue.limit, "jobs": [_job_body(state, j) for j in active],
                         "recent": [_job_body(state, j) for j in recent]})


async def job_status(request: Request) -> JSONResponse:
    return JSONResponse(_job_body(state_of(request), job_of(request, request.path_params["job_id"])))


async def cancel_job(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await read_json(request)
    job_id = body.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise invalid("job_id", "required")
    mode = body.get("mode", "all")
    if mode not in CANCEL_MODES:
        raise invalid("mode", f"expected one of {', '.join(CANCEL_MODES)}")
    job = job_of(request, job_id)
    if job.status in FINISHED:
        raise ApiError(409, f"job {job_id} already {job.status}", field="job_id", code="already_finished")
    result = state.queue.cancel(job_id, mode)
    return JSONResponse({"job_id": job_id, "status": "cancelled" if result == "cancelled" else "cancelling"})


async def clear_queue(request: Request) -> JSONResponse:
    """Cancel the caller's queued jobs (an admin's: everyone's, unless ``mine``)."""
    body = await read_json(request)
    mine = body.get("mine", False)
    if not isinstance(mine, bool):
        raise invalid("mine", "expected true or false")
    principal = principal_of(request)
    ids = state_of(request).queue.clear(owner=principal.username if mine else owner_filter(principal))
    return JSONResponse({"cleared": len(ids), "job_ids": ids})


async def job_events(request: Request) -> Response:
    state = state_of(request)
    job = job_of(request, request.path_params["job_id"])
    return event_stream(state, job.id, principal_of(request))


async def all_events(request: Request) -> Response:
    return event_stream(state_of(request), None, principal_of(request))


_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif",
          ".mp4": "video/mp4", ".webm": "video/webm", ".json": "application/json"}


async def job_output(request: Request) -> Response:
    state = state_of(request)
    thumb, size, download = THUMB.read(request), SIZE.read(request), DOWNLOAD.read(request)
    job = job_of(request, request.path_params["job_id"], signed=True)
    name = request.path_params["filename"]
    if not safe_name(name) or name not in job.outputs:
        raise ApiError(404, f"job {job.id} has no output {name!r}", field="filename")
    path = state.outputs_dir / job.id / name
    if not path.is_file():
        raise ApiError(404, f"output {name!r} is missing on disk", field="filename")
    if thumb:
        small = await anyio.to_thread.run_sync(thumbnail, path, state.thumbs_dir / job.id, size)
        return FileResponse(small, media_type="image/webp",
                            headers={"Cache-Control": "public, max-age=31536000, immutable"})
    media = _TYPES.get(path.suffix.lower(), "application/octet-stream")
    disposition = "attachment" if download else "inline"
    return FileResponse(path, media_type=media, headers={
        "Content-Disposition": f'{disposition}; filename="{job.id}-{name}"',
        "Cache-Control": "public, max-age=31536000, immutable"})


def routes() -> list[ApiRoute]:
    """The queue routes."""
    sse = "text/event-stream"
    file_query = schemas((THUMB, SIZE, DOWNLOAD, EXPIRES, SIGNATURE))
    output_types = sorted({*_TYPES.values(), "image/webp", "application/octet-stream"})
    cancel_schema = {"type": "object", "required": ["job_id"], "properties": {
        "job_id": {"type": "string", "minLength": 1},
        "mode": {"type": "string", "enum": list(CANCEL_MODES), "default": "all",
                 "description": "all: stop now; new_latents: finish the image being sampled, skip the rest of "
                                "the batch (the job succeeds with the images finished)"}}}
    clear_schema = {"type": "object", "properties": {"mine": {
        "type": "boolean", "default": False, "description": "only the caller's own jobs (an admin's default: all)"}}}
    return [
        ApiRoute("/api/queue/status", queue_status, methods=["GET"], summary="Queue status", tag="queue",
                 query=schemas((LIMIT,))),
        ApiRoute("/api/queue/job/{job_id}", job_status, methods=["GET"], summary="One job", tag="queue",
                 response=JOB_SCHEMA, errors=(404,)),
        ApiRoute("/api/queue/cancel", cancel_job, methods=["POST"], summary="Cancel a job", tag="queue",
                 request=cancel_schema, errors=(404, 409, 422)),
        ApiRoute("/api/queue/clear", clear_queue, methods=["POST"], summary="Cancel every queued job", tag="queue",
                 request=clear_schema),
        ApiRoute("/api/queue/job/{job_id}/events", job_events, methods=["GET"], summary="A job's events (SSE)",
                 tag="queue", content_type=sse, response=SSE_EVENT_SCHEMA),
        ApiRoute("/api/events", all_events, methods=["GET"], summary="All jobs' events (SSE)", tag="queue",
                 content_type=sse, response=SSE_EVENT_SCHEMA),
        *(ApiRoute(path, job_output, methods=["GET"], summary="An output file (the owner's, or by a signed URL)",
                   tag="queue", query=file_query, content_type=output_types,
                   response={"type": "string", "format": "binary"}, errors=(401, 404, 422), access=PUBLIC)
          for path in ("/api/queue/job/{job_id}/output/{filename}", "/api/v1/jobs/{job_id}/output/{filename}")),
    ]
