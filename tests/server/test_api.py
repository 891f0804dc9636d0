"""Models, system and utility endpoints, the OpenAPI document and /metrics (fake runner, placeholder models)."""

from __future__ import annotations

import base64
import io
import re

from conftest import CLIP_L, FLUX_VAE, SD1_LORA, write_flux, write_model
from openapi_spec_validator import validate as validate_openapi
from PIL import Image
from server_live import LiveServer, wait_job
from starlette.routing import Route

from sdrest.server.spec import ApiRoute


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
    served = {(re.sub(r"{([^}:]+):[^}]+}", r"{\1}", r.path), m) for r in fake_server.app.routes
              if isinstance(r, ApiRoute) for m in (r.methods or ()) if m != "HEAD"}
    assert documented == served
    # the only routes the document leaves out: the web UI's pages and files
    others = {r.path for r in fake_server.app.routes if isinstance(r, Route) and not isinstance(r, ApiRoute)}
    assert others == {"/", "/ui", "/ui/{path:path}"}
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
    assert {m["id"] for m in body["models"]} == {"checkpoints/fake", "checkpoints/other", "lora/style", "esrgan/x4",
                                                 "controlnet/canny"}  # the registry's ids
    assert all(not m["path"].startswith("/") for m in body["models"])
    checkpoints = client.get("/api/models", params={"type": "checkpoint", "sort_by": "name",
                                                    "sort_order": "desc"}).json()
    assert [m["name"] for m in checkpoints["models"]] == ["other", "fake"]
    assert checkpoints["models"][0]["architecture"] == "SD 1.x"
    page = client.get("/api/models", params={"limit": 2, "page": 3}).json()
    assert page["pages"] == 3 and len(page["models"]) == 1
    assert [m["name"] for m in client.get("/api/models", params={"search": "STY"}).json()["models"]] == ["style"]
    assert client.get("/api/models", params={"architecture": "ESRGAN"}).json()["total"] == 1
    assert client.get("/api/models", params={"type": "nonsense"}).json()["error"]["field"] == "type"
    model_id = checkpoints["models"][0]["id"]
    assert model_id == "checkpoints/other"
    one = client.get(f"/api/models/{model_id}").json()
    assert one["name"] == "other" and one["loaded"] is False
    assert one["companions"]["complete"] is True and sorted(one["companions"]["contained"]) == ["clip_l", "vae"]
    assert client.get("/api/models/unknown").status_code == 404
    types = {t["type"]: t["count"] for t in client.get("/api/models/types").json()["types"]}
    assert types["checkpoint"] == 2 and types["lora"] == 1
    dirs = {d["name"]: d["count"] for d in client.get("/api/models/directories").json()["directories"]}
    assert dirs == {"checkpoints": 2, "controlnet": 1, "esrgan": 1, "lora": 1}
    stats = client.get("/api/models/stats").json()
    assert stats["total"] == 5 and stats["by_type"]["checkpoint"]["count"] == 2
    write_model(fake_server.state.config.models_dir, "lora/new.safetensors", SD1_LORA)
    refreshed = client.post("/api/models/refresh").json()
    assert refreshed["models"] == 6 and refreshed["added"] == ["lora/new"]
    valid = client.post("/api/models/validate", json={"model": "new"}).json()
    assert valid["valid"] is True and valid["type"] == "lora" and valid["id"] == "lora/new"
    (fake_server.state.config.models_dir / "lora" / "broken.gguf").write_bytes(b"nope")
    client.post("/api/models/refresh")
    broken = client.post("/api/models/validate", json={"model": "broken"}).json()
    assert broken["valid"] is False and broken["type"] == "unknown" and broken["problems"]
    assert client.post(f"/api/models/{model_id}/unload").status_code == 409
    batch = client.post("/api/models/batch", json={"operation": "unload", "models": ["fake", "nope"]}).json()
    assert [r["success"] for r in batch["results"]] == [False, False]


