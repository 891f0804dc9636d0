"""Server-Sent Events: job events as ``event:``/``data:`` frames, with keep-alives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from sdrest.auth.service import Principal
from sdrest.jobs.events import Subscription
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


class Stopping(Exception):
    """The server began to stop while a handler waited for events."""


async def next_event(sub: Subscription, stopping: asyncio.Event, timeout: float) -> dict[str, Any] | None:
    """The next event of ``sub``; None after ``timeout`` seconds; :class:`Stopping` once the server stops."""
    if stopping.is_set():
        raise Stopping
    get = asyncio.ensure_future(sub.queue.get())
    stop = asyncio.ensure_future(stopping.wait())
    try:
        done, _ = await asyncio.wait({get, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (get, stop):
            task.cancel()
    if get in done:
        return get.result()
    if stop in done:
        raise Stopping
    return None


class OwnerFilter:
    """Which events of the all-jobs stream a principal sees: their own jobs' (an admin: every job's). Another
    user's job shows only as the queue's counts, when its state changes."""

    def __init__(self, state: ServerState, principal: Principal) -> None:
        self.state = state
        self.principal = principal
        self._owners: dict[str, bool] = {}

    def sees(self, job_id: str | None) -> bool:
        """Whether the principal may see the events of ``job_id``."""
        if self.principal.is_admin or job_id is None:
            return True
        if job_id not in self._owners:
            if len(self._owners) > 10000:
                self._owners.clear()
            job = self.state.queue.get(job_id)
            self._owners[job_id] = job is not None and self.principal.sees(job.owner)
        return self._owners[job_id]

    def shown(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The event as the principal may see it, or None."""
        if self.sees(event.get("job_id")):
            return event
        if event.get("type") == "state":
            return {"type": "counts", "job_id": None, "counts": self.state.queue.counts()}
        return None


async def _stream(state: ServerState, job_id: str | None, principal: Principal) -> AsyncIterator[str]:
    queue = state.queue
    owners = OwnerFilter(state, principal)
    sub = queue.subscribe(job_id)
    try:
        yield "retry: 2000\n\n"
        if job_id is not None:
            job = queue.get(job_id)
            if job is not None:
                yield frame({"type": "state", "job_id": job_id, "status": job.status, "snapshot": True,
                             "progress": job.progress, "step": job.step, "steps": job.steps,
                             "queue_position": job.position, "outputs": job.outputs, "error": job.error})
                if job.status in FINISHED:
                    return
        else:
            yield frame({"type": "hello", "job_id": None, "counts": queue.counts(),
                         "running": [j for j in queue.running_ids() if owners.sees(j)]})
        while True:
            try:
                event = await next_event(sub, state.stopping, KEEPALIVE_SECONDS)
            except Stopping:
                yield frame({"type": "server", "job_id": job_id, "status": "stopping",
                             "message": "the server is stopping; reconnect to follow the job"})
                return
            if event is None:
                yield ": keep-alive\n\n"
                continue
            shown = owners.shown(event) if job_id is None else event
            if shown is not None:
                yield frame(shown)
            if job_id is not None and event.get("type") == "state" and event.get("status") in FINISHED:
                return
    finally:
        queue.unsubscribe(sub)


def event_stream(state: ServerState, job_id: str | None, principal: Principal) -> StreamingResponse:
    """An SSE response for one job (ends when the job ends; the caller checked the principal may see it), or for
    all jobs the principal may see."""
    return StreamingResponse(_stream(state, job_id, principal), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
