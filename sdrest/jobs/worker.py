"""Worker threads: each owns a :class:`ModelCache` and runs one job at a time from the queue."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sdrest.jobs.metrics import Metrics
from sdrest.jobs.models import ModelCache
from sdrest.jobs.queue import LocalQueue
from sdrest.jobs.store import CANCELLED, FAILED, RUNNING, SUCCEEDED, Job
from sdrest.jobs.tasks import TaskContext, TaskResult, run_task
from sdrest.models.registry import Registry

log = logging.getLogger("sdrest.jobs")

Runner = Callable[[str, dict[str, Any], TaskContext], TaskResult]


class Worker:
    """One thread: take a job, run it, record the outcome; a failing job never stops the thread."""

    def __init__(self, name: str, queue: LocalQueue, models: ModelCache, *, outputs_dir: Path, inputs_dir: Path,
                 metrics: Metrics, registry: Registry | None, requeue_on_stop: bool,
                 runner: Runner = run_task) -> None:
        self.name = name
        self.queue = queue
        self.models = models
        self.outputs_dir = outputs_dir
        self.inputs_dir = inputs_dir
        self.metrics = metrics
        self.registry = registry
        self.requeue_on_stop = requeue_on_stop
        self.runner = runner
        self.current: str | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"sdrest-{name}", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop: the running job is interrupted and re-queued (or failed, by config); waits for the thread."""
        self._stopping.set()
        self.queue.close()
        job_id = self.current
        if job_id is not None:
            self.queue.cancel(job_id)
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    def _loop(self) -> None:
        idle = self.models.idle_seconds
        # wait for a job at most a quarter of the idle timeout, so an idle model goes within ~1.25x of it
        wait = max(0.05, min(1.0, idle / 4)) if idle > 0 else 1.0
        while not self._stopping.is_set():
            job = self.queue.take(self.name, timeout=wait)
            if job is None:
                self.models.unload_idle()
                continue
            try:
                self._run(job)
            except Exception:
                log.exception("worker %s: job %s escaped its handler", self.name, job.id)
        self.models.close()

    def _publish(self, event: dict[str, Any]) -> None:
        self.queue.bus.publish(event)

    def _run(self, job: Job) -> None:
        from sdrest.errors import Cancelled

        store = self.queue.store
        cancel = threading.Event()
        self.current = job.id
        started = time.monotonic()
        self._publish({"type": "state", "job_id": job.id, "status": RUNNING, "kind": job.kind})
        last_step = [started]

        def progress(step: int, steps: int, seconds_per_step: float, phase: str) -> None:
            now = time.monotonic()
            if phase == "sampling":
                self.metrics.inc("sampling_steps_total")
                self.metrics.observe("step_seconds", now - last_step[0])
            last_step[0] = now
            store.set_progress(job.id, step, steps, phase)
            sps = seconds_per_step if seconds_per_step > 0 else (now - started) / max(step, 1)
            self._publish({"type": "progress", "job_id": job.id, "step": step, "steps": steps, "phase": phase,
                           "progress": step / steps if steps else 0.0, "seconds_per_step": round(sps, 4),
                           "eta_seconds": round(max(0, steps - step) * sps, 3)})

        def preview(step: int, data_url: str) -> None:
            self._publish({"type": "preview", "job_id": job.id, "step": step, "image": data_url})

        def stop() -> None:
            cancel.set()
            self.models.cancel()

        output_dir = self.outputs_dir / job.id
        output_dir.mkdir(parents=True, exist_ok=True)
        ctx = TaskContext(job.id, self.models, output_dir, self.inputs_dir / job.id, cancel, progress, preview,
                          self.registry)
        self.queue.register_running(job.id, stop)
        status, error, outcome = FAILED, None, TaskResult()
        try:
            with self.models.lock:
                try:
                    outcome = self.runner(job.kind, job.params, ctx)
                finally:
                    self.models.touch()  # idle time counts from the job's end, not from the load
            status = SUCCEEDED
        except Cancelled:
            status, error = CANCELLED, "cancelled while running"
        except (ValueError, TypeError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            log.exception("job %s failed", job.id)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self.queue.unregister_running(job.id)
            self.current = None
        elapsed = time.monotonic() - started
        if self._stopping.is_set() and status == CANCELLED:
            if self.requeue_on_stop and store.requeue(job.id):
                shutil.rmtree(output_dir, ignore_errors=True)
                self._publish({"type": "state", "job_id": job.id, "status": "queued", "reason": "server stopping"})
                return
            status, error = FAILED, "interrupted: the server stopped while it ran"
        finished = store.finish(job.id, status, outputs=outcome.outputs, result=outcome.result, error=error)
        self.metrics.inc("jobs_total", kind=job.kind, status=status)
        self.metrics.observe("job_seconds", elapsed, kind=job.kind)
        if status == FAILED:
            self.metrics.inc("errors_total", kind=job.kind)
        self.models.enforce_budget()
        self._publish({"type": "state", "job_id": job.id, "status": status, "error": error,
                       "outputs": outcome.outputs, "seconds": round(elapsed, 3),
                       "result": finished.result if finished else outcome.result})
