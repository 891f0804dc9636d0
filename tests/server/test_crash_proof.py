"""Native work in supervised worker processes: a worker's death, a cancel it cannot honour, a job that runs
too long; the server stays up through all of them (one live server with the synthetic models)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_live import LiveServer, make_config, until, wait_job

from sdrest.server.app import create_app

TINY = {"prompt": "a lovely cat", "width": 64, "height": 64, "steps": 1, "seed": 3, "model": "sd1"}
#: thousands of words: sd.cpp's text conditioning takes minutes over them and cannot be cancelled inside
LONG_PROMPT = " ".join(["a lovely cat sitting on a red sofa"] * 500)
GRACE = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, synthetic_models: Path) -> Iterator[LiveServer]:
    """One live server whose worker runs in a child process; cancels escalate after ``GRACE`` seconds."""
    tmp = tmp_path_factory.mktemp("crash")
    config = make_config(tmp, synthetic_models, cancel_grace_seconds=GRACE)
    with LiveServer(create_app(config)) as live:
        yield live


class HealthWatch:
    """Polls ``/api/health`` on its own thread and keeps every answer (or transport error)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[int | str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._stop.wait(0.05):
                try:
                    self.answers.append(client.get("/api/health").status_code)
                except httpx.TransportError as exc:
                    self.answers.append(type(exc).__name__)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def worker_pid(live: LiveServer) -> int:
    """The pid of the (single) worker process, once it runs."""
    def pid() -> int | None:
        workers = live.client.get("/api/status").json()["workers"]
        return workers[0]["pid"] if workers and workers[0]["alive"] else None
    return until(pid, 60, "no worker process")


def submit(live: LiveServer, **overrides: object) -> str:
    response = live.client.post("/api/generate/text2img", json={**TINY, **overrides})
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_a_worker_killed_mid_job_fails_that_job_only(server: LiveServer, sig: signal.Signals) -> None:
    client = server.client
    assert wait_job(client, submit(server), 300)["status"] == "succeeded"  # the model is loaded
    pid = worker_pid(server)
    job_id = submit(server, steps=400)
    until(lambda: client.get(f"/api/queue/job/{job_id}").json()["step"] >= 1, 300, "the job never stepped")
    with HealthWatch(server.url) as health:
        os.kill(pid, sig)
        job = wait_job(client, job_id, 60)
        assert job["status"] == "failed"
        assert job["error"] == f"the worker died with {sig.name} during sampling"
        assert job["attempts"] == 1
        # a new worker takes the next job
        assert wait_job(client, submit(server), 300)["status"] == "succeeded"
    assert health.answers and set(health.answers) == {200}, health.answers
    assert worker_pid(server) != pid
    status = client.get("/api/status").json()
    assert status["workers"][0]["restarts"] >= 1 and status["workers"][0]["last_exit"] == sig.name
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the dead worker was reaped, not left a zombie
    assert client.get(f"/api/queue/job/{job_id}").json()["status"] == "failed"  # not re-run


def test_cancel_during_text_conditioning_kills_the_worker_after_the_grace_period(server: LiveServer) -> None:
    client = server.client
    pid = worker_pid(server)
    job_id = submit(server, prompt=LONG_PROMPT)
    until(lambda: client.get(f"/api/queue/job/{job_id}").json()["status"] == "running", 60, "the job did not start")
    started = time.monotonic()
    assert client.post("/api/queue/cancel", json={"job_id": job_id}).json()["status"] == "cancelling"
    job = wait_job(client, job_id, 60)
    elapsed = time.monotonic() - started
    assert job["status"] == "cancelled" and "did not stop" in job["error"], job
    assert elapsed < GRACE + 5, elapsed
    assert worker_pid(server) != pid  # killed and restarted
    assert wait_job(client, submit(server), 300)["status"] == "succeeded"


def test_a_job_past_its_time_limit_is_failed(tmp_path: Path, synthetic_models: Path) -> None:
    config = make_config(tmp_path, synthetic_models, job_timeout_seconds=1.5, cancel_grace_seconds=GRACE)
    with LiveServer(create_app(config)) as live:
        started = time.monotonic()
        job = wait_job(live.client, submit(live, steps=400), 120)
        assert job["status"] == "failed" and job["error"] == "the job exceeded its time limit of 1.5 s", job
        assert time.monotonic() - started < 60
        assert live.client.get("/api/health").json()["status"] in ("ok", "degraded")
