"""Models, system and utility endpoints, the OpenAPI document and /metrics (fake runner, placeholder models)."""

from __future__ import annotations

import base64
import io

from openapi_spec_validator import validate as validate_openapi
from PIL import Image
from server_live import LiveServer, wait_job
from starlette.routing import Route


def png_b64(size: tuple[int, int] = (40, 30)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def decode(data_url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def test_openapi_document_validates_and_matches_the_routes(fake_server: LiveServer) -> None:
    document = fake_server.client.get("/api/openapi.json").json()
    validate_openapi(document)
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    served = {(r.path, m) for r in fake_server.app.routes if isinstance(r, Route) for m in (r.methods or ())
              if m != "HEAD"}
    assert documented == served
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            if method == "post" and path.startswith("/api/generate/"):
                assert "requestBody" in operation
    docs = fake_server.client.get("/api/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text


def test_models_listing(fake_server: LiveServer) -> None:
    client = fake_server.client
    body = client.get("/api/models").json()
    assert body["total"] == 5 and {m["type"] for m in body["models"]} == {"checkpoint", "lora", "esrgan", "controlnet"}
    assert all(not m["path"].startswith("/") for m in body["models"])
    checkpoints = client.get("/api/models", params={"type": "checkpoint", "sort_by": "name",
                                                    "sort_order": "desc"}).json()
    assert [m["name"] for m in checkpoints["models"]] == ["other", "fake"]
    page = client.get("/api/models", params={"limit": 2, "page": 3}).json()
    assert page["pages"] == 3 and len(page["models"]) == 1
    assert [m["name"] for m in client.get("/api/models", params={"search": "STY"}).json()["models"]] == ["style"]
    assert client.get("/api/models", params={"type": "nonsense"}).json()["error"]["field"] == "type"
    model_id = checkpoints["models"][0]["id"]
    one = client.get(f"/api/models/{model_id}").json()
    assert one["name"] == "other" and one["loaded"] is False
    assert client.get("/api/models/unknown").status_code == 404
    types = {t["type"]: t["count"] for t in client.get("/api/models/types").json()["types"]}
    assert types["checkpoint"] == 2 and types["lora"] == 1
    dirs = {d["name"]: d["count"] for d in client.get("/api/models/directories").json()["directories"]}
    assert dirs == {"checkpoints": 2, "controlnet": 1, "esrgan": 1, "lora": 1}
    stats = client.get("/api/models/stats").json()
    assert stats["total"] == 5 and stats["by_type"]["checkpoint"]["count"] == 2
    (fake_server.state.config.models_dir / "lora" / "new.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    assert client.post("/api/models/refresh").json()["models"] == 6
    valid = client.post("/api/models/validate", json={"model": "new"}).json()
    assert valid["valid"] is True and valid["type"] == "lora"
    (fake_server.state.config.models_dir / "lora" / "broken.gguf").write_bytes(b"nope")
    client.post("/api/models/refresh")
    broken = client.post("/api/models/validate", json={"model": "broken"}).json()
    assert broken["valid"] is False and "GGUF" in broken["problems"][0]
    assert client.post(f"/api/models/{model_id}/unload").status_code == 409
    batch = client.post("/api/models/batch", json={"operation": "unload", "models": ["fake", "nope"]}).json()
    assert [r["success"] for r in batch["results"]] == [False, False]


def test_hash_job(fake_server: LiveServer) -> None:
    client = fake_server.client
    # the fake runner stands in for every kind: this checks the request path and the job it queues
    response = client.post("/api/models/hash", json={"models": ["style"]})
    assert response.status_code == 202
    job = wait_job(client, response.json()["job_id"])
    assert job["kind"] == "hash" and job["parameters"]["models"] == ["style"]
    assert client.post("/api/models/hash", json={"models": []}).status_code == 422
    assert client.post("/api/models/hash", json={"models": ["nope"]}).status_code == 404


def test_convert_request_checks(fake_server: LiveServer) -> None:
    client = fake_server.client
    assert client.post("/api/models/convert", json={"model_name": "fake"}).json()["error"]["field"] == \
        "quantization_type"
    bad_type = client.post("/api/models/convert", json={"model_name": "fake", "quantization_type": "q1_zz"})
    assert bad_type.json()["error"]["field"] == "quantization_type"
    escape = client.post("/api/models/convert", json={"model_name": "fake", "quantization_type": "q8_0",
                                                      "output_path": "../../etc/evil.gguf"})
    assert escape.status_code == 422 and escape.json()["error"]["field"] == "output_path"
    ok = client.post("/api/models/convert", json={"model_name": "fake", "quantization_type": "q8_0"})
    assert ok.status_code == 202 and ok.json()["output_path"] == "checkpoints/fake.q8_0.gguf"


def test_system_endpoints(fake_server: LiveServer) -> None:
    client = fake_server.client
    assert client.get("/api/health").json()["status"] == "ok"
    status = client.get("/api/status").json()
    assert status["status"] == "running" and status["queue"]["limit"] == 100 and status["workers"][0]["alive"]
    system = client.get("/api/system").json()
    assert system["memory"]["total_mb"] > 0 and system["backend"] == "CPU" and "AVX" in system["sdcpp"]["system_info"]
    config = client.get("/api/config").json()
    assert config["host"] == "127.0.0.1" and config["queue_limit"] == 100
    assert client.get("/api/version").json()["version"]
    assert client.post("/api/system/restart").status_code == 503  # not under `sdrest serve`
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "sdrest_queue_depth 0" in metrics.text


def test_utility_endpoints(fake_server: LiveServer) -> None:
    client = fake_server.client
    assert "euler_a" in client.get("/api/samplers").json()["samplers"]
    assert "karras" in client.get("/api/schedulers").json()["schedulers"]
    params = client.get("/api/parameters").json()["parameters"]
    assert params["steps"]["maximum"] == 500 and "sdxl" in params["per_architecture"]
    good = client.post("/api/validate", json={"type": "text2img", "parameters": {"prompt": "x", "model": "fake"}})
    assert good.json() == {"valid": True, "errors": []}
    bad = client.post("/api/validate", json={"type": "text2img", "parameters": {"prompt": "x", "steps": 10**6}})
    assert bad.json()["valid"] is False and bad.json()["errors"][0]["field"] == "steps"
    estimate = client.post("/api/estimate", json={"type": "text2img", "parameters": {"width": 64, "height": 64}})
    assert estimate.status_code == 200 and "estimated_seconds" in estimate.json()
    resized = client.post("/api/image/resize", json={"image": png_b64(), "width": 20}).json()
    assert (resized["width"], resized["height"]) == (20, 15) and decode(resized["image"]).size == (20, 15)
    cropped = client.post("/api/image/crop", json={"image": png_b64(), "x": 5, "y": 5, "width": 10, "height": 8,
                                                  "format": "jpeg"}).json()
    assert decode(cropped["image"]).size == (10, 8) and cropped["image"].startswith("data:image/jpeg")
    outside = client.post("/api/image/crop", json={"image": png_b64(), "x": 500})
    assert outside.status_code == 422 and outside.json()["error"]["field"] == "x"
