"""The gallery: search past jobs (full text over the prompts, and filters), star them, delete them with their files."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from sdrest.generation_fields import GENERATION_KINDS, MAX_SIDE
from sdrest.jobs.store import FINISHED, STATUSES, JobSearch
from sdrest.server.auth import owner_filter, principal_of
from sdrest.server.errors import ApiError
from sdrest.server.query import Boolean, Choice, Integer, QueryParam, Text, bad_query, schemas
from sdrest.server.routes.queue import JOB_SCHEMA, job_of
from sdrest.server.spec import ApiRoute, Schema
from sdrest.server.state import ServerState, state_of
from sdrest.server.submit import output_urls

#: the job kinds whose outputs are images, searched when a request names no ``kind``
GALLERY_KINDS = (*GENERATION_KINDS, "upscale")
#: ``status``: one status, ``finished`` (succeeded, failed or cancelled) or ``any``
STATUS_CHOICES = (*STATUSES, "finished", "any")


@dataclass(frozen=True)
class Instant(QueryParam["float | None"]):
    """A point in time: seconds since the epoch, or an ISO 8601 date or date-time (UTC unless it says otherwise).

    A bare date means its first moment, or with ``end_of_day`` the first moment of the next day (so that
    ``until=2026-12-03`` includes that whole day).
    """

    end_of_day: bool = False

    def parse(self, raw: str) -> float:
        if len(raw) > 40:
            raise bad_query(self.name, "longer than 40 characters")
        try:
            return float(int(raw)) if raw.isascii() and raw.isdigit() else self._iso(raw)
        except (ValueError, OverflowError):
            raise bad_query(self.name, f"expected seconds since the epoch or an ISO 8601 date, got {raw!r}") from None

    def _iso(self, raw: str) -> float:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime.combine(day + timedelta(days=1) if self.end_of_day else day, time(), UTC)
        else:
            moment = datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()

    def schema(self) -> Schema:
        return self._described({"type": "string", "maxLength": 40,
                                "examples": ["2026-12-03", "2026-12-03T18:00:00+01:00", "1796256000"]})


Q = Text("q", None, "words of the prompt or negative prompt, each matched as a word prefix; all must match",
         max_length=500)
MODEL = Text("model", None, "the model's id (as GET /api/models lists it)", max_length=500)
WIDTH = Integer("width", 0, "only this width (0: any)", minimum=0, maximum=MAX_SIDE)
HEIGHT = Integer("height", 0, "only this height (0: any)", minimum=0, maximum=MAX_SIDE)
SINCE = Instant("since", None, "created at or after this (epoch seconds or ISO 8601)")
UNTIL = Instant("until", None, "created before this (epoch seconds or ISO 8601; a bare date includes the day)",
                end_of_day=True)
STARRED = Boolean("starred", False, "only starred jobs")
STATUS = Choice("status", "succeeded", "a status, 'finished' or 'any'", choices=STATUS_CHOICES)
KIND = Choice("kind", None, "one job kind (default: every kind with image outputs)",
              choices=(*GALLERY_KINDS, "convert", "hash"))
LIMIT = Integer("limit", 48, "most jobs in one page", minimum=1, maximum=200)
CURSOR = Integer("cursor", 0, "the next_cursor of the page before (0 or absent: the newest)", minimum=0,
                 maximum=2**62)
QUERY = (Q, MODEL, WIDTH, HEIGHT, SINCE, UNTIL, STARRED, STATUS, KIND, LIMIT, CURSOR)

GALLERY_JOB_SCHEMA: Schema = {**JOB_SCHEMA, "required": [*JOB_SCHEMA["required"], "starred"],
                              "properties": {**JOB_SCHEMA["properties"], "starred": {"type": "boolean"}}}
SEARCH_SCHEMA: Schema = {"type": "object", "required": ["jobs", "total", "next_cursor"], "properties": {
    "jobs": {"type": "array", "items": GALLERY_JOB_SCHEMA},
    "total": {"type": "integer", "description": "how many jobs match, over every page"},
    "next_cursor": {"type": ["integer", "null"], "description": "the cursor of the next page; null on the last"}}}
STAR_SCHEMA: Schema = {"type": "object", "required": ["job_id", "starred"], "properties": {
    "job_id": {"type": "string"}, "starred": {"type": "boolean"}}}
DELETED_SCHEMA: Schema = {"type": "object", "required": ["job_id", "deleted"], "properties": {
    "job_id": {"type": "string"}, "deleted": {"type": "boolean"}}}


def _statuses(status: str | None) -> tuple[str, ...]:
    if status == "any":
        return ()
    if status == "finished":
        return FINISHED
    return (status or "succeeded",)


async def search(request: Request) -> JSONResponse:
    """``GET /api/gallery``: the caller's jobs (an admin's: everyone's) that match, newest first, one page."""
    state = state_of(request)
    text, since, until = Q.read(request), SINCE.read(request), UNTIL.read(request)
    if since is not None and until is not None and until <= since:
        raise bad_query("until", "must be later than since")
    kind = KIND.read(request)
    query = JobSearch(text=text, owner=owner_filter(principal_of(request)), model=MODEL.read(request),
                      width=WIDTH.read(request) or None, height=HEIGHT.read(request) or None, since=since,
                      until=until, starred=STARRED.read(request), statuses=_statuses(STATUS.read(request)),
                      kinds=(kind,) if kind else GALLERY_KINDS)
    limit, cursor = LIMIT.read(request), CURSOR.read(request)
    page = await anyio.to_thread.run_sync(lambda: state.queue.search(query, limit=limit, cursor=cursor))
    jobs = []
    for job in page.jobs:
        body = job.to_dict()
        body["outputs"] = output_urls(job, state.auth)
        body["starred"] = job.id in page.starred
        jobs.append(body)
    return JSONResponse({"jobs": jobs, "total": page.total, "next_cursor": page.next_cursor})


