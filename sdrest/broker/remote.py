"""The queue as a worker on another host sees it: :class:`RemoteQueue`, a :class:`~sdrest.jobs.queue.WorkerQueue`
over Redis, shared by the supervised worker processes of one ``sdrest worker``.

A job taken here is leased: the entry stays pending in the worker's inbox, and a thread renews it (resetting
its idle time) while the job runs. A worker that stops renewing (killed, frozen, cut off) has its job
reclaimed by the API node, and a lease found lost here cancels the job, whose answer the API node drops
anyway: it only accepts answers of the run (the one dispatch) it sent last.
"""

from __future__ import annotations

import base64
import collections
import logging
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import redis

from sdrest.broker.wire import (
    EVENTS_MAXLEN,
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
from sdrest.jobs.queue import CANCEL, Control
from sdrest.jobs.store import RUNNING, Job

log = logging.getLogger("sdrest.broker")


class _Lease:
    """A job this host runs: its inbox entry, its attempt and run (the dispatch it came with), and whether the
    lease was lost."""

    def __init__(self, worker: str, entry_id: str, attempt: int, run: str) -> None:
        self.worker = worker
        self.entry_id = entry_id
        self.attempt = attempt
        self.run = run
        self.lost = False


def available_memory_mb() -> int:
    """Physical memory free for new work, in MiB (0 where the system does not say)."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20)
    except (ValueError, OSError, AttributeError):
        return 0


class RemoteQueue:
    """The workers of this host, reaching the API node through Redis.

    ``scratch`` is this host's own data dir (the worker processes write outputs there). With ``shared_dir``
    (the API node's data dir, mounted here) inputs are read from it and outputs are staged into it; without,
    both travel through Redis. Paths under ``models_dir`` cross hosts relative to it.
    """

    def __init__(self, client: redis.Redis, keys: Keys, *, scratch: Path, models_dir: Path | None,
                 shared_dir: Path | None = None, lease_seconds: float = 30.0, host: str | None = None) -> None:
        self.client = client
        self.keys = keys
        self.scratch = scratch
        self.models_prefix = folder_prefix(models_dir)
        self.shared_dir = shared_dir
        self.lease_seconds = lease_seconds
        self.host = host or socket.gethostname()
        self._lock = threading.Lock()
        self._leases: dict[str, _Lease] = {}
        self._snapshots: dict[str, dict[str, Any]] = {}
        self._capabilities: dict[str, str] = {}  # worker -> what its build offers (kept in Redis by the heartbeat)
        self._local_controls: dict[str, collections.deque[Control]] = collections.defaultdict(collections.deque)
        self._early_cancels: dict[str, set[tuple[str, str]]] = collections.defaultdict(set)  # (job, run)
        self._groups: set[str] = set()
        self._stopping = threading.Event()
        self._complaints = Complaints(log)
        self._beats = threading.Thread(target=self._beat_loop, name="sdrest-broker-heartbeat", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, workers: list[str]) -> None:
        """Announce ``workers`` (clearing what a previous life of the same names left) and start the heartbeat."""
        for worker in workers:
            self._snapshots[worker] = {"name": worker, "host": self.host, "alive": False, "loaded": [], "job": None,
                                       "attempt": None, "shared": self.shared_dir is not None}
            self._complaints.call(lambda w=worker: self.client.delete(self.keys.inbox(w), self.keys.control(w)))
            self._groups.discard(self.keys.inbox(worker))
            self._beat(worker)
        self._beats.start()

    def close(self) -> None:
        """Stop the heartbeat and say these workers are gone (the API node stops dispatching to them at once)."""
        self._stopping.set()
        if self._beats.ident is not None:
            self._beats.join(5)
        with self._lock:
            names = list(self._snapshots)
        for worker in names:
            self._complaints.call(lambda w=worker: self.client.delete(self.keys.heartbeat(w)))

    # -- the worker side of the queue -----------------------------------------------------------

    def take(self, worker: str, timeout: float) -> Job | None:
        """The job dispatched to ``worker``, leased; None after ``timeout`` seconds."""
        inbox = self.keys.inbox(worker)
        try:
            self._ensure_group(inbox)
            found = self.client.xreadgroup(WORKER_GROUP, worker, {inbox: ">"}, count=1,
                                           block=max(1, int(timeout * 1000)))
        except redis.ResponseError as exc:  # the inbox went away (an API node or Redis restart): make it again
            self._groups.discard(inbox)
            if "NOGROUP" not in str(exc):
                self._complaints.say(f"reading {inbox}: {exc}")
            return None
        except UNREACHABLE as exc:
            self._complaints.say(f"Redis is unreachable: {exc}")
            self._stopping.wait(timeout)
            return None
        if not found:
            return None
        entry_id, fields = found[0][1][0]
        record = loads(fields.get("job", ""))
        try:
            job = Job(id=str(record["id"]), kind=str(record["kind"]),
                      params=relocate(record["params"], MODELS, self.models_prefix), status=RUNNING,
                      owner=record.get("owner"), attempts=int(record["attempt"]))
            self._receive_inputs(job.id, record)
        except (KeyError, TypeError, ValueError, OSError) as exc:
            log.error("%s: a job it cannot take (%s: %s)", worker, type(exc).__name__, exc)
            if "id" in record and "attempt" in record:  # its outcome, so the API node does not wait for it
                self._send_event("finish", worker, job_id=str(record["id"]), attempt=record["attempt"],
                                 run=record.get("run"), status="failed", outputs=[], result={}, seconds=0.0,
                                 error=f"the worker could not take the job: {type(exc).__name__}: {exc}")
            self._complaints.call(lambda: settle(self.client, inbox, WORKER_GROUP, entry_id))
            return None
        run = str(record.get("run", ""))
        with self._lock:
            self._leases[job.id] = _Lease(worker, entry_id, job.attempts, run)
            self._snapshots[worker].update(job=job.id, attempt=job.attempts)
            if (job.id, run) in self._early_cancels[worker]:
                self._local_controls[worker].append(Control(CANCEL, {"job_id": job.id}))
            self._early_cancels[worker].clear()  # the others were for runs that will not come here
        self._beat(worker)
        return job

    def progress(self, job_id: str, step: int, steps: int, phase: str, seconds_per_step: float) -> None:
        """Report a step."""
        self._job_event(job_id, "progress", step=step, steps=steps, phase=phase, seconds_per_step=seconds_per_step)

    def preview(self, job_id: str, step: int, image: str) -> None:
        """Report a step preview (a data URL)."""
        self._job_event(job_id, "preview", step=step, image=image)

    def finish(self, job_id: str, status: str, *, outputs: Any = (), result: dict[str, Any] | None = None,
               error: str | None = None, seconds: float = 0.0) -> None:
        """Report a job's outcome with its files (staged in the shared dir, or in the record), and release it."""
        lease = self._release(job_id)
        if lease is None:
            return
        record: dict[str, Any] = {"status": status, "outputs": list(outputs), "result": result or {},
                                  "error": error, "seconds": seconds}
        if not lease.lost:
            try:
                record.update(self._ship_outputs(job_id, lease.run, list(outputs)))
            except OSError as exc:
                record.update(status="failed", outputs=[], error=f"the outputs could not be sent: {exc}")
        self._send_event("finish", lease.worker, job_id=job_id, attempt=lease.attempt, run=lease.run, **record)
        self._done(job_id, lease)

    def requeue(self, job_id: str, reason: str) -> None:
        """Hand a job back, interrupted by no fault of its own (this worker stops)."""
        lease = self._release(job_id)
        if lease is not None:
            self._send_event("requeue", lease.worker, job_id=job_id, attempt=lease.attempt, run=lease.run,
                             reason=reason)
            self._done(job_id, lease)

    def report(self, worker: str, info: dict[str, Any]) -> None:
        """Record what ``worker`` is and holds; the API node hears of it at once and through the heartbeat."""
        info = dict(info)
        if "host" in info:  # the worker process says "process"; the API node is told which host
            info["host"] = self.host
        capabilities = info.pop("capabilities", None)
        if capabilities is not None:
            with self._lock:
                self._capabilities[worker] = dumps(capabilities)
            info["ready"] = True
        info = relocate(info, self.models_prefix, MODELS) if self.models_prefix else info
        with self._lock:
            snapshot = self._snapshots.setdefault(worker, {"name": worker, "host": self.host})
            snapshot.update({k: v for k, v in info.items()
                             if k not in ("change", "files", "kind", "seconds", "error", "host")})
            if info.get("alive") is False:
                snapshot["ready"] = False
        self._beat(worker)
        self._send_event("report", worker, info=info)

    def controls(self, worker: str, timeout: float) -> Control | None:
        """The next control message for ``worker`` (a cancel of a job whose lease was lost comes first)."""
        with self._lock:
            if self._local_controls[worker]:
                return self._local_controls[worker].popleft()
        try:
            found = self.client.blpop([self.keys.control(worker)], timeout=max(0.01, timeout))
        except UNREACHABLE as exc:
            self._complaints.say(f"Redis is unreachable: {exc}")
            self._stopping.wait(timeout)
            return None
        if not found:
            return None
        record = loads(found[1])
        args = relocate(dict(record.get("args") or {}), MODELS, self.models_prefix)
        control = Control(str(record.get("action", "")), args, int(record.get("id") or 0))
        return control if self._for_this_run(worker, control) else None

    def _for_this_run(self, worker: str, control: Control) -> bool:
        """False for a cancel of a run this worker does not run: it must not stop a later run of the same job.
        A cancel of a run not yet taken here waits for it (the job was dispatched, then cancelled)."""
        if control.action != CANCEL or "run" not in control.args:
            return True
        job_id, run = str(control.args.get("job_id")), str(control.args["run"])
        with self._lock:
            lease = self._leases.get(job_id)
            if lease is None:
                self._early_cancels[worker].add((job_id, run))
                return False
        return lease.run == run

    def reply(self, worker: str, control_id: int, result: dict[str, Any]) -> None:
        """Answer control message ``control_id``."""
        self._send_event("reply", worker, control_id=control_id, result=result)

    # -- inputs and outputs ---------------------------------------------------------------------

    def _receive_inputs(self, job_id: str, record: dict[str, Any]) -> None:
        folder = self.scratch / "inputs" / job_id
        shutil.rmtree(folder, ignore_errors=True)
        if self.shared_dir is not None and (self.shared_dir / "inputs" / job_id).is_dir():
            shutil.copytree(self.shared_dir / "inputs" / job_id, folder)
            return
        files = dict(record.get("inputs") or {})
        if files:
            folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / Path(name).name).write_bytes(base64.b64decode(data))

    def _ship_outputs(self, job_id: str, run: str, outputs: list[str]) -> dict[str, Any]:
        folder = self.scratch / "outputs" / job_id
        if self.shared_dir is not None:
            staged = self.shared_dir / "staging" / f"{job_id}.{run}"
            shutil.rmtree(staged, ignore_errors=True)
            staged.mkdir(parents=True)
            for name in outputs:
                shutil.copy2(folder / name, staged / name)
            return {"staged": f"{job_id}.{run}"}
        return {"files": {name: base64.b64encode((folder / name).read_bytes()).decode("ascii") for name in outputs}}

    # -- leases and heartbeats ------------------------------------------------------------------

    def _release(self, job_id: str) -> _Lease | None:
        with self._lock:
            lease = self._leases.pop(job_id, None)
            if lease is not None:
                self._snapshots[lease.worker].update(job=None, attempt=None)
        return lease

    def _done(self, job_id: str, lease: _Lease) -> None:
        """The entry is answered: acknowledge and delete it, clear the scratch folders, say the worker is free."""
        inbox = self.keys.inbox(lease.worker)
        self._complaints.call(lambda: settle(self.client, inbox, WORKER_GROUP, lease.entry_id))
        for folder in ("inputs", "outputs"):
            shutil.rmtree(self.scratch / folder / job_id, ignore_errors=True)
        self._beat(lease.worker)

    def _beat_loop(self) -> None:
        while not self._stopping.wait(self.lease_seconds / 4):
            with self._lock:
                names, leases = list(self._snapshots), dict(self._leases)
            for job_id, lease in leases.items():
                if not lease.lost:
                    self._renew(job_id, lease)
            for worker in names:
                self._beat(worker)

    def _renew(self, job_id: str, lease: _Lease) -> None:
        """Reset the entry's idle time; a lease found lost cancels its job here."""
        try:
            kept = self.client.xclaim(self.keys.inbox(lease.worker), WORKER_GROUP, lease.worker, 0,
                                      [lease.entry_id], justid=True)
        except UNREACHABLE as exc:
            self._complaints.say(f"cannot renew the lease of job {job_id}: {exc}")
            return
        except redis.ResponseError:
            kept = []
        if kept:
            return
        log.warning("%s: the lease of job %s (attempt %d) was lost; stopping it", lease.worker, job_id, lease.attempt)
        with self._lock:
            lease.lost = True
            self._local_controls[lease.worker].append(Control(CANCEL, {"job_id": job_id}))

    def _beat(self, worker: str) -> None:
        """Write ``worker``'s heartbeat (and its capabilities: a Redis restart must not lose them)."""
        with self._lock:
            record = dict(self._snapshots.get(worker) or {})
            capabilities = self._capabilities.get(worker)
        if not record:
            return
        record.update(memory_available_mb=available_memory_mb(), beat_at=time.time())
        ttl = int(self.lease_seconds * 1000)
        pipe = self.client.pipeline()
        if capabilities is not None:  # written first: a heartbeat that says ready finds them
            pipe.set(self.keys.capabilities(worker), capabilities, px=4 * ttl)
        pipe.set(self.keys.heartbeat(worker), dumps(record), px=ttl).sadd(self.keys.workers, worker)
        self._complaints.call(pipe.execute)

    # -- sending ----------------------------------------------------------------------------------

    def _job_event(self, job_id: str, op: str, **fields: Any) -> None:
        with self._lock:
            lease = self._leases.get(job_id)
        if lease is not None and not lease.lost:
            self._send_event(op, lease.worker, job_id=job_id, attempt=lease.attempt, run=lease.run, **fields)

    def _send_event(self, op: str, worker: str, **fields: Any) -> None:
        record = dumps({"op": op, "worker": worker, **fields})
        self._complaints.call(lambda: self.client.xadd(self.keys.events, {"e": record}, maxlen=EVENTS_MAXLEN,
                                                       approximate=True))

    def _ensure_group(self, stream: str) -> None:
        if stream in self._groups:
            return
        create_group(self.client, stream, WORKER_GROUP, "0")
        self._groups.add(stream)
