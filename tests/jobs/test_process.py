"""Worker processes without HTTP: readiness, their lines in the server's log under their name, a death
noticed, reported and repaired, a stop that hands the running job back."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sdrest.jobs.process import describe_exit, device_environment
from sdrest.jobs.service import JobService


def until(condition: Callable[[], Any], timeout: float, message: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, message
        time.sleep(0.02)
    return value


def test_exit_descriptions_and_device_pinning() -> None:
    assert describe_exit(-signal.SIGSEGV) == "SIGSEGV"
    assert describe_exit(-signal.SIGKILL) == "SIGKILL"
    assert describe_exit(3) == "exit code 3"
    assert device_environment("default") == {}
    assert device_environment("1") == {"CUDA_VISIBLE_DEVICES": "1", "HIP_VISIBLE_DEVICES": "1",
                                       "GGML_VK_VISIBLE_DEVICES": "1"}


def test_a_worker_process_reports_logs_dies_and_comes_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sdrest.worker")
    service = JobService(tmp_path, cancel_grace_seconds=1.0)
    service.start()
    try:
        found = service.wait_ready(120)
        assert "euler" in found["samplers"] and "karras" in found["schedulers"] and "q8_0" in found["weight_types"]
        worker = service.queue.workers()[0]
        assert worker.alive and worker.host == "process" and worker.pid != os.getpid()
        until(lambda: "worker-0 sdrest.jobs: ready: sd.cpp" in caplog.text, 30, "no ready line in the log")
        assert "ready: sd.cpp unknown" not in caplog.text  # the pinned source is named when sd.cpp has no version
        os.kill(worker.pid, signal.SIGSEGV)
        until(lambda: service.queue.workers()[0].restarts == 1 and service.queue.workers()[0].alive
              and service.queue.workers()[0].pid != worker.pid, 60, "the worker was not restarted")
        assert service.queue.workers()[0].last_exit == "SIGSEGV"
        until(lambda: caplog.text.count("ready: sd.cpp") == 2, 60, "the new worker did not log")
        assert "worker-0: Fatal Python error: Segmentation fault" in caplog.text  # faulthandler, relayed
        assert any(r.levelno == logging.ERROR and "worker-0 died with SIGSEGV" in r.getMessage()
                   for r in caplog.records)
    finally:
        service.stop()
    assert not service.queue.workers()[0].alive
    assert caplog.text.count("died with") == 1  # the clean stop is not reported as a death
