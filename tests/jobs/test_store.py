"""The SQLite job store: states, queue order, atomic limits, recovery after a crash, retention."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from sdrest.jobs.store import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, JobStore


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    s = JobStore(tmp_path / "jobs.sqlite3")
    yield s
    s.close()


def test_lifecycle_and_positions(store: JobStore) -> None:
    a = store.create("txt2img", {"prompt": "a"}, owner="alice")
    b = store.create("txt2img", {"prompt": "b"})
    assert a is not None and b is not None and a.id != b.id and len(a.id) >= 22
    assert (a.status, a.position, b.position) == (QUEUED, 1, 2)
    claimed = store.claim_next("w0")
    assert claimed is not None and claimed.id == a.id and claimed.status == RUNNING and claimed.attempts == 1
    assert store.get(b.id).position == 1
    store.set_progress(a.id, 3, 4, "sampling")
    assert store.get(a.id).progress == 0.75
    done = store.finish(a.id, SUCCEEDED, outputs=["000.png"], result={"seeds": [1]})
    assert done is not None and done.outputs == ["000.png"] and done.progress == 1.0 and done.owner == "alice"
    assert store.finish(a.id, FAILED, error="late") is None  # final states are final
    assert store.cancel_queued(b.id) and not store.cancel_queued(b.id)
    assert store.counts() == {QUEUED: 0, RUNNING: 0, SUCCEEDED: 1, FAILED: 0, CANCELLED: 1}
    assert store.get("nope") is None


def test_limit_is_atomic_under_threads(store: JobStore) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def add() -> None:
        job = store.create("txt2img", {}, limit=5)
        with lock:
            results.append(job is not None)

    threads = [threading.Thread(target=add) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 5 and store.queued_count() == 5


def test_recovery_requeues_or_fails_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    first = JobStore(path)
    running = first.create("txt2img", {"n": 1})
    waiting = first.create("txt2img", {"n": 2})
    first.claim_next("w0")
    # no close(): as after kill -9, only committed transactions count
    second = JobStore(path)
    assert second.recover_interrupted(requeue=True) == [running.id]
    assert [j.id for j in second.list_jobs(statuses=[QUEUED])] == [running.id, waiting.id]  # keeps its place
    second.claim_next("w0")
    assert second.recover_interrupted(requeue=False) == [running.id]
    failed = second.get(running.id)
    assert failed.status == FAILED and "interrupted" in failed.error
    journal = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"
    first.close()
    second.close()


def test_clear_and_retention(store: JobStore) -> None:
    ids = [store.create("txt2img", {}).id for _ in range(3)]
    assert sorted(store.clear_queue()) == sorted(ids)
    assert store.delete_finished_before(time.time() - 3600) == []
    assert sorted(store.delete_finished_before(time.time() + 1)) == sorted(ids)
    assert store.counts()[CANCELLED] == 0


def test_recovery_stops_requeueing_at_the_attempt_limit(tmp_path: Path) -> None:
    """A job interrupted again and again (a crash loop) runs at most ``max_attempts`` times."""
    store = JobStore(tmp_path / "jobs.sqlite3")
    job = store.create("txt2img", {})
    for attempt in (1, 2):
        assert store.claim_next("w0").attempts == attempt
        assert store.recover_interrupted(requeue=True, max_attempts=3) == [job.id]
        assert store.get(job.id).status == QUEUED
    store.claim_next("w0")
    assert store.recover_interrupted(requeue=True, max_attempts=3) == [job.id]
    failed = store.get(job.id)
    assert failed.status == FAILED and failed.attempts == 3
    assert failed.error == "interrupted: the server stopped while it ran; not run again after 3 attempt(s)"
    assert store.claim_next("w0") is None
    store.close()
