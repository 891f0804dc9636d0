"""Submit, follow, poll, download, cancel, clear: the queue's mechanics through real HTTP (fake runner)."""

from __future__ import annotations

import base64
import io

from PIL import Image
from server_live import FakeRunner, LiveServer, sse_events, until, wait_job

from sdrest.jobs.outputs import parse_a1111_parameters

TXT2IMG = {"prompt": "a lovely cat", "negative_prompt": "blurry", "width": 64, "height": 64, "steps": 4,
           "cfg_scale": 5.0, "seed": 42, "model": "fake", "sampling_method": "euler"}


def submit(live: LiveServer, **overrides: object) -> str:
    response = live.client.post("/api/generate/text2img", json={**TXT2IMG, **overrides})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued" and body["events_url"].endswith("/events")
    return body["job_id"]


def test_submit_and_follow_events_to_the_end(fake_server: LiveServer) -> None:
    job_id = submit(fake_server)
    events = sse_events(fake_server.client, f"/api/queue/job/{job_id}/events",
                        lambda e: e["type"] == "state" and e["status"] in ("succeeded", "failed", "cancelled"))
    states = [e["status"] for e in events if e["type"] == "state"]
    assert states[-1] == "succeeded"
    assert "running" in states or events[0].get("snapshot")
    progress = [e for e in events if e["type"] == "progress"]
    if "running" in states:  # the stream opened before the job ran: it saw every step
        assert [e["step"] for e in progress] == [1, 2, 3, 4]
        assert progress[-1]["eta_seconds"] == 0 and progress[0]["eta_seconds"] > 0
    assert events[-1]["outputs"] == ["000.png"]


def test_events_of_a_held_job_include_every_step(fake_server: LiveServer, fake_runner: FakeRunner) -> None:
    fake_runner.hold.clear()
    job_id = submit(fake_server)
    until(fake_runner.started.is_set, 10, "the job did not start")
    seen: list[dict] = []

    def stop(event: dict) -> bool:
        if event["type"] == "state" and event.get("snapshot"):
            fake_runner.hold.set()  # the stream is open: let the job run
        return event["type"] == "state" and event["status"] == "succeeded"

    seen = sse_events(fake_server.client, f"/api/queue/job/{job_id}/events", stop)
    assert [e["step"] for e in seen if e["type"] == "progress"] == [1, 2, 3, 4]
    assert all(e["steps"] == 4 and "seconds_per_step" in e for e in seen if e["type"] == "progress")