def test_ids_with_a_slash(fake_server: LiveServer) -> None:
    client = fake_server.client
    one = client.get("/api/models/checkpoints/fake")
    assert one.status_code == 200 and one.json()["id"] == "checkpoints/fake"
    assert client.get("/api/models/checkpoints/fake.safetensors").json()["id"] == "checkpoints/fake"  # rel path
    assert client.get("/api/models/checkpoints%2Ffake").json()["id"] == "checkpoints/fake"  # an encoded "/"
    not_loaded = client.post("/api/models/checkpoints/fake/unload")
    assert not_loaded.status_code == 409 and not_loaded.json()["error"]["code"] == "not_loaded"
    lora = client.post("/api/models/lora/style/load")  # found through the id, refused for its kind
    assert lora.status_code == 422 and "lora" in lora.json()["error"]["message"]
    assert client.post("/api/models/lora/nope/load").status_code == 404
    # the suffixed routes do not shadow a GET, and a GET does not swallow the fixed routes
    assert client.get("/api/models/checkpoints/fake/load").status_code in (404, 405)
    for fixed in ("types", "directories", "stats"):
        assert client.get(f"/api/models/{fixed}").status_code == 200, fixed
    assert client.post("/api/models/refresh").status_code == 200
    # a model whose file name is "load" still gets its own routes
    write_model(fake_server.state.config.models_dir, "lora/load.safetensors", SD1_LORA)
    client.post("/api/models/refresh")
    assert client.get("/api/models/lora/load").json()["id"] == "lora/load"
    assert client.post("/api/models/lora/load/unload").status_code == 409


def test_missing_companion_is_refused_before_queueing(fake_server: LiveServer) -> None:
    client = fake_server.client
    root = fake_server.state.config.models_dir
    write_flux(root)
    client.post("/api/models/refresh")
    flux = client.get("/api/models/diffusion_models/flux-dev").json()
    assert flux["type"] == "diffusion_model" and flux["companions"]["missing"] == ["vae", "clip_l", "t5xxl"]
    request = {"prompt": "x", "model": "diffusion_models/flux-dev", "width": 64, "height": 64, "steps": 1}
    refused = client.post("/api/generate/text2img", json=request)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "missing_companion" and error["field"] == "vae_model"
    assert all(role in error["message"] for role in ("vae", "clip_l", "t5xxl"))
    load = client.post("/api/models/diffusion_models/flux-dev/load")
    assert load.status_code == 422 and "vae" in load.json()["error"]["message"]
    assert not fake_server.queue.list_jobs()  # nothing was queued
    write_model(root, "vae/ae.safetensors", FLUX_VAE)
    write_model(root, "text_encoders/clip/clip_l.safetensors", CLIP_L)
    client.post("/api/models/refresh")
    still = client.post("/api/generate/text2img", json={**request, "model": "flux-dev"})  # by file name too
    assert still.status_code == 422 and still.json()["error"]["field"] == "t5xxl_model"
    assert "needs companion files the models dir lacks: t5xxl (t5xxl_model)" in still.json()["error"]["message"]
    assert not fake_server.queue.list_jobs()
    write_model(root, "text_encoders/t5xxl/t5.safetensors",
                [("shared.weight", (32128, 4096)), ("encoder.block.0.layer.0.SelfAttention.q.weight", (4096, 4096))])
    client.post("/api/models/refresh")
    accepted = client.post("/api/generate/text2img", json=request)
    assert accepted.status_code == 202, accepted.text
    context = fake_server.queue.get(accepted.json()["job_id"]).params["_context"]
    assert set(context) == {"diffusion_model", "vae", "clip_l", "t5xxl"}
    assert context["vae"].endswith("vae/ae.safetensors") and context["t5xxl"].endswith("t5.safetensors")


def test_hash_job(fake_server: LiveServer) -> None:
    client = fake_server.client
    # the fake runner stands in for every kind: this checks the request path and the job it queues
    response = client.post("/api/models/hash", json={"models": ["style"]})
    assert response.status_code == 202
    job = wait_job(client, response.json()["job_id"])
    assert job["kind"] == "hash" and job["parameters"]["models"] == ["lora/style"]
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
    unknown = client.post("/api/models/convert", json={"model_name": "nope", "quantization_type": "q8_0"})
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "model_name"
    ok = client.post("/api/models/convert", json={"model_name": "checkpoints/fake", "quantization_type": "q8_0"})
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
    assert params["steps"]["maximum"] == 500 and "SDXL" in params["per_architecture"]
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
