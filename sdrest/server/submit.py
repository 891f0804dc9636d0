"""Putting a prepared request on the queue, and waiting for a job to end."""

from __future__ import annotations

import base64
import shutil
import time
from typing import Any

import anyio

from sdrest.jobs.queue import QueueFull
from sdrest.jobs.store import FINISHED, Job, new_job_id
from sdrest.server.errors import ApiError
from sdrest.server.requests import Prepared
from sdrest.server.sse import Stopping, next_event
from sdrest.server.state import ServerState


async def submit(state: ServerState, prepared: Prepared, owner: str | None = None) -> Job:
    """Store the input images, queue the job; 429 with Retry-After when the queue is full."""
    if state.stopping.is_set():
        raise ApiError(503, "the server is stopping", headers={"Retry-After": "5"})
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


def output_urls(job: Job) -> list[dict[str, Any]]:
    """Where each output of ``job`` can be downloaded."""
    return [{"filename": name, "url": f"/api/queue/job/{job.id}/output/{name}",
             "thumbnail_url": f"/api/queue/job/{job.id}/output/{name}?thumb=1&size=256"}
            for name in job.outputs]


async def job_with_images(state: ServerState, job: Job) -> dict[str, Any]:
    """The job, with its output images inline (base64), for ``?wait=true``."""
    def read() -> list[dict[str, Any]]:
        seeds = job.result.get("seeds", [])
        images = []
        for index, name in enumerate(job.outputs):
            data = (state.outputs_dir / job.id / name).read_bytes()
            images.append({"filename": name, "data": base64.b64encode(data).decode(), "mime_type": "image/png",
                           "seed": seeds[index] if index < len(seeds) else None,
                           "url": f"/api/queue/job/{job.id}/output/{name}"})
        return images

    body = job.to_dict()
    body["images"] = await anyio.to_thread.run_sync(read)
    return body
