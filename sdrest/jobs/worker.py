"""A worker: takes jobs from a :class:`~sdrest.jobs.queue.WorkerQueue`, runs them on the native contexts it owns,
and obeys control messages (cancel, load, unload, stop) that arrive on the same queue.

The worker knows nothing of where the queue lives: in a child process it talks to the server through
:class:`~sdrest.jobs.channel.ChannelQueue`; in tests of the queue's mechanics it may run on a thread of
the API process with :class:`~sdrest.jobs.queue.LocalQueue` itself.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sdrest.jobs.models import ModelCache
from sdrest.jobs.queue import CANCEL, LOAD, STOP, UNLOAD, Control, WorkerQueue, relative_paths
from sdrest.jobs.store import CANCELLED, FAILED, SUCCEEDED, Job
from sdrest.jobs.tasks import TaskContext, TaskResult, run_task
from sdrest.models.registry import Registry

log = logging.getLogger("sdrest.jobs")

Runner = Callable[[str, dict[str, Any], TaskContext], TaskResult]

#: How long a control poll waits; also bounds how late a worker notices a stop.
CONTROL_POLL_SECONDS = 0.25


class Worker:
    """Runs one job at a time; a failing job never stops it. :meth:`run` blocks until a ``stop`` control.

    ``roots`` (the models and data dirs) are stripped from error messages, so clients never see server paths.
    """

    def __init__(self, name: str, queue: WorkerQueue, models: ModelCache, *, outputs_dir: Path, inputs_dir: Path,
                 registry: Registry | None = None, runner: Runner = run_task, roots: Sequence[Path] = ()) -> None:
        self.name = name
        self.queue = queue
        self.models = models
        self.outputs_dir = outputs_dir
        self.inputs_dir = inputs_dir
        self.registry = registry
        self.runner = runner
        self.roots = tuple(roots)
        self._lock = threading.Lock()
        self._current: tuple[str, threading.Event] | None = None
        self._cancelled_early: set[str] = set()  # cancels that arrived before their job started here
        self._skip_rest: set[str] = set()  # jobs told to finish the image they sample and start no other
        self._stopping = threading.Event()
        models.on_change = self.on_model_change

    # -- running --------------------------------------------------------------------------------

    def run(self) -> None:
        """Take and run jobs until stopped; control messages are handled on a second thread meanwhile."""
        controls = threading.Thread(target=self._control_loop, name=f"sdrest-{self.name}-control", daemon=True)
        controls.start()
        idle = self.models.idle_seconds
        # wait for a job at most a quarter of the idle timeout, so an idle model goes within ~1.25x of it
        wait = max(0.05, min(1.0, idle / 4)) if idle > 0 else 1.0
        try:
            while not self._stopping.is_set():
                job = self.queue.take(self.name, wait)
                if job is None:
                    if self.models.unload_idle():
                        self._report_loaded()
                    continue
                try:
                    self._run(job)
                except Exception:
                    log.exception("worker %s: job %s escaped its handler", self.name, job.id)
        finally:
            self._stopping.set()
            self.models.close()
            controls.join(2 * CONTROL_POLL_SECONDS + 1)

    def request_stop(self) -> None:
        """Stop after the current job (which is interrupted and handed back to the queue)."""
        self._stopping.set()
        self._cancel_current(None)

    def _run(self, job: Job) -> None:
        from sdrest.errors import Cancelled

        cancel = threading.Event()
        with self._lock:
            self._current = (job.id, cancel)
            if job.id in self._cancelled_early or self._stopping.is_set():
                self._cancelled_early.discard(job.id)
                cancel.set()
        started = time.monotonic()

        def progress(step: int, steps: int, seconds_per_step: float, phase: str) -> None:
            if job.id in self._skip_rest:  # again at each step: sd.cpp forgets a request made before it started
                self.models.cancel("new_latents")
            self.queue.progress(job.id, step, steps, phase, seconds_per_step)

        def preview(step: int, data_url: str) -> None:
            self.queue.preview(job.id, step, data_url)

        output_dir = self.outputs_dir / job.id
        output_dir.mkdir(parents=True, exist_ok=True)
        ctx = TaskContext(job.id, self.models, output_dir, self.inputs_dir / job.id, cancel, progress, preview,
                          self.registry)
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
            with self._lock:
                self._current = None
                self._skip_rest.discard(job.id)
        if self._stopping.is_set() and status == CANCELLED:
            shutil.rmtree(output_dir, ignore_errors=True)
            self.queue.requeue(job.id, "the server stopped while it ran")
            return
        self.queue.finish(job.id, status, outputs=outcome.outputs, result=outcome.result,
                          error=relative_paths(error, self.roots) if error else None,
                          seconds=time.monotonic() - started)
        if self.models.enforce_budget():
            self._report_loaded()

    # -- control --------------------------------------------------------------------------------

    def _control_loop(self) -> None:
        while not self._stopping.is_set():
            control = self.queue.controls(self.name, CONTROL_POLL_SECONDS)
            if control is not None:
                self.handle(control)

    def handle(self, control: Control) -> None:
        """Obey one control message. Load and unload wait for the running job, on their own thread."""
        if control.action == CANCEL and control.args.get("mode") == "new_latents":
            self._skip_rest_of(str(control.args.get("job_id")))
        elif control.action == CANCEL:
            self._cancel_current(str(control.args.get("job_id")))
        elif control.action == STOP:
            self.request_stop()
        elif control.action in (LOAD, UNLOAD):
            threading.Thread(target=self._model_control, args=(control,), name=f"sdrest-{self.name}-{control.action}",
                             daemon=True).start()
        elif control.id:
            self.queue.reply(self.name, control.id, {"ok": False, "error": f"unknown control {control.action!r}"})

    def _cancel_current(self, job_id: str | None) -> None:
        """Cancel ``job_id`` if it runs here (None: whatever runs), or remember it for when it starts."""
        with self._lock:
            current = self._current
            if current is None or (job_id is not None and current[0] != job_id):
                if job_id is not None:
                    self._cancelled_early.add(job_id)
                return
            current[1].set()
        self.models.cancel()

    def _skip_rest_of(self, job_id: str) -> None:
        """Let ``job_id`` finish the image it samples and start no other of its batch (now, or once it runs)."""
        with self._lock:
            self._skip_rest.add(job_id)
            running = self._current is not None and self._current[0] == job_id
        if running:
            self.models.cancel("new_latents")

    def _model_control(self, control: Control) -> None:
        result: dict[str, Any]
        try:
            if control.action == LOAD:
                started = time.monotonic()
                files = dict(control.args["files"])
                if control.args.get("kind") == "upscaler":
                    self.models.upscaler(files["esrgan"])
                else:
                    self.models.diffusion(files)
                result = {"ok": True, "seconds": round(time.monotonic() - started, 3)}
            else:
                result = {"ok": True, "unloaded": self.models.unload(control.args.get("path"))}
        except Exception as exc:
            result = {"ok": False, "error": relative_paths(f"{type(exc).__name__}: {exc}", self.roots)}
        if control.id:
            self.queue.reply(self.name, control.id, result)

    def _report_loaded(self) -> None:
        self.queue.report(self.name, {"loaded": self.models.loaded()})

    def on_model_change(self, change: str, info: dict[str, Any]) -> None:
        """The model cache's hook: tell the queue what this worker holds now."""
        self.queue.report(self.name, {"change": change, **info, "loaded": self.models.loaded()})
