"""Server-Sent Events: job events as ``event:``/``data:`` frames, with keep-alives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from sdrest.jobs.store import FINISHED
from sdrest.server.state import ServerState

KEEPALIVE_SECONDS = 15.0


def frame(event: dict[str, Any]) -> str:
    """One SSE frame."""
    lines = [f"event: {event.get('type', 'message')}"]
    if "id" in event:
        lines.append(f"id: {event['id']}")
    lines.append("data: " + json.dumps(event, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


async def _stream(state: ServerState, job_id: str | None) -> AsyncIterator[str]:
    bus = state.jobs.bus
    sub = bus.subscribe(job_id)
    try:
        yield "retry: 2000\n\n"
        if job_id is not None:
            job = state.jobs.store.get(job_id)
            if job is not None:
                yield frame({"type": "state", "job_id": job_id, "status": job.status, "snapshot": True,
                             "progress": job.progress, "step": job.step, "steps": job.steps,
                             "queue_position": job.position, "outputs": job.outputs, "error": job.error})
                if job.status in FINISHED:
                    return
        else:
            yield frame({"type": "hello", "job_id": None, "counts": state.jobs.store.counts(),
                         "running": state.jobs.queue.running_ids()})
        while not state.stopping.is_set():
            try:
                event = await asyncio.wait_for(sub.queue.get(), timeout=KEEPALIVE_SECONDS)
            except asyncio.TimeoutError:
                yield ": keep-alive\n\n"
                continue
            yield frame(event)
            if job_id is not None and event.get("type") == "state" and event.get("status") in FINISHED:
                return
    finally:
        bus.unsubscribe(sub)


def event_stream(state: ServerState, job_id: str | None) -> StreamingResponse:
    """An SSE response for one job (ends when the job ends) or for all jobs."""
    return StreamingResponse(_stream(state, job_id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
