"""``JobService``: the store, the queue, the events, the workers and the metrics, started and stopped together."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from sdrest.jobs.events import EventBus
from sdrest.jobs.metrics import Metrics
from sdrest.jobs.models import ModelCache, ModelLoader
from sdrest.jobs.queue import LocalQueue
from sdrest.jobs.store import JobStore
from sdrest.jobs.tasks import run_task
from sdrest.jobs.worker import Runner, Worker
from sdrest.models.registry import Registry

log = logging.getLogger("sdrest.jobs")


class JobService:
    """Everything below the HTTP layer. ``start()`` recovers interrupted jobs and starts the workers.

    ``registry`` (the models dir's :class:`~sdrest.models.Registry`) gives the workers model hashes;
    ``model_loader`` replaces how the workers' caches build native contexts (tests).
    """

    def __init__(self, data_dir: Path, *, workers: int = 1, queue_limit: int = 100, requeue_interrupted: bool = True,
                 n_threads: int | None = None, idle_unload_seconds: float = 0.0, memory_budget_mb: int = 0,
                 retention_days: float = 0.0, runner: Runner = run_task,
                 registry: Registry | None = None, model_loader: ModelLoader | None = None) -> None:
        self.data_dir = data_dir
        self.outputs_dir = data_dir / "outputs"
        self.inputs_dir = data_dir / "inputs"
        self.thumbs_dir = data_dir / "thumbnails"
        for folder in (self.outputs_dir, self.inputs_dir, self.thumbs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.store = JobStore(data_dir / "jobs.sqlite3")
        self.bus = EventBus()
        self.metrics = Metrics()
        self.queue = LocalQueue(self.store, self.bus, queue_limit, self.seconds_per_job)
        self.requeue_interrupted = requeue_interrupted
        self.registry = registry
        self.retention_days = retention_days
        self.started_at = time.time()
        self.recovered: list[str] = []
        self.workers = [
            Worker(f"worker-{i}", self.queue,
                   ModelCache(n_threads=n_threads, idle_seconds=idle_unload_seconds, memory_budget_mb=memory_budget_mb,
                              metrics=self.metrics, on_change=self._model_event, loader=model_loader),
                   outputs_dir=self.outputs_dir, inputs_dir=self.inputs_dir, metrics=self.metrics,
                   registry=registry, requeue_on_stop=requeue_interrupted, runner=runner)
            for i in range(workers)
        ]

    def _model_event(self, change: str, info: dict[str, Any]) -> None:
        self.bus.publish({"type": "model", "job_id": None, "change": change, **info})

    def start(self) -> None:
        """Recover jobs a stop or crash left running, apply retention, start the workers."""
        self.recovered = self.store.recover_interrupted(self.requeue_interrupted)
        for job_id in self.recovered:
            if self.requeue_interrupted:
                shutil.rmtree(self.outputs_dir / job_id, ignore_errors=True)
        if self.recovered:
            log.warning("%d job(s) interrupted by the last stop were %s", len(self.recovered),
                        "re-queued" if self.requeue_interrupted else "marked failed")
        self.apply_retention()
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        """Stop the workers (the running job re-queued or failed, by config), close the store."""
        for worker in self.workers:
            worker.stop()
        self.store.close()

    def apply_retention(self) -> list[str]:
        """Delete finished jobs (and their files) older than the retention period; off when 0."""
        if self.retention_days <= 0:
            return []
        ids = self.store.delete_finished_before(time.time() - self.retention_days * 86400)
        for job_id in ids:
            for folder in (self.outputs_dir, self.inputs_dir, self.thumbs_dir):
                shutil.rmtree(folder / job_id, ignore_errors=True)
        return ids

    def seconds_per_job(self) -> float:
        """Mean duration of recent jobs (for Retry-After and estimates); 10 s with no history."""
        history = self.store.durations(limit=20)
        return sum(s for _, s in history) / len(history) if history else 10.0

    @property
    def models(self) -> ModelCache:
        """The first worker's model cache (where explicit load/unload go)."""
        return self.workers[0].models

    def loaded_models(self) -> list[dict[str, Any]]:
        """What every worker holds loaded."""
        return [dict(m, worker=w.name) for w in self.workers for m in w.models.loaded()]
