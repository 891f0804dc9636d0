"""The unload policy (idle timeout, memory budget) and several workers, through real HTTP.

The workers run a stand-in runner that asks its worker's :class:`~sdrest.jobs.models.ModelCache`
for the job's context, and the cache loads :class:`FakeModel` objects (``model_loader``), so the
policy is exercised without native work.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_live import FakeRunner, LiveServer, make_config, until, wait_job

from sdrest.jobs.tasks import TaskContext, TaskResult
from sdrest.server.app import create_app

TXT2IMG = {"prompt": "a cat", "width": 64, "height": 64, "steps": 2, "seed": 1, "model": "fake"}


class FakeModel:
    """What the fake loader returns: closable and cancellable, no native memory."""

    def __init__(self, kind: str, files: dict[str, str]) -> None:
        self.kind = kind
        self.files = files
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def cancel(self) -> None:
        pass


class FakeLoader:
    """A ``model_loader`` recording every object it built."""

    def __init__(self) -> None:
        self.built: list[FakeModel] = []
        self._lock = threading.Lock()

    def __call__(self, kind: str, files: dict[str, str]) -> FakeModel:
        model = FakeModel(kind, files)
        with self._lock:
            self.built.append(model)
        return model


class LoadingRunner(FakeRunner):
    """:class:`FakeRunner` that first gets the job's diffusion context from its worker's cache.

    Each job also waits on its own gate (``gate(job_id)``, open unless ``gated``) and reports its
    start on ``started_event(job_id)``, so tests can hold several jobs running at once.
    """

    def __init__(self, gated: bool = False) -> None:
        super().__init__()
        self.gated = gated
        self.contexts: dict[str, Any] = {}
        self._gates: dict[str, threading.Event] = {}
        self._starts: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def _event(self, table: dict[str, threading.Event], job_id: str) -> threading.Event:
        with self._lock:
            return table.setdefault(job_id, threading.Event())

    def gate(self, job_id: str) -> threading.Event:
        """Set it to let ``job_id`` run (when ``gated``)."""
        return self._event(self._gates, job_id)

    def started_event(self, job_id: str) -> threading.Event:
        """Set once ``job_id`` runs with its context loaded."""
        return self._event(self._starts, job_id)

    def __call__(self, kind: str, params: dict[str, Any], ctx: TaskContext) -> TaskResult:
        from sdrest.errors import Cancelled

        self.contexts[ctx.job_id] = ctx.models.diffusion(params["_context"])
        self.started_event(ctx.job_id).set()
        gate = self.gate(ctx.job_id)
        while self.gated and not gate.wait(0.01):
            if ctx.cancel.is_set():
                raise Cancelled("cancelled")
        return super().__call__(kind, params, ctx)


def serve(tmp_path: Path, models: Path, runner: LoadingRunner, loader: FakeLoader, **settings: Any) -> LiveServer:
    return LiveServer(create_app(make_config(tmp_path, models, **settings), runner=runner, model_loader=loader))


def submit(live: LiveServer, **overrides: Any) -> str:
    response = live.client.post("/api/generate/text2img", json={**TXT2IMG, **overrides})
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def counter(live: LiveServer, name: str) -> float:
    """A diffusion model counter from ``/metrics`` (0 when absent)."""
    text = live.client.get("/metrics").text
    found = re.search(rf'^sdrest_{name}\{{kind="diffusion"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def loaded(live: LiveServer) -> list[dict]:
    return live.client.get("/api/status").json()["loaded_models"]


def model_loaded(live: LiveServer) -> bool:
    return live.client.get("/api/models/checkpoints/fake").json()["loaded"]


@pytest.fixture
def loader() -> FakeLoader:
    return FakeLoader()


# -- idle timeout -------------------------------------------------------------------------

IDLE = 0.8


def test_idle_model_is_unloaded_after_the_timeout_and_reloaded_by_the_next_job(
        tmp_path: Path, fake_models: Path, loader: FakeLoader) -> None:
    runner = LoadingRunner()
    runner.hold.clear()
    with serve(tmp_path, fake_models, runner, loader, idle_unload_seconds=IDLE) as live:
        first = submit(live)
        until(runner.started.is_set, 10, "the job did not start")
        assert model_loaded(live) and counter(live, "model_loads_total") == 1
        # a job running longer than the idle timeout keeps its model: idle time starts when the job ends
        started = time.monotonic()
        until(lambda: not model_loaded(live) or time.monotonic() - started > IDLE * 1.5, 10, "unreachable")
        assert model_loaded(live), "unloaded while its job ran"
        runner.hold.set()
        assert wait_job(live.client, first)["status"] == "succeeded"
        finished = time.monotonic()
        until(lambda: not loaded(live), 10, f"not unloaded after {IDLE}s idle")
        idle_for = time.monotonic() - finished
        assert idle_for >= IDLE * 0.75, f"unloaded {idle_for:.2f}s after the job, before the {IDLE}s timeout"
        assert not model_loaded(live)
        assert counter(live, "model_unloads_total") == 1 and loader.built[0].closed

        second = submit(live)
        assert wait_job(live.client, second)["status"] == "succeeded"
        assert counter(live, "model_loads_total") == 2 and len(loader.built) == 2
        assert runner.contexts[second] is loader.built[1]


def test_no_idle_timeout_keeps_the_model(tmp_path: Path, fake_models: Path, loader: FakeLoader) -> None:
    runner = LoadingRunner()
    with serve(tmp_path, fake_models, runner, loader) as live:
        assert wait_job(live.client, submit(live))["status"] == "succeeded"
        assert wait_job(live.client, submit(live, seed=2))["status"] == "succeeded"
        assert model_loaded(live)
        assert counter(live, "model_loads_total") == 1 and counter(live, "model_unloads_total") == 0


# -- memory budget ------------------------------------------------------------------------


def test_budget_below_rss_unloads_after_each_job(tmp_path: Path, fake_models: Path, loader: FakeLoader) -> None:
    runner = LoadingRunner()
    with serve(tmp_path, fake_models, runner, loader, memory_budget_mb=1) as live:
        first = submit(live)
        assert wait_job(live.client, first)["status"] == "succeeded"
        until(lambda: counter(live, "model_unloads_total") == 1, 10, "not unloaded past the budget")
        assert not loaded(live) and not model_loaded(live) and loader.built[0].closed
        second = submit(live, seed=2)
        assert wait_job(live.client, second)["status"] == "succeeded"
        until(lambda: counter(live, "model_unloads_total") == 2, 10, "not unloaded after the second job")
        assert counter(live, "model_loads_total") == 2 and runner.contexts[second] is loader.built[1]


def test_budget_above_rss_keeps_the_model(tmp_path: Path, fake_models: Path, loader: FakeLoader) -> None:
    runner = LoadingRunner()
    with serve(tmp_path, fake_models, runner, loader, memory_budget_mb=10**7) as live:
        for seed in (1, 2, 3):
            assert wait_job(live.client, submit(live, seed=seed))["status"] == "succeeded"
        assert model_loaded(live) and len(loaded(live)) == 1
        assert counter(live, "model_loads_total") == 1 and counter(live, "model_unloads_total") == 0
        assert len(loader.built) == 1 and not loader.built[0].closed


# -- several workers ----------------------------------------------------------------------


@pytest.fixture
def two_workers(tmp_path: Path, fake_models: Path, loader: FakeLoader) -> Iterator[tuple[LiveServer, LoadingRunner]]:
    runner = LoadingRunner(gated=True)
    with serve(tmp_path, fake_models, runner, loader, workers=2) as live:
        yield live, runner


def test_two_workers_run_two_jobs_at_once_each_with_its_context(
        two_workers: tuple[LiveServer, LoadingRunner], loader: FakeLoader) -> None:
    live, runner = two_workers
    client = live.client
    a, b, c = submit(live, seed=1), submit(live, seed=2), submit(live, seed=3)
    # both wait on their gates: they can only both have started if they run concurrently
    assert runner.started_event(a).wait(10) and runner.started_event(b).wait(10)
    status = client.get("/api/status").json()
    assert sorted(status["running_jobs"]) == sorted([a, b])
    assert sorted(w["current_job"] for w in status["workers"]) == sorted([a, b])
    assert sorted(m["worker"] for m in status["loaded_models"]) == ["worker-0", "worker-1"]
    assert runner.contexts[a] is not runner.contexts[b] and len(loader.built) == 2
    for job_id in (a, b):
        job = client.get(f"/api/queue/job/{job_id}").json()
        assert job["status"] == "running" and job["queue_position"] == 0
    third = client.get(f"/api/queue/job/{c}").json()
    assert third["status"] == "queued" and third["queue_position"] == 1
    queue = client.get("/api/queue/status").json()
    assert queue["running"] == 2 and queue["queue_size"] == 1
    assert [j["id"] for j in queue["jobs"] if j["status"] == "queued"] == [c]

    runner.gate(a).set()
    runner.gate(b).set()
    runner.gate(c).set()
    for job_id in (a, b, c):
        assert wait_job(client, job_id)["status"] == "succeeded"
    # c ran on whichever worker freed first, reusing that worker's context
    assert runner.contexts[c] in (runner.contexts[a], runner.contexts[b]) and len(loader.built) == 2
    assert client.get("/api/status").json()["jobs"]["succeeded"] == 3


def test_cancelling_one_of_two_running_jobs_leaves_the_other(
        two_workers: tuple[LiveServer, LoadingRunner]) -> None:
    live, runner = two_workers
    client = live.client
    a, b = submit(live, seed=1), submit(live, seed=2)
    assert runner.started_event(a).wait(10) and runner.started_event(b).wait(10)
    response = client.post("/api/queue/cancel", json={"job_id": a})
    assert response.status_code == 200 and response.json()["status"] == "cancelling"
    assert wait_job(client, a)["status"] == "cancelled"
    other = client.get(f"/api/queue/job/{b}").json()
    assert other["status"] == "running" and other["queue_position"] == 0
    assert client.get("/api/status").json()["running_jobs"] == [b]
    # the freed worker takes the next job while b still runs
    c = submit(live, seed=3)
    assert runner.started_event(c).wait(10)
    assert sorted(client.get("/api/status").json()["running_jobs"]) == sorted([b, c])
    runner.gate(b).set()
    runner.gate(c).set()
    assert wait_job(client, b)["status"] == "succeeded"
    assert wait_job(client, c)["status"] == "succeeded"
    assert wait_job(client, a)["status"] == "cancelled"
