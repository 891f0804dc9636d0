"""Putting a prepared request on the queue, and waiting for a job to end."""

from __future__ import annotations

import asyncio
import base64
import shutil
import time
from typing import Any

import anyio
from starlette.requests import Request

from sdrest.jobs.queue import QueueFull
from sdrest.auth.service import Authenticator, Principal
from sdrest.jobs.store import FINISHED, QUEUED, RUNNING, Job, new_job_id
from sdrest.server.errors import ApiError
from sdrest.server.requests import Prepared
from sdrest.server.sse import Stopping, next_event
from sdrest.server.state import ServerState


def check_limits(state: ServerState, principal: Principal) -> None:
    """429 with Retry-After when a user (not an admin) has too many unfinished jobs, or asks too often."""
    if principal.is_admin:
        return
    cap = state.config.max_queued_per_user
    if cap and len(state.queue.list_jobs(statuses=[QUEUED, RUNNING], owner=principal.owner, limit=cap)) >= cap:
        raise ApiError(429, f"you have {cap} unfinished jobs, the most one user may have; wait for one to end",
                       code="too_many_jobs", headers={"Retry-After": str(max(1, round(state.queue.seconds_per_job())))})
    wait = state.auth.generation_rate.take(principal.owner or principal.username)
    if wait:
        raise ApiError(429, f"more than {state.config.requests_per_minute} generation requests in a minute; "
                            f"try again in {wait} s", code="rate_limited", headers={"Retry-After": str(wait)})


#: how often a synchronous call looks whether its client is still there
DISCONNECT_POLL_SECONDS = 0.5


async def submit(state: ServerState, prepared: Prepared, principal: Principal) -> Job:
    """Store the input images, queue the job as the principal's; 429 with Retry-After when the queue is full or
    the principal is over their limits."""
    if state.stopping.is_set():
        raise ApiError(503, "the server is stopping", headers={"Retry-After": "5"})
    check_limits(state, principal)
    owner = principal.owner
    job_id = new_job_id()
    input_dir = state.inputs_dir / job_id

    def write_inputs() -> None:
        if prepared.images:
            input_dir.mkdir(parents=True, exist_ok=True)
            for name, image in prepared.images.items():
                image.save(input_dir / f"{name}.png", format="PNG")

    await anyio.to_thread.run_sync(write_inputs)
    try:
        return state.queue.submit(prepared.kind, prepared.params, owner=owner, job_id=job_id)
    except QueueFull as exc:
        shutil.rmtree(input_dir, ignore_errors=True)
        raise ApiError(429, str(exc), code="queue_full", headers={"Retry-After": str(exc.retry_after)}) from None


async def wait_for(state: ServerState, job_id: str, timeout: float) -> Job | None:
    """The job once it has ended, or None after ``timeout`` seconds or when the server begins to stop."""
    queue = state.queue
    sub = queue.subscribe(job_id)
    deadline = time.monotonic() + timeout
    try:
        while True:
            job = queue.get(job_id)
            if job is None or job.status in FINISHED:
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                await next_event(sub, state.stopping, min(left, 5.0))
            except Stopping:
                return None
    finally:
        queue.unsubscribe(sub)


async def wait_or_cancel(request: Request, state: ServerState, job_id: str, timeout: float) -> Job | None:
    """:func:`wait_for` for a synchronous call: if the client goes away before the job ends, the job is
    cancelled (nobody is left to take its images) and None returned."""
    waiting = asyncio.ensure_future(wait_for(state, job_id, timeout))
    try:
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=DISCONNECT_POLL_SECONDS)
            if done:
                return waiting.result()
            if await request.is_disconnected():
                state.queue.cancel(job_id)
                return None
    finally:
        waiting.cancel()


def output_urls(job: Job, auth: Authenticator) -> list[dict[str, Any]]:
    """Where each output of ``job`` can be downloaded; with auth on, also a signed URL that needs no credentials
    (for an ``<img src>``, or a client that only follows links)."""
    urls = []
    for name in job.outputs:
        path = f"/api/queue/job/{job.id}/output/{name}"
        item = {"filename": name, "url": path, "thumbnail_url": f"{path}?thumb=1&size=256"}
        if auth.enabled:
            item["signed_url"] = auth.urls.sign(path)
        urls.append(item)
    return urls


async def job_with_images(state: ServerState, job: Job) -> dict[str, Any]:
    """The job, with its output images inline (base64), for ``?wait=true``."""
    def read() -> list[dict[str, Any]]:
        seeds = job.result.get("seeds", [])
        images = []
        for index, (name, urls) in enumerate(zip(job.outputs, output_urls(job, state.auth))):
            data = (state.outputs_dir / job.id / name).read_bytes()
            images.append({"filename": name, "data": base64.b64encode(data).decode(), "mime_type": "image/png",
                           "seed": seeds[index] if index < len(seeds) else None,
                           **{k: v for k, v in urls.items() if k.endswith("url")}})
        return images

    body = job.to_dict()
    body["images"] = await anyio.to_thread.run_sync(read)
    return body
