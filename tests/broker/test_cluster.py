"""Scale-out for real: one API node, three ``sdrest worker`` processes and a real Redis, with the synthetic models.

The tests share one cluster and run in file order; the last ones stop Redis and the API node.
"""

from __future__ import annotations

import collections
import io
import json
import logging
import signal
import threading
import time
from typing import Any

import pytest
from broker_live import Cluster
from PIL import Image
from server_live import FINISHED, sse_events, until, wait_job

from sdrest.broker.wire import Keys


def slow(cluster: Cluster, steps: int = 40, seed: int = 1) -> str:
    """Queue a job that runs for a while (a txt2img of ``steps`` steps at 64x64); its id."""
    assert cluster.api is not None
    response = cluster.api.client.post("/api/generate/text2img", json={
        "prompt": "a lighthouse", "width": 64, "height": 64, "steps": steps, "seed": seed})
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


class Finishes:
    """Counts each outcome the API node accepts, per job (a finish hook: called once per accepted answer)."""

    def __init__(self, cluster: Cluster) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.workers: dict[str, str | None] = {}
        self.lock = threading.Lock()
        assert cluster.api is not None
        cluster.api.queue.add_finish_hook(self)

    def __call__(self, job: Any, status: str, result: dict[str, Any]) -> None:
        with self.lock:
            self.counts[job.id] += 1


def running_on(cluster: Cluster, job_id: str, min_step: int = 1) -> str:
    """Wait until ``job_id`` runs on a remote worker and has reached ``min_step``; the worker's name."""
    assert cluster.api is not None
    queue = cluster.api.queue

    def started() -> str | None:
        job = queue.get(job_id)
        worker = next((w.name for w in queue.workers() if w.current_job == job_id), None)
        return worker if job is not None and job.step >= min_step else None
    return str(until(started, 180, f"job {job_id} did not start", interval=0.05))


def host_of(cluster: Cluster, worker: str) -> Any:
    """The worker host running ``worker``."""
    return next(h for h in cluster.hosts.values() if h.worker == worker)


