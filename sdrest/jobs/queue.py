"""The queue: the only channel between the API and the workers, and its embedded implementation.

Two faces of one queue:

- :class:`JobQueue`, what the API process uses: submit, read, cancel, follow events, see the workers,
  send model control (load/unload) to them.
- :class:`WorkerQueue`, what a worker uses: take a job, report progress, previews and the outcome,
  hand a job back, report what it holds, receive control messages.

:class:`LocalQueue` implements both over the SQLite store and the in-process event bus (the embedded
default). A worker in a child process reaches it through :mod:`sdrest.jobs.channel`; a broker across
hosts implements the same two protocols, and neither the server nor the worker changes.
"""

from __future__ import annotations

import itertools
import queue as stdqueue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sdrest.jobs import placement
from sdrest.jobs.events import Event, EventBus, Subscription
from sdrest.jobs.metrics import Metrics
from sdrest.jobs.store import CANCELLED, FAILED, QUEUED, RUNNING, Job, JobSearch, JobStore, SearchPage

#: Control actions a worker understands.
CANCEL, LOAD, UNLOAD, STOP = "cancel", "load", "unload", "stop"
#: what a cancel stops: the whole job, or (a running batch) the images not yet started: that job succeeds
CANCEL_MODES = ("all", "new_latents")


def relative_paths(text: str, roots: Sequence[Path]) -> str:
    """``text`` with every absolute path under one of ``roots`` made relative to it (no server paths leak)."""
    for root in roots:
        prefix = str(root).rstrip("/") + "/"
        text = text.replace(prefix, "")
    return text


class QueueFull(Exception):
    """The queue holds its limit of waiting jobs."""

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"the queue is full ({limit} jobs wait)")
        self.limit = limit
        self.retry_after = retry_after


class ControlTimeout(Exception):
    """No worker answered a control message in time."""


@dataclass
class Control:
    """A message to one worker: ``cancel`` a job, ``load`` or ``unload`` a model, ``stop``.

    ``id`` is non-zero when the sender waits for a :meth:`WorkerQueue.reply`.
    """

    action: str
    args: dict[str, Any] = field(default_factory=dict)
    id: int = 0


@dataclass
class WorkerInfo:
    """What the API knows of one worker: its state and what it reported (capabilities, loaded models)."""

    name: str
    device: str = "default"
    host: str = "thread"
    alive: bool = False
    pid: int | None = None
    current_job: str | None = None
    started_at: float | None = None
    restarts: int = 0
    last_exit: str | None = None
    capabilities: dict[str, Any] = field(default_factory=dict)
    loaded: list[dict[str, Any]] = field(default_factory=list)
    memory_available_mb: int | None = None
    """Physical memory free on the worker's host (reported by remote workers)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (capabilities left out: they are the same for every worker of one build)."""
        out = asdict(self)
        out.pop("capabilities")
        return out


class JobQueue(Protocol):
    """What the API process needs from the queue."""

    limit: int

    def submit(self, kind: str, params: dict[str, Any], *, owner: str | None = None,
               job_id: str | None = None) -> Job: ...
    def get(self, job_id: str) -> Job | None: ...
    def list_jobs(self, *, statuses: Sequence[str] | None = None, owner: str | None = None, limit: int = 100,
                  offset: int = 0, newest_first: bool = False) -> list[Job]: ...
    def counts(self) -> dict[str, int]: ...
    def durations(self, kind: str | None = None, limit: int = 50) -> list[tuple[dict[str, Any], float]]: ...
    def seconds_per_job(self) -> float: ...
    def cancel(self, job_id: str, mode: str = "all") -> str | None: ...
    def clear(self, owner: str | None = None) -> list[str]: ...
    def running_ids(self) -> list[str]: ...
    def latest_preview(self, job_id: str) -> tuple[int, str] | None: ...
    def subscribe(self, job_id: str | None = None) -> Subscription: ...
    def unsubscribe(self, sub: Subscription) -> None: ...
    def workers(self) -> list[WorkerInfo]: ...
    def capabilities(self, timeout: float = 0.0) -> dict[str, Any]: ...
    def control(self, action: str, args: dict[str, Any], *, worker: str | None = None,
                timeout: float = 600.0) -> list[dict[str, Any]]: ...
    def metric(self, name: str, **labels: str) -> float: ...
    def render_metrics(self, gauges: dict[str, float]) -> str: ...
    def add_finish_hook(self, hook: FinishHook) -> None: ...
    def search(self, query: JobSearch, *, limit: int = 48, cursor: int = 0) -> SearchPage: ...
    def set_starred(self, job_id: str, starred: bool) -> bool: ...
    def delete_finished(self, job_id: str) -> bool: ...