def test_poll_download_thumbnail_and_png_metadata(fake_server: LiveServer) -> None:
    client = fake_server.client
    job = wait_job(client, submit(fake_server, batch_count=2))
    assert job["status"] == "succeeded" and job["progress"] == 1.0
    assert [o["filename"] for o in job["outputs"]] == ["000.png", "001.png"]
    assert "_context" not in job["parameters"] and job["parameters"]["prompt"] == "a lovely cat"
    response = client.get(job["outputs"][1]["url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert "filename=" in response.headers["content-disposition"]
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (64, 64)
    meta = parse_a1111_parameters(image.info["parameters"])
    assert meta["prompt"] == "a lovely cat" and meta["negative_prompt"] == "blurry"
    assert meta["Steps"] == "4" and meta["Seed"] == "43" and meta["Size"] == "64x64"
    assert meta["Sampler"] == "Euler" and meta["CFG scale"] == "5.0" and meta["Model"] == "fake"
    assert meta["Model hash"] == "0123456789"
    v1 = client.get(f"/api/v1/jobs/{job['id']}/output/000.png")
    assert v1.status_code == 200 and v1.content[:8] == b"\x89PNG\r\n\x1a\n"
    download = client.get(f"/api/v1/jobs/{job['id']}/output/000.png?download=1")
    assert download.headers["content-disposition"].startswith("attachment")
    thumb = client.get(job["outputs"][0]["url"].split("?")[0], params={"thumb": 1, "size": 32})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 32
    cached = fake_server.state.thumbs_dir / job["id"] / "000.32.webp"
    assert cached.is_file()
    assert client.get(job["outputs"][0]["url"].split("?")[0], params={"thumb": 1, "size": 32}).content == thumb.content
    assert client.get(f"/api/queue/job/{job['id']}/output/..%2Fjobs.sqlite3").status_code == 404
    assert client.get(f"/api/queue/job/{job['id']}/output/nope.png").json()["error"]["code"] == "not_found"


def test_wait_true_returns_the_images(fake_server: LiveServer) -> None:
    response = fake_server.client.post("/api/generate/text2img?wait=true", json=TXT2IMG)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    image = Image.open(io.BytesIO(base64.b64decode(body["images"][0]["data"])))
    assert image.size == (64, 64) and body["images"][0]["seed"] == 42


def test_cancel_queued_and_running(fake_server: LiveServer, fake_runner: FakeRunner) -> None:
    client = fake_server.client
    fake_runner.hold.clear()
    running = submit(fake_server)
    until(fake_runner.started.is_set, 10, "the job did not start")
    queued = submit(fake_server)
    assert client.get(f"/api/queue/job/{queued}").json()["queue_position"] == 1
    assert client.get(f"/api/queue/job/{running}").json()["status"] == "running"
    response = client.post("/api/queue/cancel", json={"job_id": queued})
    assert response.json() == {"job_id": queued, "status": "cancelled"}
    assert client.get(f"/api/queue/job/{queued}").json()["status"] == "cancelled"
    response = client.post("/api/queue/cancel", json={"job_id": running})
    assert response.json()["status"] == "cancelling"
    job = wait_job(client, running, timeout=10)
    assert job["status"] == "cancelled" and job["error"] == "cancelled while running"
    again = client.post("/api/queue/cancel", json={"job_id": running})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_finished"
    assert client.post("/api/queue/cancel", json={"job_id": "nope"}).status_code == 404
    assert client.post("/api/queue/cancel", json={}).json()["error"]["field"] == "job_id"
    fake_runner.hold.set()
    assert wait_job(client, submit(fake_server))["status"] == "succeeded"  # the worker lives on


def test_clear_queue(fake_server: LiveServer, fake_runner: FakeRunner) -> None:
    client = fake_server.client
    fake_runner.hold.clear()
    running = submit(fake_server)
    until(fake_runner.started.is_set, 10, "the job did not start")
    waiting = [submit(fake_server) for _ in range(3)]
    status = client.get("/api/queue/status").json()
    assert status["queue_size"] == 3 and status["running"] == 1
    assert [j["queue_position"] for j in status["jobs"] if j["status"] == "queued"] == [1, 2, 3]
    cleared = client.post("/api/queue/clear").json()
    assert sorted(cleared["job_ids"]) == sorted(waiting)
    assert all(client.get(f"/api/queue/job/{j}").json()["status"] == "cancelled" for j in waiting)
    fake_runner.hold.set()
    assert wait_job(client, running)["status"] == "succeeded"


def test_a_failing_job_does_not_take_the_worker_down(fake_server: LiveServer, fake_runner: FakeRunner) -> None:
    fake_runner.fail_next = "boom"
    failed = wait_job(fake_server.client, submit(fake_server))
    assert failed["status"] == "failed" and "boom" in failed["error"]
    assert wait_job(fake_server.client, submit(fake_server))["status"] == "succeeded"
    metrics = fake_server.client.get("/metrics").text
    assert 'sdrest_errors_total{kind="txt2img"} 1.0' in metrics
    assert 'sdrest_jobs_total{kind="txt2img",status="succeeded"} 1.0' in metrics


def test_global_event_stream_sees_every_job(fake_server: LiveServer, fake_runner: FakeRunner) -> None:
    fake_runner.hold.clear()
    first = submit(fake_server)
    until(fake_runner.started.is_set, 10, "the job did not start")
    second = submit(fake_server)
    done: set[str] = set()

    def stop(event: dict) -> bool:
        if event["type"] == "progress":
            pass
        if event["type"] == "state" and event["status"] == "succeeded":
            done.add(event["job_id"])
        return done == {first, second}

    with_release = _release_after_first_frame(fake_runner)
    events = sse_events(fake_server.client, "/api/events", lambda e: with_release(e) or stop(e))
    assert {e["job_id"] for e in events if e["type"] == "progress"} == {first, second}


def _release_after_first_frame(runner: FakeRunner):  # the stream is open once a frame arrives
    def release(event: dict) -> bool:
        runner.hold.set()
        return False
    return release