async def star(request: Request) -> JSONResponse:
    """``PUT`` stars a job the caller may see, ``DELETE`` unstars it."""
    state = state_of(request)
    job = job_of(request, request.path_params["job_id"])
    starred = request.method == "PUT"
    if not state.queue.set_starred(job.id, starred):
        raise ApiError(404, f"no job {job.id!r}", field="job_id")
    return JSONResponse({"job_id": job.id, "starred": starred})


def _remove_files(state: ServerState, job_id: str) -> None:
    for folder in (state.outputs_dir, state.inputs_dir, state.thumbs_dir):
        shutil.rmtree(folder / job_id, ignore_errors=True)


async def delete_job(request: Request) -> JSONResponse:
    """Delete a finished job the caller may see, with its outputs, inputs and thumbnails; 409 while it is
    queued or running."""
    state = state_of(request)
    job = job_of(request, request.path_params["job_id"])
    if job.status not in FINISHED or not state.queue.delete_finished(job.id):
        current = state.queue.get(job.id)
        if current is None:
            raise ApiError(404, f"no job {job.id!r}", field="job_id")
        raise ApiError(409, f"job {job.id} is {current.status}: cancel it first (POST /api/queue/cancel), "
                            "then delete it once it has ended", field="job_id", code="not_finished")
    await anyio.to_thread.run_sync(_remove_files, state, job.id)
    return JSONResponse({"job_id": job.id, "deleted": True})


def routes() -> list[ApiRoute]:
    """The gallery routes."""
    return [
        ApiRoute("/api/gallery", search, methods=["GET"], summary="Search past jobs (the gallery)", tag="gallery",
                 query=schemas(QUERY), response=SEARCH_SCHEMA),
        ApiRoute("/api/queue/job/{job_id}/star", star, methods=["PUT", "DELETE"], summary="Star or unstar a job",
                 tag="gallery", response=STAR_SCHEMA, errors=(404,)),
        ApiRoute("/api/queue/job/{job_id}", delete_job, methods=["DELETE"],
                 summary="Delete a finished job and its files", tag="gallery", response=DELETED_SCHEMA,
                 errors=(404, 409)),
    ]
