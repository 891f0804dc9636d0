"""Fair sharing and placement: the order waiting jobs are served in (round-robin over owners, or by arrival), and
which free worker takes a job (the one that already holds its model)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdrest.jobs.events import EventBus
from sdrest.jobs.metrics import Metrics
from sdrest.jobs.placement import choose, holds, model_files
from sdrest.jobs.queue import LocalQueue
from sdrest.jobs.store import SUCCEEDED, Job, JobStore


def served(store: JobStore) -> list[str]:
    """Claim and finish every waiting job; the prompts in the order they were served."""
    out = []
    while (job := store.claim_next("w0")) is not None:
        out.append(job.params["prompt"])
        store.finish(job.id, SUCCEEDED)
    return out


@pytest.fixture
def fair(tmp_path: Path) -> Iterator[JobStore]:
    store = JobStore(tmp_path / "jobs.sqlite3")
    yield store
    store.close()


def test_a_batch_of_one_user_does_not_starve_the_others(fair: JobStore) -> None:
    for i in range(5):
        fair.create("txt2img", {"prompt": f"a{i}"}, owner="alice")
    fair.create("txt2img", {"prompt": "b0"}, owner="bob")
    fair.create("txt2img", {"prompt": "b1"}, owner="bob")
    fair.create("txt2img", {"prompt": "c0"}, owner="carol")
    assert served(fair) == ["a0", "b0", "c0", "a1", "b1", "a2", "a3", "a4"]


def test_positions_follow_the_fair_order(fair: JobStore) -> None:
    alice = [fair.create("txt2img", {"prompt": f"a{i}"}, owner="alice") for i in range(3)]
    bob = fair.create("txt2img", {"prompt": "b0"}, owner="bob")
    assert bob is not None and fair.get(bob.id).position == 2
    assert [fair.get(j.id).position for j in alice if j] == [1, 3, 4]
    listed = fair.list_jobs(statuses=["queued"])
    assert [(j.params["prompt"], j.position) for j in listed] == [("a0", 1), ("b0", 2), ("a1", 3), ("a2", 4)]
    mine = fair.list_jobs(statuses=["queued"], owner="bob")
    assert [(j.params["prompt"], j.position) for j in mine] == [("b0", 2)]


def test_the_owner_who_waited_longest_goes_first(fair: JobStore) -> None:
    fair.create("txt2img", {"prompt": "a0"}, owner="alice")
    assert served(fair) == ["a0"]  # alice just ran something
    fair.create("txt2img", {"prompt": "a1"}, owner="alice")
    fair.create("txt2img", {"prompt": "b0"}, owner="bob")  # later, but bob has not run anything
    assert served(fair) == ["b0", "a1"]


def test_fifo_serves_by_arrival(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3", order="fifo")
    for owner, prompt in (("alice", "a0"), ("alice", "a1"), ("bob", "b0")):
        store.create("txt2img", {"prompt": prompt}, owner=owner)
    assert served(store) == ["a0", "a1", "b0"]
    store.close()
    with pytest.raises(ValueError, match="order"):
        JobStore(tmp_path / "other.sqlite3", order="random")


def test_unclaim_does_not_count_an_attempt(fair: JobStore) -> None:
    job = fair.create("txt2img", {"prompt": "a"})
    assert job is not None
    assert fair.claim_next("w0").attempts == 1
    assert fair.unclaim(job.id)
    again = fair.get(job.id)
    assert (again.status, again.attempts, again.position) == ("queued", 0, 1)


def _job(files: dict[str, str]) -> Job:
    return Job(id="j", kind="txt2img", params={"_context": files}, status="queued")


def test_placement_prefers_a_worker_that_holds_the_model() -> None:
    job = _job({"model": "/m/a.safetensors", "vae": "/m/vae.safetensors"})
    assert model_files(job) == {"/m/a.safetensors", "/m/vae.safetensors"}
    loaded = {"w1": [{"kind": "diffusion", "files": {"model": "/m/a.safetensors", "vae": "/m/vae.safetensors"}}],
              "w2": [{"kind": "diffusion", "files": {"model": "/m/a.safetensors"}}]}
    assert holds(loaded["w1"], model_files(job)) and not holds(loaded["w2"], model_files(job))
    assert choose(job, ["w0", "w1", "w2"], loaded) == "w1"
    assert choose(job, ["w0", "w2"], loaded) == "w0"  # nobody holds it: the one asking
    assert choose(job, [], loaded) is None
    upscale = Job(id="u", kind="upscale", params={"_upscaler": "/m/x4.pth"}, status="queued")
    assert choose(upscale, ["w0", "w3"], {"w3": [{"kind": "upscaler", "files": {"esrgan": "/m/x4.pth"}}]}) == "w3"


def test_a_free_worker_leaves_a_job_to_the_free_worker_holding_its_model(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    queue = LocalQueue(store, EventBus(), Metrics(), limit=10)
    queue.report("w0", {"alive": True, "loaded": []})
    queue.report("w1", {"alive": True, "loaded": [{"kind": "diffusion", "files": {"model": "/m/a.safetensors"}}]})
    taken: dict[str, str] = {}
    holder_waiting = threading.Event()

    def w1_takes() -> None:
        holder_waiting.set()
        job = queue.take("w1", 10)
        if job is not None:
            taken["w1"] = job.id

    thread = threading.Thread(target=w1_takes)
    thread.start()
    holder_waiting.wait(5)
    while "w1" not in queue._waiting:  # the holder is free (waiting in a take)
        threading.Event().wait(0.005)
    job = queue.submit("txt2img", {"_context": {"model": "/m/a.safetensors"}})
    assert queue.take("w0", 0.2) is None  # left to w1
    thread.join(10)
    assert taken == {"w1": job.id}
    store.close()


def test_without_a_broker_redis_is_never_imported() -> None:
    code = ("import sys, sdrest.cli, sdrest.server.app, sdrest.jobs.service; sdrest.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith(('redis.', 'sdrest.broker.d', "
            "'sdrest.broker.r'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]", out.stdout
