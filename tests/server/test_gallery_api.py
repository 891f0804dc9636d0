"""The gallery's API on a real server (``auth jwt``, the stand-in runner): full-text search over the prompts with
filters and paging, stars, deleting a job with its files; every user sees only their own jobs, and every bad
input is a 4xx with a JSON message."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from server_live import LiveServer, until, wait_job

from sdrest.jobs.store import JobSearch, JobStore

JOBS = {  # prompt -> (owner, extra fields)
    "a red fox in the snow": ("alice", {"negative_prompt": "blurry"}),
    "a red barn at dusk": ("alice", {"width": 128, "height": 64}),
    "Crème brûlée on a plate": ("alice", {}),
    "a blue whale": ("bob", {"negative_prompt": "fox"}),
}


@pytest.fixture(scope="module")
def jobs(clients: dict[str, httpx.Client]) -> dict[str, dict[str, Any]]:
    """The finished jobs of :data:`JOBS`, by prompt (made in order, so the last is the newest)."""
    made = {}
    for prompt, (owner, extra) in JOBS.items():
        body = {"prompt": prompt, "steps": 1, "width": 64, "height": 64, **extra}
        response = clients[owner].post("/api/generate/text2img", json=body)
        assert response.status_code == 202, response.text
        made[prompt] = wait_job(clients[owner], response.json()["job_id"])
        assert made[prompt]["status"] == "succeeded"
    return made


def prompts(client: httpx.Client, **params: Any) -> list[str]:
    """The prompts a gallery search finds, in its order."""
    response = client.get("/api/gallery", params=params)
    assert response.status_code == 200, response.text
    return [job["parameters"]["prompt"] for job in response.json()["jobs"]]


def test_search_by_words_of_the_prompt_and_negative_prompt(clients: dict[str, httpx.Client],
                                                           jobs: dict[str, Any]) -> None:
    alice, admin = clients["alice"], clients["admin"]
    assert prompts(alice) == ["Crème brûlée on a plate", "a red barn at dusk", "a red fox in the snow"]  # newest first
    assert prompts(alice, q="red") == ["a red barn at dusk", "a red fox in the snow"]
    assert prompts(alice, q="RED fo") == ["a red fox in the snow"]  # every word, each a prefix, any case
    assert prompts(alice, q="blurry") == ["a red fox in the snow"]  # the negative prompt too
    assert prompts(alice, q="creme brulee") == ["Crème brûlée on a plate"]  # accents folded
    assert prompts(alice, q="whale") == []  # bob's
    assert prompts(admin, q="fox") == ["a blue whale", "a red fox in the snow"]  # an admin: everyone's
    body = admin.get("/api/gallery", params={"q": "whale"}).json()
    job = body["jobs"][0]
    assert body["total"] == 1 and body["next_cursor"] is None and job["owner"] == "bob" and job["starred"] is False
    output = job["outputs"][0]
    assert output["url"].endswith("/output/000.png") and "thumb=1" in output["thumbnail_url"]
    assert "signed_url" in output
    assert "_context" not in job["parameters"]  # server paths stay inside


@pytest.mark.parametrize("text", ['"', '""', "*", "a*", "NEAR(a b)", "a AND", "OR", "NOT fox", "(", ")", "^red",
                                  "prompt:fox", "-fox", "+", "fox\"*", "'", "\\", "a:b:c", "{prompt}: x", "ﬁ ß 🦊"])
def test_fts_syntax_in_the_text_is_only_text(clients: dict[str, httpx.Client], jobs: dict[str, Any],
                                             text: str) -> None:
    response = clients["alice"].get("/api/gallery", params={"q": text})
    assert response.status_code == 200, response.text


def test_filters_and_paging(clients: dict[str, httpx.Client], jobs: dict[str, Any]) -> None:
    alice = clients["alice"]
    assert prompts(alice, width=128) == ["a red barn at dusk"]
    assert prompts(alice, width=64, height=64) == ["Crème brûlée on a plate", "a red fox in the snow"]
    assert len(prompts(alice, model="checkpoints/fake")) == 3 and prompts(alice, model="checkpoints/none") == []
    assert prompts(alice, kind="upscale") == [] and len(prompts(alice, kind="txt2img")) == 3
    assert prompts(alice, status="failed") == [] and len(prompts(alice, status="any")) >= 3
    fox = jobs["a red fox in the snow"]
    created = fox["created_at"]
    assert prompts(alice, since=int(created) + 1, q="fox") == []
    assert prompts(alice, since=int(created), q="fox") == ["a red fox in the snow"]
    today = time.strftime("%Y-%m-%d", time.gmtime(created))
    assert prompts(alice, since=today, until=today, q="fox") == ["a red fox in the snow"]  # until: the whole day
    assert prompts(alice, until="2000-01-01T00:00:00+00:00") == []
    pages, cursor = [], 0
    while True:
        body = alice.get("/api/gallery", params={"limit": 2, "cursor": cursor}).json()
        assert body["total"] == 3
        pages.append([j["parameters"]["prompt"] for j in body["jobs"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [["Crème brûlée on a plate", "a red barn at dusk"], ["a red fox in the snow"]]


def test_star_and_unstar(clients: dict[str, httpx.Client], jobs: dict[str, Any]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    barn = jobs["a red barn at dusk"]["id"]
    assert alice.put(f"/api/queue/job/{barn}/star").json() == {"job_id": barn, "starred": True}
    assert alice.put(f"/api/queue/job/{barn}/star").status_code == 200  # idempotent
    assert prompts(alice, starred="true") == ["a red barn at dusk"]
    assert alice.get("/api/gallery", params={"q": "barn"}).json()["jobs"][0]["starred"] is True
    # another user's job does not exist for bob
    response = bob.put(f"/api/queue/job/{barn}/star")
    assert response.status_code == 404 and response.json()["error"]["field"] == "job_id"
    assert bob.delete(f"/api/queue/job/{barn}/star").status_code == 404
    assert alice.delete(f"/api/queue/job/{barn}/star").json() == {"job_id": barn, "starred": False}
    assert prompts(alice, starred="true") == []


def test_delete_removes_the_job_and_its_files(auth_server: LiveServer, clients: dict[str, httpx.Client]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    response = alice.post("/api/generate/text2img", json={"prompt": "a doomed teapot", "steps": 1, "width": 64,
                                                          "height": 64})
    job = wait_job(alice, response.json()["job_id"])
    thumb = alice.get(job["outputs"][0]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    data = auth_server.state.config.data_dir
    folders = [data / name / job["id"] for name in ("outputs", "thumbnails")]
    assert all(folder.is_dir() for folder in folders)
    assert bob.delete(f"/api/queue/job/{job['id']}").status_code == 404  # not bob's
    response = alice.delete(f"/api/queue/job/{job['id']}")
    assert response.status_code == 200 and response.json() == {"job_id": job["id"], "deleted": True}
    assert not any(folder.exists() for folder in folders)
    assert alice.get(f"/api/queue/job/{job['id']}").status_code == 404
    assert alice.delete(f"/api/queue/job/{job['id']}").status_code == 404
    assert prompts(alice, q="teapot") == []


def test_a_queued_or_running_job_cannot_be_deleted(auth_server: LiveServer, clients: dict[str, httpx.Client]) -> None:
    alice = clients["alice"]
    runner = auth_server.runner
    runner.hold.clear()
    try:
        ids = [alice.post("/api/generate/text2img", json={"prompt": f"a held kite {i}", "steps": 1, "width": 64,
                                                         "height": 64}).json()["job_id"] for i in range(2)]
        until(lambda: auth_server.queue.get(ids[0]).status == "running", 30, "the job did not start")
        for job_id, status in zip(ids, ("running", "queued")):
            response = alice.delete(f"/api/queue/job/{job_id}")
            assert response.status_code == 409, response.text
            error = response.json()["error"]
            assert error["code"] == "not_finished" and status in error["message"] and "cancel" in error["message"]
    finally:
        runner.hold.set()
    for job_id in ids:
        wait_job(alice, job_id)
        assert alice.delete(f"/api/queue/job/{job_id}").status_code == 200


@pytest.mark.parametrize("params, field", [
    ({"width": "wide"}, "width"), ({"height": "-1"}, "height"), ({"limit": "0"}, "limit"), ({"cursor": "-5"}, "cursor"),
    ({"since": "yesterday"}, "since"), ({"until": "2026-13-40"}, "until"), ({"since": "9" * 50}, "since"),
    ({"starred": "maybe"}, "starred"), ({"status": "done"}, "status"), ({"kind": "poem"}, "kind"),
    ({"q": "x" * 501}, "q"), ({"q": "a\x00b"}, "q"), ({"since": "2026-01-02", "until": "2026-01-01"}, "until"),
])
def test_bad_queries_are_400_naming_the_parameter(clients: dict[str, httpx.Client], params: dict[str, str],
                                                  field: str) -> None:
    response = clients["alice"].get("/api/gallery", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_the_gallery_needs_credentials(auth_server: LiveServer, jobs: dict[str, Any]) -> None:
    assert auth_server.client.get("/api/gallery").status_code == 401
    fox = jobs["a red fox in the snow"]["id"]
    assert auth_server.client.delete(f"/api/queue/job/{fox}").status_code == 401
    assert auth_server.client.put(f"/api/queue/job/{fox}/star").status_code == 401


def test_an_older_store_gets_the_index_and_the_star_column(tmp_path: Any) -> None:
    import sqlite3

    path = tmp_path / "jobs.sqlite3"
    old = JobStore(path)
    job = old.create("txt2img", {"prompt": "an old lighthouse", "negative_prompt": "fog"}, owner="alice")
    old.close()
    db = sqlite3.connect(path)  # as a store made before the gallery left it
    db.executescript("DROP TRIGGER jobs_fts_insert; DROP TRIGGER jobs_fts_delete; DROP TRIGGER jobs_fts_update; "
                     "DROP TABLE jobs_fts; ALTER TABLE jobs DROP COLUMN starred;")
    db.close()
    store = JobStore(path)
    try:
        found = store.search(JobSearch(text="lighthouse", statuses=()))
        assert [j.id for j in found.jobs] == [job.id] and found.starred == set()
        assert [j.id for j in store.search(JobSearch(text="fog", statuses=())).jobs] == [job.id]
        assert store.set_starred(job.id, True) and store.search(JobSearch(starred=True, statuses=())).total == 1
        assert not store.delete_finished(job.id)  # still queued
    finally:
        store.close()
