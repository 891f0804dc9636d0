"""The API node's side of the broker: :class:`Dispatcher` hands jobs from the SQLite queue to workers on other
hosts through Redis, and feeds what they report back into that queue (so SSE, ``/api/queue/*`` and the
metrics see remote jobs exactly like local ones).

Three threads:

- **dispatch**: for the free workers (a live heartbeat, ready, nothing in flight here), claims the next job
  in queue order, placed by :mod:`sdrest.jobs.placement`, and adds it to the chosen worker's inbox;
- **events**: reads the workers' reports; an answer is accepted only from the worker and the run (one dispatch,
  named by a random token) the job was dispatched to last, so a late answer of a worker presumed dead, or of a
  run the broker lost, is dropped (and the job is reported finished once, its outputs written once);
- **watch**: reads heartbeats (workers come and go), and reclaims the job of a worker whose lease lapsed
  (``XAUTOCLAIM``) or whose heartbeat stopped: it runs again elsewhere, up to ``max_attempts`` in all.

A Redis restart loses only work in flight: jobs dispatched then are handed back to the queue (not counted
as attempts) and dispatched again.
"""

from __future__ import annotations

import base64
import logging
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from sdrest.broker.wire import (
    API_GROUP,
    MODELS,
    UNREACHABLE,
    WORKER_GROUP,
    Complaints,
    Keys,
    create_group,
    dumps,
    folder_prefix,
    loads,
    relocate,
    settle,
)
from sdrest.jobs.queue import CANCEL, Control, LocalQueue
from sdrest.jobs.store import FAILED, Job

log = logging.getLogger("sdrest.broker")


@dataclass
class Flight:
    """A job in flight on a remote worker: who runs it, which attempt, since when. ``run`` names this one
    dispatch: an attempt the broker lost is sent again under the same attempt number (it is not counted), so
    only the run tells a late answer of the lost dispatch from one of the new."""

    worker: str
    attempt: int
    run: str = field(default_factory=lambda: secrets.token_hex(6))
    sent_at: float = field(default_factory=time.monotonic)


@dataclass
class Remote:
    """What the API node knows of one remote worker (from its heartbeat)."""

    name: str
    record: dict[str, Any]
    ready: bool = False
    shared: bool = False
    missing_since: float | None = None  # when its heartbeat was first found missing


