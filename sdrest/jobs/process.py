"""Worker hosts: a supervised child process per device (the default), or a thread (tests of queue mechanics).

:class:`WorkerProcess` spawns ``python -m sdrest.jobs.child`` (a fresh interpreter: CUDA does not
survive ``fork()``), relays between the child and the queue, and supervises:

- the child's death (a signal, an abort, the OOM killer) fails the job it ran with the reason, and a
  new child starts; a death that is not the job's fault (a server stop) hands the job back instead;
- a cancelled job whose worker has not stopped within ``cancel_grace`` seconds (sd.cpp cannot stop
  inside text conditioning or VAE decode) has its worker killed and restarted;
- a job running longer than ``job_timeout`` seconds is cancelled the same way and failed;
- the child's stderr (sd.cpp's own prints, a crash's last lines) goes to the server log with its name.

The supervisor is itself a :class:`~sdrest.jobs.queue.WorkerQueue` client, so it runs the same over the
embedded queue or a broker.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

import sdrest
from sdrest.jobs.spec import WorkerSpec
from sdrest.jobs.queue import CANCEL, STOP, Control, WorkerQueue
from sdrest.jobs.store import CANCELLED, FAILED, Job
from sdrest.jobs.worker import Worker

log = logging.getLogger("sdrest.worker")

_LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+): (.*)$")
#: Seconds between watchdog checks (timeouts, grace periods); also the longest a take blocks the relay.
TICK = 0.25


def describe_exit(code: int) -> str:
    """``SIGSEGV`` for a death by signal, ``exit code 3`` otherwise."""
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def device_environment(device: str) -> dict[str, str]:
    """Environment that pins a worker to ``device`` (a GPU index), or nothing for ``default``."""
    if device == "default":
        return {}
    return {"CUDA_VISIBLE_DEVICES": device, "HIP_VISIBLE_DEVICES": device, "GGML_VK_VISIBLE_DEVICES": device}


@dataclass
class _Session:
    """One life of a child process, and the job it runs."""

    proc: subprocess.Popen[bytes]
    conn: Connection
    started: float = field(default_factory=time.monotonic)
    job: Job | None = None
    job_started: float = 0.0
    phase: str | None = None
    cancel_deadline: float | None = None
    timed_out: bool = False
    kill_reason: str | None = None
    ready: bool = False
    early_cancels: set[str] = field(default_factory=set)  # cancels that came before the job was handed over
    send_lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, *message: Any) -> bool:
        """Send to the child; False when it is gone."""
        try:
            with self.send_lock:
                self.conn.send(message)
            return True
        except (OSError, ValueError):
            return False


class WorkerProcess:
    """Runs worker ``spec.name`` in a child process, restarting it whenever it dies, until :meth:`stop`."""

    def __init__(self, spec: WorkerSpec, queue: WorkerQueue, *, cancel_grace: float = 10.0,
                 job_timeout: float = 0.0, stop_grace: float = 10.0) -> None:
        self.spec = spec
        self.name = spec.name
        self.queue = queue
        self.cancel_grace = cancel_grace
        self.job_timeout = job_timeout
        self.stop_grace = stop_grace
        self.restarts = 0
        self._stopping = threading.Event()
        self._stop_at: float | None = None
        self._lock = threading.Lock()
        self._session: _Session | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=40)
        self._thread = threading.Thread(target=self._supervise, name=f"sdrest-{self.name}-supervisor", daemon=True)
        self._controls = threading.Thread(target=self._pump_controls, name=f"sdrest-{self.name}-controls",
                                          daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the child and its supervision."""
        self._thread.start()
        self._controls.start()

    def request_stop(self) -> None:
        """Ask the child to stop (its running job is handed back); it is killed after ``stop_grace`` seconds."""
        self._begin_stop()
        with self._lock:
            session = self._session
        if session is not None:
            session.send("control", Control(STOP))

    def stop(self) -> None:
        """:meth:`request_stop`, and wait until the child has exited."""
        self.request_stop()
        if self._thread.ident is not None:
            self._thread.join(self.stop_grace + 5)
            self._controls.join(2 * TICK + 1)

    def _begin_stop(self) -> None:
        if self._stop_at is None:
            self._stop_at = time.monotonic() + self.stop_grace
        self._stopping.set()

    @property
    def alive(self) -> bool:
        """True while a child process runs."""
        with self._lock:
            return self._session is not None and self._session.proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The current child's process id."""
        with self._lock:
            return self._session.proc.pid if self._session is not None else None

    def last_lines(self) -> list[str]:
        """The last lines the worker printed (for error reports)."""
        return list(self._tail)

    def _spawn(self) -> _Session:
        parent, child = socket.socketpair()
        root = str(Path(sdrest.__file__).resolve().parents[1])
        env = {**os.environ, **device_environment(self.spec.device), "PYTHONSAFEPATH": "1",
               "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
               "PYTHONUNBUFFERED": "1"}
        try:
            proc = subprocess.Popen([sys.executable, "-m", "sdrest.jobs.child", str(child.fileno()),
                                     self.spec.to_json()], pass_fds=(child.fileno(),), env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        finally:
            child.close()
        session = _Session(proc, Connection(parent.detach()))
        assert proc.stdout is not None
        threading.Thread(target=self._relay_output, args=(proc.stdout,), name=f"sdrest-{self.name}-stderr",
                         daemon=True).start()
        return session

    def _supervise(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            session = self._spawn()
            with self._lock:
                self._session = session
            self.queue.report(self.name, {"alive": True, "pid": session.proc.pid, "device": self.spec.device,
                                          "host": "process", "started_at": time.time(), "restarts": self.restarts})
            self._serve(session)
            code = session.proc.wait()
            with self._lock:
                self._session = None
            session.conn.close()
            self._after_death(session, code)
            if self._stopping.is_set():
                break
            self.restarts += 1
            # a worker that dies before it is ready (a broken build, a bad device) must not spin
            backoff = 0.5 if session.ready else min(backoff * 2, 30.0)
            if not session.ready and self._stopping.wait(backoff):
                break

    # -- relaying ---------------------------------------------------------------------------------

    def _serve(self, session: _Session) -> None:
        """Relay the child's messages to the queue until it exits; watch its deadlines meanwhile."""
        while True:
            self._watch(session)
            try:
                if not session.conn.poll(TICK):
                    if session.proc.poll() is not None:
                        return
                    continue
                message = session.conn.recv()
            except (EOFError, OSError):
                return
            self._handle(session, message)

    def _handle(self, session: _Session, message: tuple[Any, ...]) -> None:
        op, args = message[0], message[1:]
        if op == "take":
            job = None if self._stopping.is_set() else self.queue.take(self.name, min(float(args[0]), TICK))
            if job is not None:
                session.job, session.job_started, session.phase = job, time.monotonic(), None
                session.cancel_deadline, session.timed_out = None, False
                if job.id in session.early_cancels:
                    session.early_cancels.discard(job.id)
                    session.cancel_deadline = time.monotonic() + self.cancel_grace
            session.send("job", job)
        elif op == "progress":
            session.phase = args[3]
            self.queue.progress(*args)
        elif op == "preview":
            self.queue.preview(*args)
        elif op == "finish":
            job_id, status, outputs, result, error, seconds = args
            if session.timed_out and status == CANCELLED:
                status, error = FAILED, self._timeout_message()
            self._done(session, job_id)
            self.queue.finish(job_id, status, outputs=outputs, result=result, error=error, seconds=seconds)
        elif op == "requeue":
            self._done(session, args[0])
            self.queue.requeue(args[0], args[1])
        elif op == "report":
            info = dict(args[0])
            if "capabilities" in info:
                session.ready = True
            self.queue.report(self.name, info)
        elif op == "reply":
            self.queue.reply(self.name, args[0], args[1])

    @staticmethod
    def _done(session: _Session, job_id: str) -> None:
        if session.job is not None and session.job.id == job_id:
            session.job, session.cancel_deadline, session.timed_out = None, None, False

    def _timeout_message(self) -> str:
        return f"the job exceeded its time limit of {self.job_timeout:g} s"

    def _watch(self, session: _Session) -> None:
        """Enforce the job time limit and the cancel grace period: kill the child when they pass."""
        now = time.monotonic()
        if session.job is not None and self.job_timeout > 0 and not session.timed_out \
                and now - session.job_started > self.job_timeout:
            session.timed_out = True
            session.cancel_deadline = now + self.cancel_grace
            session.send("control", Control(CANCEL, {"job_id": session.job.id}))
        if session.job is not None and session.cancel_deadline is not None and now > session.cancel_deadline \
                and session.kill_reason is None:
            session.kill_reason = "timeout" if session.timed_out else "cancel"
            log.warning("%s: job %s did not stop within %g s of its %s; killing the worker", self.name,
                        session.job.id, self.cancel_grace, "time limit" if session.timed_out else "cancel")
            session.proc.kill()
        if self._stop_at is not None and now > self._stop_at and session.kill_reason is None:
            session.kill_reason = "stop"
            log.warning("%s did not stop within %g s; killing it", self.name, self.stop_grace)
            session.proc.kill()

    def _pump_controls(self) -> None:
        """Forward the queue's control messages for this worker to the child (cancels start the grace period)."""
        while not self._stopping.is_set():
            control = self.queue.controls(self.name, TICK)
            if control is None:
                continue
            with self._lock:
                session = self._session
            if session is None:  # between two lives: nothing runs, so a cancel has nothing to stop
                if control.id:
                    self.queue.reply(self.name, control.id, {"ok": False, "error": "the worker is restarting"})
                continue
            if control.action == CANCEL and control.args.get("mode") != "new_latents":  # that one lets it run on
                job_id = str(control.args.get("job_id"))
                if session.job is not None and session.job.id == job_id:
                    session.cancel_deadline = time.monotonic() + self.cancel_grace
                else:  # claimed, not yet handed over: the grace period starts when it is
                    session.early_cancels.add(job_id)
            if control.action == STOP:
                self._begin_stop()
            if not session.send("control", control) and control.id:
                self.queue.reply(self.name, control.id, {"ok": False, "error": "the worker is restarting"})

    def _after_death(self, session: _Session, code: int) -> None:
        """Account for the job a dead child ran, and say why it died."""
        reason = describe_exit(code)
        job = session.job
        expected = session.kill_reason is not None or (self._stopping.is_set() and code == 0)
        self.queue.report(self.name, {"alive": False, "pid": None, "last_exit": reason, "loaded": [],
                                      "restarts": self.restarts + (0 if self._stopping.is_set() else 1)})
        if not expected:
            tail = "\n".join(self.last_lines()[-15:])
            log.error("%s died with %s%s%s", self.name, reason, f" running job {job.id}" if job else "",
                      f"; its last lines:\n{tail}" if tail else "")
        if job is None:
            return
        if session.kill_reason == "cancel":
            self.queue.finish(job.id, CANCELLED, error=f"cancelled; the worker did not stop within "
                                                       f"{self.cancel_grace:g} s and was restarted")
        elif session.kill_reason == "timeout":
            self.queue.finish(job.id, FAILED, error=self._timeout_message())
        elif self._stopping.is_set():
            self.queue.requeue(job.id, "the server stopped while it ran")
        else:
            during = f"during {session.phase}" if session.phase else "before its first step"
            self.queue.finish(job.id, FAILED, error=f"the worker died with {reason} {during}")

    def _relay_output(self, stream: IO[bytes]) -> None:
        """Log each line the child prints, at its own level when it is one of our log lines."""
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            self._tail.append(line)
            found = _LOG_LINE.match(line)
            if found:
                log.log(logging.getLevelName(found.group(1)), "%s %s: %s", self.name, found.group(2), found.group(3))
            else:
                log.info("%s: %s", self.name, line)
        stream.close()


class WorkerThread:
    """Runs a :class:`~sdrest.jobs.worker.Worker` on a thread of this process (tests of the queue's mechanics,
    with stand-in runners). No supervision: a thread cannot be killed, so a crash here ends the process."""

    def __init__(self, worker: Worker, queue: WorkerQueue, capabilities: dict[str, Any]) -> None:
        self.worker = worker
        self.name = worker.name
        self.queue = queue
        self.capabilities = capabilities
        self._thread = threading.Thread(target=self._run, name=f"sdrest-{self.name}", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self.queue.report(self.name, {"alive": True, "pid": os.getpid(), "host": "thread",
                                      "started_at": time.time(), "capabilities": self.capabilities, "loaded": []})
        self._thread.start()

    def _run(self) -> None:
        try:
            self.worker.run()
        finally:
            self.queue.report(self.name, {"alive": False, "loaded": []})

    def request_stop(self) -> None:
        """Ask the worker to stop (its running job is handed back)."""
        self.worker.request_stop()

    def stop(self, timeout: float = 30.0) -> None:
        """:meth:`request_stop`, and wait for the thread."""
        self.request_stop()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()
