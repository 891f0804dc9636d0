"""The queue as a worker process sees it: :class:`WorkerQueue` calls sent over a connection to its supervisor.

Messages are tuples, pickled by :mod:`multiprocessing.connection`. Only job records, paths, events and
control messages cross; images are files the worker writes into the data dir itself.

From the worker: ``("take", timeout)`` (answered by ``("job", Job | None)``), ``("progress", job_id, step,
steps, phase, seconds_per_step)``, ``("preview", job_id, step, data_url)``, ``("finish", job_id, status,
outputs, result, error, seconds)``, ``("requeue", job_id, reason)``, ``("report", info)``,
``("reply", control_id, result)``. To the worker: ``("job", ...)`` and ``("control", Control)``.
"""

from __future__ import annotations

import queue as stdqueue
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from sdrest.jobs.queue import Control
from sdrest.jobs.store import Job


class ChannelQueue:
    """A :class:`~sdrest.jobs.queue.WorkerQueue` whose other end is the supervising process.

    ``on_lost()`` is called (from the reader thread) when the connection ends: the supervisor is gone,
    and a worker nobody listens to must not go on holding a device.
    """

    def __init__(self, conn: Connection, on_lost: Callable[[], None]) -> None:
        self._conn = conn
        self._on_lost = on_lost
        self._send_lock = threading.Lock()
        self._jobs: stdqueue.Queue[Job | None] = stdqueue.Queue()
        self._controls: stdqueue.Queue[Control] = stdqueue.Queue()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, name="sdrest-channel", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                if not self._closed.is_set():
                    self._on_lost()
                return
            if message[0] == "job":
                self._jobs.put(message[1])
            elif message[0] == "control":
                self._controls.put(message[1])

    def _send(self, *message: Any) -> None:
        try:
            with self._send_lock:
                self._conn.send(message)
        except (OSError, ValueError):
            if not self._closed.is_set():
                self._on_lost()

    def close(self) -> None:
        """End the connection (the worker is done): not a lost supervisor."""
        self._closed.set()
        self._conn.close()

    def take(self, worker: str, timeout: float) -> Job | None:
        """Ask the supervisor for a job; it answers within ``timeout`` (None when none waits)."""
        self._send("take", timeout)
        return self._jobs.get()

    def progress(self, job_id: str, step: int, steps: int, phase: str, seconds_per_step: float) -> None:
        """Report a step."""
        self._send("progress", job_id, step, steps, phase, seconds_per_step)

    def preview(self, job_id: str, step: int, image: str) -> None:
        """Report a preview (a data URL)."""
        self._send("preview", job_id, step, image)

    def finish(self, job_id: str, status: str, *, outputs: Sequence[str] = (), result: dict[str, Any] | None = None,
               error: str | None = None, seconds: float = 0.0) -> None:
        """Report a job's outcome (its files are already in the data dir)."""
        self._send("finish", job_id, status, list(outputs), result or {}, error, seconds)

    def requeue(self, job_id: str, reason: str) -> None:
        """Hand a job back, interrupted by no fault of its own."""
        self._send("requeue", job_id, reason)

    def report(self, worker: str, info: dict[str, Any]) -> None:
        """Report what this worker is and holds."""
        self._send("report", info)

    def controls(self, worker: str, timeout: float) -> Control | None:
        """The next control message from the supervisor; None after ``timeout`` seconds."""
        try:
            return self._controls.get(timeout=timeout)
        except stdqueue.Empty:
            return None

    def reply(self, worker: str, control_id: int, result: dict[str, Any]) -> None:
        """Answer control message ``control_id``."""
        self._send("reply", control_id, result)
