"""The job service without HTTP: workers, stop re-queues the running job, retention removes old files."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sdrest.jobs.service import JobService
from sdrest.jobs.tasks import TaskContext, TaskResult


class Runner:
    """Writes one file per job; holds while ``hold`` is clear (cancellable)."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.started = threading.Event()

    def __call__(self, kind: str, params: dict[str, Any], ctx: TaskContext) -> TaskResult:
        from sdrest.errors import Cancelled

        self.started.set()
        while not self.hold.wait(0.01):
            if ctx.cancel.is_set():
                raise Cancelled("cancelled")
        (ctx.output_dir / "out.txt").write_text(kind)
        return TaskResult(["out.txt"])


def wait_status(service: JobService, job_id: str, status: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while service.queue.get(job_id).status != status:
        assert time.monotonic() < deadline, service.queue.get(job_id)
        time.sleep(0.01)


def test_stop_requeues_the_running_job(tmp_path: Path) -> None:
    runner = Runner()
    service = JobService(tmp_path, runner=runner)
    service.start()
    job = service.queue.submit("txt2img", {})
    assert runner.started.wait(10)
    service.stop()
    reopened = JobService(tmp_path, runner=runner)
    try:
        assert reopened.queue.get(job.id).status == "queued"
        runner.hold.set()
        reopened.start()
        wait_status(reopened, job.id, "succeeded")
        assert (tmp_path / "outputs" / job.id / "out.txt").read_text() == "txt2img"
    finally:
        reopened.stop()


def test_stop_can_fail_the_running_job_instead(tmp_path: Path) -> None:
    runner = Runner()
    service = JobService(tmp_path, runner=runner, requeue_interrupted=False)
    service.start()
    job = service.queue.submit("txt2img", {})
    assert runner.started.wait(10)
    service.stop()
    store_view = JobService(tmp_path, runner=runner)
    try:
        stopped = store_view.queue.get(job.id)
        assert stopped.status == "failed" and "interrupted" in stopped.error
    finally:
        store_view.stop()


def test_retention_removes_old_jobs_and_files(tmp_path: Path) -> None:
    runner = Runner()
    runner.hold.set()
    service = JobService(tmp_path, runner=runner, retention_days=1e-9)
    service.start()
    try:
        job = service.queue.submit("txt2img", {})
        wait_status(service, job.id, "succeeded")
        assert (tmp_path / "outputs" / job.id / "out.txt").is_file()
        time.sleep(0.01)  # older than the (tiny) retention period
        assert service.apply_retention() == [job.id]
        assert service.queue.get(job.id) is None and not (tmp_path / "outputs" / job.id).exists()
    finally:
        service.stop()
    kept = JobService(tmp_path / "other", runner=runner)
    assert kept.apply_retention() == []  # off by default
    kept.stop()