def test_thirty_jobs_all_finish_exactly_once(cluster: Cluster) -> None:
    assert cluster.api is not None
    finishes = Finishes(cluster)
    ids = [cluster.upscale() for _ in range(30)]
    jobs = [wait_job(cluster.api.client, job_id, 300) for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * 30, [job.get("error") for job in jobs]
    assert all(finishes.counts[job_id] == 1 for job_id in ids), finishes.counts
    for job in jobs:  # the files landed in the API node's outputs, readable through it
        (output,) = job["outputs"]
        image = Image.open(io.BytesIO(cluster.api.client.get(output["url"]).content))
        assert image.size == (64, 64)
    assert {cluster.api.queue.get(job_id).attempts for job_id in ids} == {1}


def test_models_load_and_unload_on_remote_workers(cluster: Cluster) -> None:
    assert cluster.api is not None
    client, queue = cluster.api.client, cluster.api.queue
    (model,) = [m for m in client.get("/api/models").json()["models"] if m["path"].startswith("esrgan/")]
    path = str(cluster.models / model["path"])

    def holders() -> set[str]:
        return {w.name for w in queue.workers() if any(path in entry["files"].values() for entry in w.loaded)}
    until(holders, 30, "no worker reports the upscaler the upscales loaded")  # paths mapped back to this node's
    assert client.post(f"/api/models/{model['id']}/unload").status_code == 200
    until(lambda: not holders(), 30, "the upscaler is still listed loaded")
    loaded = client.post(f"/api/models/{model['id']}/load")
    assert loaded.status_code == 200, loaded.text
    until(lambda: holders() == {loaded.json()["worker"]}, 30, "the worker that loaded it does not list it")


def test_the_jobs_spread_over_the_workers_and_the_api_sees_them(cluster: Cluster) -> None:
    assert cluster.api is not None
    remote = [w for w in cluster.api.queue.workers() if w.alive]
    assert {w.name for w in remote} == {"w0.0", "w1.0", "w2.0"}
    assert all(w.host not in ("process", "thread") for w in remote)
    ran = cluster.api.client.get("/metrics").text
    assert 'sdrest_jobs_total{kind="upscale",status="succeeded"}' in ran


def test_progress_previews_and_states_stream_back_from_a_remote_worker(cluster: Cluster) -> None:
    assert cluster.api is not None
    client = cluster.api.client
    response = client.post("/api/generate/text2img", json={
        "prompt": "a lighthouse", "width": 64, "height": 64, "steps": 3, "seed": 5, "preview": True})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    events = sse_events(client, f"/api/queue/job/{job_id}/events",
                        lambda e: e["type"] == "state" and e["status"] in FINISHED, timeout=300)
    assert events[-1]["status"] == "succeeded", events[-1]
    states = [e["status"] for e in events if e["type"] == "state"]
    assert "running" in states, states
    sampling = [e["step"] for e in events if e["type"] == "progress" and e.get("phase") == "sampling"]
    assert sampling and sampling[-1] == 3 and sampling == sorted(sampling), sampling
    assert any(e["type"] == "preview" and e["image"].startswith("data:image/jpeg") for e in events)
    job = client.get(f"/api/queue/job/{job_id}").json()
    assert job["worker"] in {"w0.0", "w1.0", "w2.0"} and job["step"] == 3, job


def test_cancel_reaches_the_remote_worker_within_a_step(cluster: Cluster) -> None:
    assert cluster.api is not None
    job_id = slow(cluster, steps=200)
    running_on(cluster, job_id, min_step=2)
    job = cluster.api.queue.get(job_id)
    seconds_per_step = (time.time() - job.started_at) / max(job.step, 1)
    asked = time.monotonic()
    response = cluster.api.client.post("/api/queue/cancel", json={"job_id": job_id})
    assert response.status_code == 200, response.text
    done = wait_job(cluster.api.client, job_id, 120)
    took = time.monotonic() - asked
    assert done["status"] == "cancelled", done
    assert done["step"] < 200
    # within a step, give or take the VAE decode sd.cpp does not interrupt and the hop through Redis
    assert took < 3 * seconds_per_step + 10, (took, seconds_per_step)


def test_an_answer_from_another_run_of_the_same_attempt_is_dropped(cluster: Cluster,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    # A job the broker lost (a Redis restart) is sent again under the same attempt number, often to the same
    # worker; the lost run's late "cancelled" must not end the new run: only the run in flight may answer.
    assert cluster.api is not None
    caplog.set_level(logging.WARNING, logger="sdrest.broker")
    finishes = Finishes(cluster)
    job_id = slow(cluster, steps=12, seed=9)
    worker = running_on(cluster, job_id)
    attempt = cluster.api.queue.get(job_id).attempts
    late = {"op": "finish", "worker": worker, "job_id": job_id, "attempt": attempt, "run": "0ther0run000",
            "status": "cancelled", "outputs": [], "result": {}, "error": "cancelled while running", "seconds": 1.0}
    cluster.redis.client().xadd(Keys().events, {"e": json.dumps(late)})
    until(lambda: f"dropped the late outcome of job {job_id}" in caplog.text, 30, "the late answer was not dropped")
    assert cluster.api.queue.get(job_id).status == "running"  # dropped while the job was in flight
    done = wait_job(cluster.api.client, job_id, 300)
    assert done["status"] == "succeeded", done
    assert finishes.counts[job_id] == 1 and done["attempts"] == attempt


def test_a_killed_worker_has_its_job_run_again_elsewhere_once(cluster: Cluster) -> None:
    assert cluster.api is not None
    finishes = Finishes(cluster)
    job_id = slow(cluster, steps=12, seed=7)
    worker = running_on(cluster, job_id)
    host_of(cluster, worker).kill(signal.SIGKILL)
    done = wait_job(cluster.api.client, job_id, 300)
    assert done["status"] == "succeeded", done
    assert finishes.counts[job_id] == 1
    job = cluster.api.queue.get(job_id)
    assert job.attempts == 2
    until(lambda: worker not in {w.name for w in cluster.api.queue.workers() if w.alive}, 30, "still listed alive")
    # a replacement joins for the tests that follow: one that shares the API node's data dir
    cluster.add_worker("w3", "--shared-data-dir", str(cluster.folder / "data"))
    cluster.wait_workers(3)


def test_a_worker_sharing_the_data_dir_stages_its_outputs_there(cluster: Cluster) -> None:
    assert cluster.api is not None
    ids = [cluster.upscale() for _ in range(9)]  # more than the free workers that hold the upscaler
    jobs = [wait_job(cluster.api.client, job_id, 300) for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * len(ids)
    shared = [job for job in jobs if job["worker"] == "w3.0"]
    assert shared, [job["worker"] for job in jobs]
    for job in shared:
        assert (cluster.api.state.outputs_dir / job["id"] / job["outputs"][0]["filename"]).is_file()
    assert not any((cluster.folder / "data" / "staging").iterdir())


def test_a_worker_that_answers_after_its_lease_lapsed_is_ignored(cluster: Cluster) -> None:
    assert cluster.api is not None
    finishes = Finishes(cluster)
    job_id = slow(cluster, steps=10, seed=11)
    worker = running_on(cluster, job_id)
    frozen = host_of(cluster, worker)
    frozen.kill(signal.SIGSTOP)  # the host stops answering: no heartbeat, no lease renewal
    try:
        done = wait_job(cluster.api.client, job_id, 300)
        output = cluster.api.state.outputs_dir / job_id / done["outputs"][0]["filename"]
        written = output.stat().st_mtime_ns, output.read_bytes()
    finally:
        frozen.kill(signal.SIGCONT)  # ... and then answers again, late
    assert done["status"] == "succeeded", done
    # the thawed worker finds its lease lost and stops; whatever it sends for the old attempt is dropped
    until(lambda: worker in {w.name for w in cluster.api.queue.workers() if w.alive and not w.current_job}, 120,
          "the thawed worker did not come back")
    time.sleep(cluster.lease)  # give a late answer every chance to arrive
    assert finishes.counts[job_id] == 1
    assert cluster.api.queue.get(job_id).status == "succeeded"
    assert (output.stat().st_mtime_ns, output.read_bytes()) == written
    assert not list((cluster.folder / "data" / "staging").glob(f"{job_id}*"))


def test_a_redis_restart_then_an_api_restart_lose_nothing(cluster: Cluster) -> None:
    assert cluster.api is not None
    ids = [slow(cluster, steps=6, seed=20 + i) for i in range(2)] + [cluster.upscale() for _ in range(4)]
    running_on(cluster, ids[0])
    cluster.redis.stop()
    cluster.redis.start()  # empty: the work in flight is gone from Redis
    cluster.stop_api()
    cluster.start_api()
    cluster.wait_workers(3)
    jobs = [wait_job(cluster.api.client, job_id, 300) for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * len(ids), [job.get("error") for job in jobs]


@pytest.fixture(autouse=True)
def _no_job_left_running(cluster: Cluster) -> Any:
    """Each test starts and ends with nothing in flight (so their timings do not mix)."""
    yield
    if cluster.api is not None:
        until(lambda: not cluster.api.queue.running_ids() and not cluster.api.queue.counts()["queued"], 300,
              "jobs were left in the queue")

