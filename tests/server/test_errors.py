"""Bad requests are refused before they reach the queue, as JSON errors with the right status."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from server_live import FakeRunner, LiveServer, until, wait_job

SERVER_SETTINGS = {"queue_limit": 2, "max_body_mb": 0.5}
BASE = {"prompt": "a cat", "width": 64, "height": 64, "steps": 2, "model": "fake"}


def png_b64(size: tuple[int, int] = (64, 64)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(("change", "field"), [
    ({"width": 100000}, "width"),
    ({"width": 100}, "width"),
    ({"steps": 1000000}, "steps"),
    ({"batch_count": 10000}, "batch_count"),
    ({"sampling_method": "warp_drive"}, "sampling_method"),
    ({"scheduler": "someday"}, "scheduler"),
    ({"loras": [{"name": "missing_lora", "multiplier": 1}]}, "loras[0]"),
    ({"prompt": "a cat <lora:missing:0.5>"}, "prompt"),
    ({"model": "style"}, "model"),
    ({"model": "no_such_model"}, "model"),
    ({"prompt": ""}, "prompt"),
    ({"seed": "soon"}, "seed"),
    ({"cfg_scale": "high"}, "cfg_scale"),
    ({"colour": "blue"}, "colour"),
])
def test_absurd_generation_requests_are_refused(fake_server: LiveServer, change: dict, field: str) -> None:
    response = fake_server.client.post("/api/generate/text2img", json={**BASE, **change})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field and error["code"] == "invalid" and field.split("[")[0] in error["message"]
    assert fake_server.client.get("/api/queue/status").json()["counts"]["queued"] == 0


def test_wrong_kind_message_names_the_kind(fake_server: LiveServer) -> None:
    error = fake_server.client.post("/api/generate/text2img", json={**BASE, "model": "style"}).json()["error"]
    assert "is a lora" in error["message"]


def test_image_fields(fake_server: LiveServer) -> None:
    client = fake_server.client
    bad = client.post("/api/generate/img2img", json={**BASE, "init_image": "not base64!"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "init_image"
    url = client.post("/api/generate/img2img", json={**BASE, "init_image": "http://169.254.169.254/x.png"})
    assert url.status_code == 422 and "URL" in url.json()["error"]["message"]
    missing = client.post("/api/generate/inpainting", json={**BASE, "source_image": png_b64()})
    assert missing.json()["error"]["field"] == "mask_image"
    mismatch = client.post("/api/generate/inpainting", json={**BASE, "source_image": png_b64(),
                                                              "mask_image": png_b64((32, 32))})
    assert mismatch.json()["error"]["field"] == "mask_image"
    ok = client.post("/api/generate/img2img", json={**BASE, "init_image": "data:image/png;base64," + png_b64()})
    assert ok.status_code == 202
    job = wait_job(client, ok.json()["job_id"])
    assert job["status"] == "succeeded" and job["parameters"]["strength"] == 0.75
    cn = client.post("/api/generate/controlnet", json={**BASE, "control_image": png_b64(),
                                                       "control_net_model": "fake"})
    assert cn.status_code == 422 and cn.json()["error"]["field"] == "control_net_model"
    up = client.post("/api/generate/upscale", json={"image": png_b64(), "esrgan_model": "fake"})
    assert up.status_code == 422 and "checkpoint" in up.json()["error"]["message"]


def test_malformed_and_unknown(fake_server: LiveServer) -> None:
    client = fake_server.client
    response = client.post("/api/generate/text2img", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
    assert client.post("/api/generate/text2img", json=[1, 2]).status_code == 400
    assert client.get("/api/queue/job/doesnotexist").status_code == 404
    assert client.get("/api/nothing/here").json()["error"]["code"] == "not_found"
    wrong = client.get("/api/generate/text2img")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


def test_body_too_large(fake_server: LiveServer) -> None:
    big = {**BASE, "prompt": "x" * (600 * 1024)}
    response = fake_server.client.post("/api/generate/text2img", json=big)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


def test_refusals_before_any_route_runs_come_in_the_dialects_shape(fake_server: LiveServer) -> None:
    big = "x" * (600 * 1024)
    cross_site = {"Origin": "https://evil.example"}
    client = fake_server.client
    for answer in (client.post("/sdapi/v1/txt2img", json={"prompt": big}),
                   client.post("/sdapi/v1/txt2img", json={"prompt": "a cat"}, headers=cross_site)):
        body = answer.json()  # AUTOMATIC1111's: {"error": "HTTPException", "detail": "..."}
        assert answer.status_code in (403, 413) and body["error"] == "HTTPException", body
        assert ("larger than" if answer.status_code == 413 else "cross-site") in body["detail"]
    for answer in (client.post("/v1/images/generations", json={"prompt": big}),
                   client.post("/v1/images/generations", json={"prompt": "a cat"}, headers=cross_site)):
        error = answer.json()["error"]  # OpenAI's: {"error": {"message", "type", "param", "code"}}
        assert answer.status_code in (403, 413) and error["code"] in ("too_large", "cross_site"), error
        assert {"message", "type", "param"} <= set(error) and error["type"].endswith("_error"), error
    native = client.post("/api/generate/text2img", json={"prompt": "a cat"}, headers=cross_site).json()
    assert native == {"error": {"code": "cross_site", "message": native["error"]["message"]}}


def test_queue_limit_gives_429_with_retry_after(fake_server: LiveServer, fake_runner: FakeRunner) -> None:
    client = fake_server.client
    fake_runner.hold.clear()
    first = client.post("/api/generate/text2img", json=BASE).json()["job_id"]
    until(fake_runner.started.is_set, 10, "the job did not start")
    waiting = [client.post("/api/generate/text2img", json=BASE) for _ in range(2)]
    assert [r.status_code for r in waiting] == [202, 202]
    refused = client.post("/api/generate/text2img", json=BASE)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "queue_full"
    fake_runner.hold.set()
    for job_id in [first, *(r.json()["job_id"] for r in waiting)]:
        assert wait_job(client, job_id)["status"] == "succeeded"
    assert client.post("/api/generate/text2img", json=BASE).status_code == 202