FinishHook = Callable[[Job, str, dict[str, Any]], None]
ControlRoute = Callable[[str, Control], bool]
"""``hook(job, status, result)``, called as a job ends, before its outcome is visible to anyone."""


class WorkerQueue(Protocol):
    """What a worker needs from the queue (in its own process, or on another host)."""

    def take(self, worker: str, timeout: float) -> Job | None: ...
    def progress(self, job_id: str, step: int, steps: int, phase: str, seconds_per_step: float) -> None: ...
    def preview(self, job_id: str, step: int, image: str) -> None: ...
    def finish(self, job_id: str, status: str, *, outputs: Sequence[str] = (), result: dict[str, Any] | None = None,
               error: str | None = None, seconds: float = 0.0) -> None: ...
    def requeue(self, job_id: str, reason: str) -> None: ...
    def report(self, worker: str, info: dict[str, Any]) -> None: ...
    def controls(self, worker: str, timeout: float) -> Control | None: ...
    def reply(self, worker: str, control_id: int, result: dict[str, Any]) -> None: ...


@dataclass
class _Pending:
    """A control message waiting for replies."""

    expected: int
    replies: list[dict[str, Any]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


class LocalQueue:
    """The embedded queue: jobs in the SQLite store, events on the in-process bus, workers woken by a condition.

    ``max_attempts`` bounds how often a job interrupted by no fault of its own (a server stop) runs again;
    ``requeue_interrupted`` False fails such jobs instead.
    """

    def __init__(self, store: JobStore, bus: EventBus, metrics: Metrics, *, limit: int,
                 requeue_interrupted: bool = True, max_attempts: int = 2, roots: Sequence[Path] = ()) -> None:
        self._store = store
        self._bus = bus
        self._metrics = metrics
        self.limit = limit
        self.requeue_interrupted = requeue_interrupted
        self.max_attempts = max_attempts
        self.roots = tuple(roots)  # stripped from paths in published events
        self._cond = threading.Condition()
        self._closed = False
        self._running: dict[str, str] = {}  # job id -> worker name
        self._started: dict[str, float] = {}  # job id -> monotonic start (for step timing)
        self._last_step: dict[str, float] = {}
        self._previews: dict[str, tuple[int, str]] = {}  # running job id -> its latest (step, data URL) preview
        self._workers: dict[str, WorkerInfo] = {}
        self._controls: dict[str, stdqueue.Queue[Control]] = {}
        self._waiting: set[str] = set()  # workers waiting in a take (free), for placement
        self._routes: list[ControlRoute] = []  # deliver control messages to workers elsewhere (a broker)
        self._pending: dict[int, _Pending] = {}
        self._control_ids = itertools.count(1)
        self._capable = threading.Event()
        self._finish_hooks: list[FinishHook] = []

    # -- the API side ---------------------------------------------------------------------------

    def submit(self, kind: str, params: dict[str, Any], *, owner: str | None = None,
               job_id: str | None = None) -> Job:
        """Queue a job (``job_id`` chosen by the caller or new); raises :class:`QueueFull` past the limit."""
        job = self._store.create(kind, params, owner=owner, limit=self.limit, job_id=job_id)
        if job is None:
            raise QueueFull(self.limit, max(1, int(self.seconds_per_job())))
        self._bus.publish({"type": "state", "job_id": job.id, "status": QUEUED, "kind": kind,
                           "queue_position": job.position})
        with self._cond:
            self._cond.notify()
        return job

    def get(self, job_id: str) -> Job | None:
        """The job, with its queue position; None when unknown."""
        return self._store.get(job_id)

    def list_jobs(self, *, statuses: Sequence[str] | None = None, owner: str | None = None, limit: int = 100,
                  offset: int = 0, newest_first: bool = False) -> list[Job]:
        """Jobs filtered by status and owner, in queue order (or newest first)."""
        return self._store.list_jobs(statuses=statuses, owner=owner, limit=limit, offset=offset,
                                     newest_first=newest_first)

    def counts(self) -> dict[str, int]:
        """Jobs per status."""
        return self._store.counts()

    def durations(self, kind: str | None = None, limit: int = 50) -> list[tuple[dict[str, Any], float]]:
        """(params, seconds) of the latest succeeded jobs, for estimates."""
        return self._store.durations(kind, limit)

    def seconds_per_job(self) -> float:
        """Mean duration of recent jobs (for Retry-After and estimates); 10 s with no history."""
        history = self._store.durations(limit=20)
        return sum(s for _, s in history) / len(history) if history else 10.0

    def cancel(self, job_id: str, mode: str = "all") -> str | None:
        """Cancel a queued job at once, or tell the running one's worker to stop it.

        ``mode`` (:data:`CANCEL_MODES`) ``new_latents`` stops a running job after the image it samples: the
        job succeeds with the images finished (a queued job has none: it is cancelled all the same).
        Returns ``cancelled`` for a queued job, ``running`` while a running one stops, the final status
        when it had already finished, None when unknown.
        """
        if self._store.cancel_queued(job_id):
            self._bus.publish({"type": "state", "job_id": job_id, "status": CANCELLED,
                               "error": "cancelled before it started"})
            return CANCELLED
        with self._cond:
            worker = self._running.get(job_id)
        if worker is not None:
            self._send(worker, Control(CANCEL, {"job_id": job_id, "mode": mode}))
            return RUNNING
        job = self._store.get(job_id)
        return job.status if job else None

    def clear(self, owner: str | None = None) -> list[str]:
        """Cancel every queued job (of ``owner`` when given); returns their ids."""
        ids = self._store.clear_queue(owner)
        for job_id in ids:
            self._bus.publish({"type": "state", "job_id": job_id, "status": CANCELLED, "error": "queue cleared"})
        return ids

    def running_ids(self) -> list[str]:
        """Ids of the jobs the workers run now."""
        with self._cond:
            return list(self._running)

    def latest_preview(self, job_id: str) -> tuple[int, str] | None:
        """The latest (step, data URL) preview of a running job; None before its first, or once it has ended."""
        with self._cond:
            return self._previews.get(job_id)

    def subscribe(self, job_id: str | None = None) -> Subscription:
        """A listener on the running event loop: events of ``job_id``, or of every job."""
        return self._bus.subscribe(job_id)

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub``."""
        self._bus.unsubscribe(sub)

    def workers(self) -> list[WorkerInfo]:
        """Every worker known, in name order."""
        with self._cond:
            return [WorkerInfo(**asdict(w)) for _, w in sorted(self._workers.items())]

    def capabilities(self, timeout: float = 0.0) -> dict[str, Any]:
        """What the first worker to start reported: sampler, scheduler and type names, versions, system info.

        Waits up to ``timeout`` seconds for a report; empty when none came.
        """
        self._capable.wait(timeout)
        with self._cond:
            for info in self._workers.values():
                if info.capabilities:
                    return dict(info.capabilities)
        return {}

    def control(self, action: str, args: dict[str, Any], *, worker: str | None = None,
                timeout: float = 600.0) -> list[dict[str, Any]]:
        """Send ``action`` to ``worker`` (``load``: the first live worker; ``unload``: all) and wait for replies.

        Each reply is a dict with ``worker`` and ``ok``; raises :class:`ControlTimeout` when none came.
        """
        with self._cond:
            alive = [w.name for _, w in sorted(self._workers.items()) if w.alive]
        if worker is not None:
            targets = [worker]
        elif action == LOAD:
            idle = [name for name in alive if self._workers[name].current_job is None]
            targets = (idle or alive)[:1]
        else:
            targets = alive
        if not targets:
            raise ControlTimeout("no worker is running")
        control_id = next(self._control_ids)
        pending = _Pending(len(targets))
        with self._cond:
            self._pending[control_id] = pending
        try:
            for name in targets:
                self._send(name, Control(action, dict(args), control_id))
            if not pending.done.wait(timeout) and not pending.replies:
                raise ControlTimeout(f"no answer from {', '.join(targets)} within {timeout:g} s")
            return list(pending.replies)
        finally:
            with self._cond:
                self._pending.pop(control_id, None)

    def metric(self, name: str, **labels: str) -> float:
        """A counter's value (for the API's statistics)."""
        return self._metrics.counter(name, **labels)

    def render_metrics(self, gauges: dict[str, float]) -> str:
        """The counters and summaries, with ``gauges``, in Prometheus text format."""
        return self._metrics.render(gauges)

    def add_finish_hook(self, hook: FinishHook) -> None:
        """Call ``hook(job, status, result)`` as each job ends, before the outcome is stored (it must not raise)."""
        self._finish_hooks.append(hook)

    def search(self, query: JobSearch, *, limit: int = 48, cursor: int = 0) -> SearchPage:
        """The jobs ``query`` matches, newest first, one page (the gallery)."""
        return self._store.search(query, limit=limit, cursor=cursor)

    def set_starred(self, job_id: str, starred: bool) -> bool:
        """Star or unstar a job; False when unknown."""
        return self._store.set_starred(job_id, starred)

    def delete_finished(self, job_id: str) -> bool:
        """Forget a finished job (its files are the caller's to remove); False when unknown or not finished."""
        deleted = self._store.delete_finished(job_id)
        if deleted:
            self._bus.publish({"type": "deleted", "job_id": job_id})
        return deleted

    # -- the worker side ------------------------------------------------------------------------

    def take(self, worker: str, timeout: float) -> Job | None:
        """The next job, claimed as running by ``worker``; None after ``timeout`` seconds or when closed."""
        taken = self.dispatch([worker], timeout)
        return taken[0] if taken else None

    def dispatch(self, workers: Sequence[str], timeout: float) -> tuple[Job, str] | None:
        """The next job and the one of the free ``workers`` placed to run it (:mod:`sdrest.jobs.placement`),
        claimed as running by it; None after ``timeout`` seconds or when closed.

        A job whose model another free worker (one waiting in a take) already holds is left to that one.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._waiting.update(workers)
            try:
                while True:
                    taken = None if self._closed else self._claim_for(workers)
                    remaining = deadline - time.monotonic()
                    if taken is not None or self._closed or remaining <= 0:
                        break
                    self._cond.wait(remaining)
            finally:
                self._waiting.difference_update(workers)
            if taken is not None:
                job, worker = taken
                self._running[job.id] = worker
                self._started[job.id] = self._last_step[job.id] = time.monotonic()
                if worker in self._workers:
                    self._workers[worker].current_job = job.id
        if taken is not None:
            self._bus.publish({"type": "state", "job_id": job.id, "status": RUNNING, "kind": job.kind,
                               "worker": worker})
        return taken

    def _claim_for(self, workers: Sequence[str]) -> tuple[Job, str] | None:
        """Claim the next job for the best of ``workers`` (call with ``_cond`` held); None when none waits or
        a free worker that is not one of them holds its model (it is woken to take it)."""
        job = self._store.next_queued()
        if job is None:
            return None
        others = sorted(self._waiting.difference(workers))
        loaded = {name: info.loaded for name, info in self._workers.items()}
        chosen = placement.choose(job, [*workers, *others], loaded)
        if chosen not in workers:
            self._cond.notify_all()
            return None
        claimed = self._store.claim(job.id, chosen)  # type: ignore[arg-type]
        if claimed is None:
            return None
        if self._store.queued_count():
            self._cond.notify()  # another free worker may take the next one
        return claimed, str(chosen)

    def progress(self, job_id: str, step: int, steps: int, phase: str, seconds_per_step: float) -> None:
        """Record and publish a running job's step."""
        now = time.monotonic()
        with self._cond:
            started = self._started.get(job_id, now)
            last = self._last_step.get(job_id, now)
            self._last_step[job_id] = now
        if phase == "sampling":
            self._metrics.inc("sampling_steps_total")
            self._metrics.observe("step_seconds", now - last)
        self._store.set_progress(job_id, step, steps, phase)
        sps = seconds_per_step if seconds_per_step > 0 else (now - started) / max(step, 1)
        self._bus.publish({"type": "progress", "job_id": job_id, "step": step, "steps": steps, "phase": phase,
                           "progress": step / steps if steps else 0.0, "seconds_per_step": round(sps, 4),
                           "eta_seconds": round(max(0, steps - step) * sps, 3)})

    def preview(self, job_id: str, step: int, image: str) -> None:
        """Publish a step preview (a data URL), and keep it as the job's latest while the job runs."""
        with self._cond:
            if job_id in self._running:
                self._previews[job_id] = (step, image)
        self._bus.publish({"type": "preview", "job_id": job_id, "step": step, "image": image})

    def finish(self, job_id: str, status: str, *, outputs: Sequence[str] = (), result: dict[str, Any] | None = None,
               error: str | None = None, seconds: float = 0.0) -> None:
        """Record a job's outcome and publish it."""
        worker = self._release(job_id)
        job = self._store.get(job_id)
        if job is not None:
            for hook in self._finish_hooks:
                hook(job, status, result or {})
        finished = self._store.finish(job_id, status, outputs=outputs, result=result, error=error)
        if finished is None:  # already final (a cancel of a queued job raced the claim)
            return
        self._metrics.inc("jobs_total", kind=finished.kind, status=status)
        self._metrics.observe("job_seconds", seconds, kind=finished.kind)
        if status == FAILED:
            self._metrics.inc("errors_total", kind=finished.kind)
        self._bus.publish({"type": "state", "job_id": job_id, "status": status, "error": error,
                           "outputs": list(outputs), "seconds": round(seconds, 3), "result": finished.result,
                           "kind": finished.kind, "worker": worker})

    def requeue(self, job_id: str, reason: str) -> None:
        """A job interrupted by no fault of its own: back in the queue while its attempts are under the limit
        (and re-queuing is configured), failed with ``reason`` otherwise."""
        self._release(job_id)
        job = self._store.get(job_id)
        if job is None or job.status != RUNNING:
            return
        if self.requeue_interrupted and job.attempts < self.max_attempts and self._store.requeue(job_id):
            self._bus.publish({"type": "state", "job_id": job_id, "status": QUEUED, "reason": reason})
            with self._cond:
                self._cond.notify()
            return
        if self.requeue_interrupted:
            reason = f"{reason}; not run again after {job.attempts} attempt(s)"
        if self._store.finish(job_id, FAILED, error=f"interrupted: {reason}") is not None:
            self._metrics.inc("jobs_total", kind=job.kind, status=FAILED)
            self._bus.publish({"type": "state", "job_id": job_id, "status": FAILED, "error": f"interrupted: {reason}"})

    def hand_back(self, job_id: str, reason: str) -> None:
        """A job claimed for a worker it never reached (the broker went away, not the job's fault): back in the
        queue at its place, the attempt not counted."""
        self._release(job_id)
        if self._store.unclaim(job_id):
            self._bus.publish({"type": "state", "job_id": job_id, "status": QUEUED, "reason": reason})
            with self._cond:
                self._cond.notify()

    def report(self, worker: str, info: dict[str, Any]) -> None:
        """A worker's news: ``alive``, ``pid``, ``device``, ``host``, ``capabilities``, ``loaded``, ``restarts``,
        ``last_exit``, or a model ``change`` (``loaded``/``unloaded``/``load_failed``) with its details."""
        info = dict(info)
        change = info.pop("change", None)
        with self._cond:
            current = self._workers.setdefault(worker, WorkerInfo(worker))
            for key, value in info.items():
                if hasattr(current, key) and key != "name":
                    setattr(current, key, value)
            if info.get("alive") is False:
                current.current_job = None
            capable = bool(current.capabilities)
        if capable:
            self._capable.set()
        if change is not None:
            kind = str(info.get("kind", "diffusion"))
            if change == "loaded":
                self._metrics.inc("model_loads_total", kind=kind)
                self._metrics.observe("model_load_seconds", float(info.get("seconds", 0.0)))
            elif change == "unloaded":
                self._metrics.inc("model_unloads_total", kind=kind)
            elif change == "load_failed":
                self._metrics.inc("model_load_errors_total")
            files = {k: relative_paths(v, self.roots) for k, v in dict(info.get("files") or {}).items()}
            self._bus.publish({"type": "model", "job_id": None, "change": change, "worker": worker, "files": files,
                               **{k: v for k, v in info.items() if k in ("kind", "seconds")},
                               **({"error": relative_paths(str(info["error"]), self.roots)} if "error" in info else {})})

    def forget(self, worker: str) -> None:
        """Drop ``worker`` from the list (a remote worker that left): it no longer counts as a dead one."""
        with self._cond:
            self._workers.pop(worker, None)
            self._controls.pop(worker, None)

    def controls(self, worker: str, timeout: float) -> Control | None:
        """The next control message for ``worker``; None after ``timeout`` seconds."""
        try:
            return self._control_queue(worker).get(timeout=timeout)
        except stdqueue.Empty:
            return None

    def reply(self, worker: str, control_id: int, result: dict[str, Any]) -> None:
        """A worker's answer to control message ``control_id``."""
        with self._cond:
            pending = self._pending.get(control_id)
            if pending is None:
                return
            pending.replies.append({"worker": worker, **result})
            if len(pending.replies) >= pending.expected:
                pending.done.set()

    # -- lifecycle ------------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """After a start: jobs a stop or crash left running go back to the queue (under the attempt limit)
        or fail with the reason. Returns their ids."""
        return self._store.recover_interrupted(self.requeue_interrupted, self.max_attempts)

    def close(self) -> None:
        """No more jobs are handed out; waiting takers return at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stop_workers(self) -> None:
        """Tell every worker to stop (its running job is handed back with :meth:`requeue`)."""
        with self._cond:
            names = list(self._workers)
        for name in names:
            self._send(name, Control(STOP))

    def publish(self, event: Event) -> None:
        """Publish an event of the embedded engine itself (not of a job)."""
        self._bus.publish(event)

    def add_control_route(self, route: ControlRoute) -> None:
        """Deliver control messages through ``route(worker, control)`` when it returns True (a worker the
        route reaches, on another host); the others go to the worker's local control queue."""
        self._routes.append(route)

    def _send(self, worker: str, control: Control) -> None:
        if any(route(worker, control) for route in self._routes):
            return
        self._control_queue(worker).put(control)

    def _control_queue(self, worker: str) -> stdqueue.Queue[Control]:
        with self._cond:
            return self._controls.setdefault(worker, stdqueue.Queue())

    def _release(self, job_id: str) -> str | None:
        """Forget ``job_id`` as running; returns the worker that ran it."""
        with self._cond:
            worker = self._running.pop(job_id, None)
            self._started.pop(job_id, None)
            self._last_step.pop(job_id, None)
            self._previews.pop(job_id, None)
            if worker in self._workers and self._workers[worker].current_job == job_id:
                self._workers[worker].current_job = None
        return worker


__all__ = ["CANCEL", "LOAD", "STOP", "UNLOAD", "Control", "ControlTimeout", "JobQueue", "LocalQueue",
           "QueueFull", "WorkerInfo", "WorkerQueue"]
