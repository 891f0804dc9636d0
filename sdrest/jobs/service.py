"""``JobService``: the embedded engine (SQLite store, event bus, queue, metrics) and its supervised workers,
started and stopped together. The server sees only :attr:`JobService.queue`, a :class:`~sdrest.jobs.queue.JobQueue`.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sdrest.jobs.spec import WorkerSpec
from sdrest.jobs.events import EventBus
from sdrest.jobs.metrics import Metrics
from sdrest.jobs.models import ModelCache, ModelLoader
from sdrest.jobs.process import WorkerProcess, WorkerThread
from sdrest.jobs.queue import LocalQueue
from sdrest.jobs.store import JobStore
from sdrest.jobs.worker import Runner, Worker
from sdrest.models.registry import Registry

log = logging.getLogger("sdrest.jobs")


class StoppedWhileStarting(Exception):
    """A stop (Ctrl-C, SIGTERM) came before any worker was ready."""


class JobService:
    """Everything below the HTTP layer. ``start()`` recovers interrupted jobs and starts the workers.

    Workers are child processes, ``workers_per_device`` for each entry of ``devices``. ``runner`` or
    ``model_loader`` (stand-ins for the native work, in tests of the queue's mechanics) run the workers
    on threads of this process instead, since a stand-in lives here.
    """

    def __init__(self, data_dir: Path, *, devices: Sequence[str] = ("default",), workers_per_device: int = 1,
                 queue_limit: int = 100, requeue_interrupted: bool = True, max_attempts: int = 2,
                 n_threads: int | None = None, idle_unload_seconds: float = 0.0, memory_budget_mb: int = 0,
                 retention_days: float = 0.0, cancel_grace_seconds: float = 10.0, job_timeout_seconds: float = 0.0,
                 models_dir: Path | None = None, models_cache: Path | None = None, models_links: str = "follow",
                 log_level: str = "info", queue_order: str = "fair", broker: str | None = None,
                 broker_namespace: str = "sdrest", lease_seconds: float = 30.0,
                 runner: Runner | None = None, model_loader: ModelLoader | None = None,
                 registry: Registry | None = None) -> None:
        self.data_dir = data_dir
        self.outputs_dir = data_dir / "outputs"
        self.inputs_dir = data_dir / "inputs"
        self.thumbs_dir = data_dir / "thumbnails"
        for folder in (self.outputs_dir, self.inputs_dir, self.thumbs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._store = JobStore(data_dir / "jobs.sqlite3", order=queue_order)
        self.queue = LocalQueue(self._store, EventBus(), Metrics(), limit=queue_limit,
                                requeue_interrupted=requeue_interrupted, max_attempts=max_attempts,
                                roots=[p for p in (models_dir, data_dir) if p is not None])
        self.retention_days = retention_days
        self.recovered: list[str] = []
        slots = [device for device in devices for _ in range(workers_per_device)]
        self.hosts: list[WorkerProcess | WorkerThread] = []
        self.dispatcher = None
        if broker is not None:  # imported only when configured: the embedded default needs no Redis
            from sdrest.broker.dispatcher import Dispatcher
            from sdrest.broker.wire import Keys, connect

            self.dispatcher = Dispatcher(self.queue, connect(broker), Keys(broker_namespace), data_dir=data_dir,
                                         models_dir=models_dir, lease_seconds=lease_seconds)
        if runner is None and model_loader is None:
            for index, device in enumerate(slots):
                spec = WorkerSpec(f"worker-{index}", device, str(data_dir), str(models_dir) if models_dir else None,
                                  str(models_cache) if models_cache else None, n_threads, idle_unload_seconds,
                                  memory_budget_mb, models_links, log_level)
                self.hosts.append(WorkerProcess(spec, self.queue, cancel_grace=cancel_grace_seconds,
                                                job_timeout=job_timeout_seconds, stop_grace=cancel_grace_seconds))
            return
        from sdrest.jobs.spec import capabilities
        from sdrest.jobs.tasks import run_task

        found = capabilities()
        for index in range(len(slots)):
            models = ModelCache(n_threads=n_threads, idle_seconds=idle_unload_seconds,
                                memory_budget_mb=memory_budget_mb, loader=model_loader)
            worker = Worker(f"worker-{index}", self.queue, models, outputs_dir=self.outputs_dir,
                            inputs_dir=self.inputs_dir, registry=registry, runner=runner or run_task,
                            roots=[p for p in (models_dir, data_dir) if p is not None])
            self.hosts.append(WorkerThread(worker, self.queue, found))

    def start(self) -> None:
        """Recover jobs a stop or crash left running, apply retention, start the workers."""
        self.recovered = self.queue.recover()
        for job_id in self.recovered:  # a re-queued job starts from scratch
            shutil.rmtree(self.outputs_dir / job_id, ignore_errors=True)
        if self.recovered:
            log.warning("%d job(s) interrupted by the last stop were re-queued or failed", len(self.recovered))
        self.apply_retention()
        if self.dispatcher is not None:
            self.dispatcher.start()
        for host in self.hosts:
            host.start()

    def wait_ready(self, timeout: float, stop: threading.Event | None = None) -> dict[str, Any]:
        """The capabilities the first worker reports (sampler, scheduler and type names, versions).

        Raises RuntimeError with the worker's last lines when none is ready within ``timeout`` seconds,
        or as soon as every worker process has failed to start three times. With a broker and no local
        worker it waits for the first worker to join, however long that takes. Raises
        :class:`StoppedWhileStarting` once ``stop`` is set.
        """
        deadline = time.monotonic() + timeout
        processes = [h for h in self.hosts if isinstance(h, WorkerProcess)]
        remote_only = self.dispatcher is not None and not self.hosts
        said = time.monotonic()
        while True:
            found = self.queue.capabilities(timeout=0.25)
            if found:
                return found
            if stop is not None and stop.is_set():
                raise StoppedWhileStarting("stopped before any worker was ready")
            if remote_only:
                if time.monotonic() - said > 30:
                    said = time.monotonic()
                    log.warning("waiting for a worker to join through the broker (sdrest worker --broker ...)")
                continue
            hopeless = bool(processes) and all(h.restarts >= 3 for h in processes)
            if hopeless or time.monotonic() > deadline:
                message = "no worker process became ready"
                lines = processes[0].last_lines()[-20:] if processes else []
                if lines:
                    message += f"; the last lines of {processes[0].name}:\n" + "\n".join(lines)
                raise RuntimeError(message)

    def stop(self) -> None:
        """Stop handing out jobs, stop the workers (a running job is handed back), close the store.

        When this returns no job is left ``running``.
        """
        self.queue.close()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        for host in self.hosts:  # all at once: each may take its grace period
            host.request_stop()
        for host in self.hosts:
            host.stop()
        self.queue.recover()  # a worker that could not hand its job back in time
        self._store.close()

    def apply_retention(self) -> list[str]:
        """Delete finished jobs (and their files) older than the retention period; off when 0."""
        if self.retention_days <= 0:
            return []
        ids = self._store.delete_finished_before(time.time() - self.retention_days * 86400)
        for job_id in ids:
            for folder in (self.outputs_dir, self.inputs_dir, self.thumbs_dir):
                shutil.rmtree(folder / job_id, ignore_errors=True)
        return ids
