"""The queue interface and its embedded implementation (SQLite store + a condition variable).

A broker-backed queue (Redis, ...) for several machines can later implement
:class:`JobQueue` the same way; the server and the workers only see this interface.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from sdrest.jobs.events import EventBus
from sdrest.jobs.store import CANCELLED, QUEUED, RUNNING, Job, JobStore


class QueueFull(Exception):
    """The queue holds its limit of waiting jobs."""

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"the queue is full ({limit} jobs wait)")
        self.limit = limit
        self.retry_after = retry_after


class JobQueue(Protocol):
    """What the server and the workers need from a queue."""

    store: JobStore
    bus: EventBus

    def submit(self, kind: str, params: dict[str, Any], *, owner: str | None = None,
               job_id: str | None = None) -> Job: ...
    def take(self, worker: str, timeout: float) -> Job | None: ...
    def cancel(self, job_id: str) -> str | None: ...
    def clear(self, owner: str | None = None) -> list[str]: ...
    def register_running(self, job_id: str, cancel: Callable[[], None]) -> None: ...
    def unregister_running(self, job_id: str) -> None: ...
    def wake(self) -> None: ...


class LocalQueue:
    """The embedded queue: jobs in the SQLite store, workers woken by a condition variable."""

    def __init__(self, store: JobStore, bus: EventBus, limit: int, seconds_per_job: Callable[[], float]) -> None:
        self.store = store
        self.bus = bus
        self.limit = limit
        self._seconds_per_job = seconds_per_job
        self._cond = threading.Condition()
        self._running: dict[str, Callable[[], None]] = {}
        self._cancel_requested: set[str] = set()  # running, not yet registered by its worker
        self._closed = False

    def submit(self, kind: str, params: dict[str, Any], *, owner: str | None = None,
               job_id: str | None = None) -> Job:
        """Queue a job (``job_id`` chosen by the caller or new); raises :class:`QueueFull` past the limit."""
        job = self.store.create(kind, params, owner=owner, limit=self.limit, job_id=job_id)
        if job is None:
            retry = max(1, int(self._seconds_per_job()))
            raise QueueFull(self.limit, retry)
        self.bus.publish({"type": "state", "job_id": job.id, "status": QUEUED, "kind": kind,
                          "queue_position": job.position})
        with self._cond:
            self._cond.notify()
        return job

    def take(self, worker: str, timeout: float) -> Job | None:
        """The next job, claimed as running by ``worker``; None after ``timeout`` seconds or on close."""
        with self._cond:
            job = None if self._closed else self.store.claim_next(worker)
            if job is None and not self._closed:
                self._cond.wait(timeout)
                job = None if self._closed else self.store.claim_next(worker)
        return job

    def wake(self) -> None:
        """Wake every waiting worker (on stop)."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """No more jobs are handed out; waiting workers return at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def register_running(self, job_id: str, cancel: Callable[[], None]) -> None:
        """A worker runs ``job_id``; ``cancel()`` stops it."""
        with self._cond:
            self._running[job_id] = cancel
            early = job_id in self._cancel_requested
            self._cancel_requested.discard(job_id)
        if early:
            cancel()

    def unregister_running(self, job_id: str) -> None:
        """The worker is done with ``job_id``."""
        with self._cond:
            self._running.pop(job_id, None)
            self._cancel_requested.discard(job_id)

    def cancel(self, job_id: str) -> str | None:
        """Cancel a queued job at once, or ask the running one to stop.

        Returns the resulting status (``cancelled`` for a queued job, ``running`` while a
        running one stops, the final status when it had already finished), None when unknown.
        """
        if self.store.cancel_queued(job_id):
            self.bus.publish({"type": "state", "job_id": job_id, "status": CANCELLED,
                              "error": "cancelled before it started"})
            return CANCELLED
        with self._cond:
            stop = self._running.get(job_id)
            if stop is None:
                job = self.store.get(job_id)
                if job is not None and job.status == RUNNING:  # claimed, its worker not yet registered
                    self._cancel_requested.add(job_id)
                    return RUNNING
        if stop is not None:
            stop()
            return RUNNING
        job = self.store.get(job_id)
        return job.status if job else None

    def clear(self, owner: str | None = None) -> list[str]:
        """Cancel every queued job; returns their ids."""
        ids = self.store.clear_queue(owner)
        for job_id in ids:
            self.bus.publish({"type": "state", "job_id": job_id, "status": CANCELLED, "error": "queue cleared"})
        return ids

    def running_ids(self) -> list[str]:
        """Ids of the jobs the workers run now."""
        with self._cond:
            return list(self._running)