class Dispatcher:
    """Dispatches ``queue``'s jobs to the workers behind Redis at ``client``.

    ``models_dir`` and ``data_dir`` are this node's: model paths cross hosts relative to the first; inputs and
    outputs of workers that share the second are read and staged there, the others' travel through Redis.
    """

    def __init__(self, queue: LocalQueue, client: redis.Redis, keys: Keys, *, data_dir: Path,
                 models_dir: Path | None, lease_seconds: float = 30.0) -> None:
        self.queue = queue
        self.client = client
        self.keys = keys
        self.data_dir = data_dir
        self.models_prefix = folder_prefix(models_dir)
        self.lease_seconds = lease_seconds
        self._lock = threading.Lock()
        self._flights: dict[str, Flight] = {}
        self._remotes: dict[str, Remote] = {}
        self._stale_cancelled: set[tuple[str, str]] = set()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._complaints = Complaints(log)
        self._threads = [threading.Thread(target=target, name=f"sdrest-broker-{name}", daemon=True)
                         for name, target in (("dispatch", self._dispatch_loop), ("events", self._events_loop),
                                              ("watch", self._watch_loop))]

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Drop the work in flight a previous life of this node left in Redis (the store re-queued those jobs
        already) and start the threads."""
        try:
            for name in self.client.smembers(self.keys.workers):
                self.client.delete(self.keys.inbox(name))
            self._ensure_events_group()
        except UNREACHABLE as exc:
            log.warning("the broker is unreachable for now (%s); jobs wait until it answers", exc)
        self.queue.add_control_route(self._route)
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop dispatching; the jobs in flight are told to stop (the store re-queues them at the next start)."""
        self._stopping.set()
        self._wake.set()
        with self._lock:
            flights = dict(self._flights)
        for job_id, flight in flights.items():
            self._push_control(flight.worker, _cancel(job_id, flight))
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(5)

    def in_flight(self) -> dict[str, Flight]:
        """The jobs on remote workers now, by id."""
        with self._lock:
            return dict(self._flights)

    # -- dispatching ----------------------------------------------------------------------------

    def _free(self) -> list[str]:
        with self._lock:
            busy = {flight.worker for flight in self._flights.values()}
            return sorted(name for name, remote in self._remotes.items()
                          if remote.ready and name not in busy and remote.record.get("alive", True))

    def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            free = self._free()
            if not free:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            taken = self.queue.dispatch(free, 0.5)
            if taken is None:
                continue
            job, worker = taken
            flight = Flight(worker, job.attempts)
            with self._lock:
                self._flights[job.id] = flight
            try:
                self._send_job(job, worker, flight.run)
            except (*UNREACHABLE, OSError) as exc:
                with self._lock:
                    self._flights.pop(job.id, None)
                self._complaints.say(f"could not dispatch job {job.id} to {worker}: {exc}")
                self.queue.hand_back(job.id, "the broker is unreachable")
                self._stopping.wait(1.0)

    def _send_job(self, job: Job, worker: str, run: str) -> None:
        record: dict[str, Any] = {"id": job.id, "kind": job.kind, "owner": job.owner, "attempt": job.attempts,
                                  "run": run, "params": relocate(job.params, self.models_prefix, MODELS)}
        with self._lock:
            shared = self._remotes[worker].shared if worker in self._remotes else False
        folder = self.data_dir / "inputs" / job.id
        if not shared and folder.is_dir():
            record["inputs"] = {p.name: base64.b64encode(p.read_bytes()).decode("ascii")
                                for p in sorted(folder.iterdir()) if p.is_file()}
        inbox = self.keys.inbox(worker)
        pipe = self.client.pipeline(transaction=False)
        # the group first (a no-op when it exists): an inbox without one would read as lost to the lease check
        pipe.xgroup_create(inbox, WORKER_GROUP, id="0", mkstream=True).xadd(inbox, {"job": dumps(record)})
        _, added = pipe.execute(raise_on_error=False)
        if isinstance(added, Exception):
            raise added
        log.debug("job %s (attempt %d) dispatched to %s", job.id, job.attempts, worker)

    def _route(self, worker: str, control: Control) -> bool:
        """The queue's control route: messages for remote workers go to their control list (never a stop:
        the API node does not stop other hosts' workers)."""
        with self._lock:
            remote = worker in self._remotes
            flight = self._flights.get(str(control.args.get("job_id")))
        if remote and control.action == CANCEL and flight is not None and flight.worker == worker:
            control = Control(CANCEL, {**control.args, **_cancel(str(control.args.get("job_id")), flight).args},
                              control.id)  # this run only, never a later one
        if remote and control.action != "stop":
            self._push_control(worker, control)
        return remote

    def _push_control(self, worker: str, control: Control) -> None:
        key = self.keys.control(worker)
        args = relocate(control.args, self.models_prefix, MODELS)  # a model to load or unload: under its models dir
        record = dumps({"action": control.action, "args": args, "id": control.id})
        self._complaints.call(lambda: self.client.pipeline().rpush(key, record).expire(key, 300).execute())

    # -- what workers report --------------------------------------------------------------------

    def _ensure_events_group(self) -> None:
        create_group(self.client, self.keys.events, API_GROUP, "$")

    def _events_loop(self) -> None:
        backlog = True  # first what was delivered but not acknowledged before a restart
        while not self._stopping.is_set():
            try:
                found = self.client.xreadgroup(API_GROUP, "api", {self.keys.events: "0" if backlog else ">"},
                                               count=200, block=500)
            except redis.ResponseError as exc:  # the group went away (a Redis restart)
                self._complaints.say(f"reading the events: {exc}")
                self._complaints.call(self._ensure_events_group)
                self._stopping.wait(0.2)
                continue
            except UNREACHABLE as exc:
                self._complaints.say(f"the broker is unreachable: {exc}")
                self._stopping.wait(1.0)
                continue
            entries = found[0][1] if found else []
            if backlog and not entries:
                backlog = False
            for entry_id, fields in entries:
                try:
                    self._handle(loads(fields.get("e", "")))
                except Exception:
                    log.exception("an event from the broker could not be handled")
                self._complaints.call(lambda e=entry_id: settle(self.client, self.keys.events, API_GROUP, e))

    def _handle(self, event: dict[str, Any]) -> None:
        op, worker = event.get("op"), str(event.get("worker", ""))
        if op == "report":
            with self._lock:
                known = worker in self._remotes
            if not known:  # a worker that just joined: read its heartbeat now, not at the next watch
                self._read_heartbeats()
            info = relocate(dict(event.get("info") or {}), MODELS, self.models_prefix)
            if info.pop("ready", False):
                self._learn_capabilities(worker)
            self.queue.report(worker, info)
            return
        if op == "reply":
            self.queue.reply(worker, int(event.get("control_id") or 0), dict(event.get("result") or {}))
            return
        job_id, attempt, run = str(event.get("job_id", "")), int(event.get("attempt") or 0), str(event.get("run", ""))
        with self._lock:
            flight = self._flights.get(job_id)
            current = flight is not None and flight.worker == worker and flight.run == run
            if current and op in ("finish", "requeue"):
                del self._flights[job_id]
        if not current:
            self._drop_stale(op, worker, job_id, attempt, run, event)
            return
        if op == "progress":
            self.queue.progress(job_id, int(event["step"]), int(event["steps"]), str(event.get("phase") or ""),
                                float(event.get("seconds_per_step") or 0.0))
        elif op == "preview":
            self.queue.preview(job_id, int(event["step"]), str(event["image"]))
        elif op == "finish":
            status, outputs, error = str(event["status"]), list(event.get("outputs") or []), event.get("error")
            try:
                self._land_outputs(job_id, event, outputs)
            except (OSError, ValueError) as exc:
                status, outputs, error = FAILED, [], f"the outputs could not be received: {exc}"
            self.queue.finish(job_id, status, outputs=outputs, result=dict(event.get("result") or {}),
                              error=error, seconds=float(event.get("seconds") or 0.0))
            self._wake.set()
        elif op == "requeue":
            self.queue.requeue(job_id, str(event.get("reason") or "the worker stopped"))
            self._wake.set()

    def _drop_stale(self, op: Any, worker: str, job_id: str, attempt: int, run: str, event: dict[str, Any]) -> None:
        """An answer for a run this node no longer waits for: dropped; the worker is told to stop it."""
        if op == "finish":
            log.warning("dropped the late outcome of job %s attempt %d (run %s) from %s (not the run in flight)",
                        job_id, attempt, run or "?", worker)
            if event.get("staged"):
                shutil.rmtree(self.data_dir / "staging" / Path(str(event["staged"])).name, ignore_errors=True)
        elif op in ("progress", "preview") and (job_id, run) not in self._stale_cancelled:
            self._stale_cancelled.add((job_id, run))
            self._push_control(worker, Control(CANCEL, {"job_id": job_id, "attempt": attempt, "run": run}))

    def _land_outputs(self, job_id: str, event: dict[str, Any], outputs: list[str]) -> None:
        """Put a job's files into this node's outputs: moved from the staging dir, or written from the record."""
        target = self.data_dir / "outputs" / job_id
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        if event.get("staged"):
            staged = self.data_dir / "staging" / Path(str(event["staged"])).name
            for name in outputs:
                shutil.move(str(staged / Path(name).name), target / Path(name).name)
            shutil.rmtree(staged, ignore_errors=True)
            return
        files = dict(event.get("files") or {})
        for name in outputs:
            (target / Path(name).name).write_bytes(base64.b64decode(files[name]))

    def _learn_capabilities(self, worker: str) -> None:
        text = self._complaints.call(lambda: self.client.get(self.keys.capabilities(worker)))
        capabilities = loads(text) if text else {}
        with self._lock:
            remote = self._remotes.get(worker)
            if remote is not None:
                remote.ready = bool(capabilities)
        if capabilities:
            self.queue.report(worker, {"capabilities": capabilities})
            self._wake.set()

    # -- heartbeats and leases ------------------------------------------------------------------

    def _watch_loop(self) -> None:
        period = max(0.1, self.lease_seconds / 8)
        while not self._stopping.wait(period):
            try:
                self._read_heartbeats()
                self._reclaim_lapsed()
            except UNREACHABLE as exc:
                self._complaints.say(f"the broker is unreachable: {exc}")
                self._forget_all("the broker is unreachable")

    def _read_heartbeats(self) -> None:
        with self._lock:
            known = set(self._remotes)  # also those a Redis restart dropped from the set: gone unless they beat
        names = sorted(set(self.client.smembers(self.keys.workers)) | known)
        records = self.client.mget([self.keys.heartbeat(n) for n in names]) if names else []
        for name, text in zip(names, records):
            record = loads(text) if text else {}
            with self._lock:
                remote = self._remotes.get(name)
            if not record:
                # a heartbeat expires after a lease without a beat; one missing since a Redis restart comes back
                # within a quarter lease, so a worker counts as gone after half a lease more
                if remote is not None:
                    remote.missing_since = remote.missing_since or time.monotonic()
                    if time.monotonic() - remote.missing_since > self.lease_seconds / 2:
                        self._lost_worker(name, "its heartbeat stopped")
                else:  # a name a worker of an earlier life left
                    self._complaints.call(lambda n=name: self.client.srem(self.keys.workers, n))
                continue
            info = relocate({k: record[k] for k in ("alive", "pid", "device", "loaded", "restarts", "last_exit",
                                                    "started_at", "memory_available_mb") if k in record},
                            MODELS, self.models_prefix)
            info["host"] = str(record.get("host", "remote"))
            with self._lock:
                new = remote is None
                if new:
                    remote = self._remotes[name] = Remote(name, record)
                remote.record, remote.shared, remote.missing_since = record, bool(record.get("shared")), None
            self.queue.report(name, info)
            if new or (record.get("ready") and not remote.ready):
                if new:
                    log.info("worker %s on %s joined", name, info["host"])
                if record.get("ready"):
                    self._learn_capabilities(name)

    def _lost_worker(self, name: str, why: str) -> None:
        with self._lock:
            self._remotes.pop(name, None)
            jobs = [job_id for job_id, flight in self._flights.items() if flight.worker == name]
        log.warning("worker %s is gone: %s", name, why)
        for job_id in jobs:
            self._reclaim(job_id, f"its worker {name} is gone ({why})", counted=True)
        self.queue.forget(name)
        self._complaints.call(lambda: self.client.pipeline().delete(self.keys.inbox(name), self.keys.control(name))
                              .srem(self.keys.workers, name).execute())

    def _reclaim_lapsed(self) -> None:
        """Jobs whose worker stopped renewing its lease: claimed here (``XAUTOCLAIM``), then run again."""
        with self._lock:
            workers = sorted({flight.worker for flight in self._flights.values()})
        for worker in workers:
            inbox = self.keys.inbox(worker)
            try:
                _, claimed, *_ = self.client.xautoclaim(inbox, WORKER_GROUP, "api-reaper",
                                                        int(self.lease_seconds * 1000), "0-0", count=10)
            except redis.ResponseError:  # the inbox is gone: Redis lost what was in flight
                self._forget_worker_flights(worker, "the broker lost it (a Redis restart)")
                continue
            for entry_id, fields in claimed:
                settle(self.client, inbox, WORKER_GROUP, entry_id)
                record = loads((fields or {}).get("job", ""))
                job_id, run = str(record.get("id", "")), str(record.get("run", ""))
                with self._lock:
                    flight = self._flights.get(job_id)
                if flight is not None and flight.run == run:
                    self._reclaim(job_id, f"the lease of {worker} lapsed ({self.lease_seconds:g} s without renewal)",
                                  counted=True)

    def _forget_worker_flights(self, worker: str, why: str) -> None:
        with self._lock:
            jobs = [job_id for job_id, flight in self._flights.items() if flight.worker == worker]
        for job_id in jobs:
            self._reclaim(job_id, why, counted=False)

    def _forget_all(self, why: str) -> None:
        """Redis is unreachable: every remote worker counts as gone until its heartbeat is read again."""
        with self._lock:
            names = list(self._remotes)
            self._remotes.clear()
        for name in names:
            self.queue.report(name, {"alive": False, "last_exit": why})

    def _reclaim(self, job_id: str, why: str, *, counted: bool) -> None:
        """Take ``job_id`` back from its worker: queued again (``counted``: as an attempt, up to the limit)."""
        with self._lock:
            flight = self._flights.pop(job_id, None)
        if flight is None:
            return
        log.warning("job %s (attempt %d) taken back from %s: %s", job_id, flight.attempt, flight.worker, why)
        self._push_control(flight.worker, _cancel(job_id, flight))
        if counted:
            self.queue.requeue(job_id, why)
        else:
            self.queue.hand_back(job_id, why)
        self._wake.set()


def _cancel(job_id: str, flight: Flight) -> Control:
    """A cancel of ``job_id`` that stops the run ``flight`` only, never a later run of the same job."""
    return Control(CANCEL, {"job_id": job_id, "attempt": flight.attempt, "run": flight.run})
