"""The real workers with the synthetic models: generation, cancel, upscale, load/unload/switch, convert, hash."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

from PIL import Image
from server_live import LiveServer, sse_events, wait_job

from sdrest.jobs.outputs import parse_a1111_parameters

TINY = {"prompt": "a lovely cat", "width": 64, "height": 64, "steps": 1, "seed": 7, "model": "sd1",
        "sampling_method": "euler"}
FINAL = ("succeeded", "failed", "cancelled")


def png_b64(size: tuple[int, int], colour: tuple[int, int, int] = (120, 60, 30), mode: str = "RGB") -> str:
    buffer = io.BytesIO()
    Image.new(mode, size, colour if mode == "RGB" else 255).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_txt2img_follow_events_and_metadata(real_server: LiveServer) -> None:
    client = real_server.client
    response = client.post("/api/generate/text2img", json={**TINY, "steps": 2, "preview": True})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    events = sse_events(client, f"/api/queue/job/{job_id}/events",
                        lambda e: e["type"] == "state" and e["status"] in FINAL, timeout=300)
    assert events[-1]["status"] == "succeeded", events[-1]
    sampling = [e for e in events if e["type"] == "progress" and e["phase"] == "sampling"]
    assert [e["step"] for e in sampling][-1] == 2 and all("eta_seconds" in e for e in sampling)
    assert any(e["type"] == "preview" and e["image"].startswith("data:image/jpeg") for e in events)
    job = wait_job(client, job_id)
    image = Image.open(io.BytesIO(client.get(job["outputs"][0]["url"]).content))
    assert image.size == (64, 64)
    meta = parse_a1111_parameters(image.info["parameters"])
    sd1 = real_server.state.registry.get("checkpoints/sd1")
    expected_hash = hashlib.sha256(Path(sd1.path).read_bytes()).hexdigest()[:10]
    assert real_server.state.registry.hashes("checkpoints/sd1").autov2 == expected_hash  # the registry's hash
    assert meta["Model"] == "sd1" and meta["Model hash"] == expected_hash
    assert job["parameters"]["model"] == "checkpoints/sd1"
    assert meta["Seed"] == "7" and meta["Steps"] == "2" and meta["Sampler"] == "Euler" and meta["Size"] == "64x64"


def test_lora_from_the_prompt(real_server: LiveServer) -> None:
    client = real_server.client
    lora = client.post("/api/generate/text2img?wait=true", json={**TINY, "prompt": "a cat <lora:sd1_lora:0.8>"},
                       timeout=300).json()
    assert lora["status"] == "succeeded" and lora["parameters"]["loras"][0]["name"] == "sd1_lora"
    assert lora["parameters"]["prompt"] == "a cat"
    assert "_path" not in lora["parameters"]["loras"][0]  # no server paths in the API


def test_refused_by_what_the_header_says(real_server: LiveServer) -> None:
    video = real_server.client.post("/api/generate/video", json={"prompt": "x", "model": "sd1"})
    assert video.status_code == 422 and "SD 1.x" in video.json()["error"]["message"]
    vae = real_server.client.post("/api/generate/text2img", json={**TINY, "vae_model": "sd1_lora"})
    assert vae.status_code == 422 and vae.json()["error"]["field"] == "vae_model"


def test_cancel_running_within_a_step(real_server: LiveServer) -> None:
    client = real_server.client
    job_id = client.post("/api/generate/text2img", json={**TINY, "steps": 200}).json()["job_id"]
    after_cancel: list[dict] = []

    def stop(event: dict) -> bool:
        if after_cancel or (event["type"] == "progress" and event["steps"] == 200 and event["step"] == 1):
            if not after_cancel:
                assert client.post("/api/queue/cancel", json={"job_id": job_id}).json()["status"] == "cancelling"
            after_cancel.append(event)
        return event["type"] == "state" and event["status"] in FINAL

    sse_events(client, f"/api/queue/job/{job_id}/events", stop, timeout=300)
    assert after_cancel[-1]["status"] == "cancelled"
    steps = [e["step"] for e in after_cancel if e["type"] == "progress" and e["steps"] == 200]
    assert max(steps) <= 2, steps  # stopped within one step of the request


def test_skip_the_rest_of_a_batch(real_server: LiveServer) -> None:
    """Cancel mode new_latents: the image being sampled finishes, the others never start; the job succeeds."""
    client = real_server.client
    job_id = client.post("/api/generate/text2img", json={**TINY, "steps": 6, "batch_count": 3}).json()["job_id"]
    bad = client.post("/api/queue/cancel", json={"job_id": job_id, "mode": "later"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "mode"
    asked: list[dict] = []

    def stop(event: dict) -> bool:
        if not asked and event["type"] == "progress" and event["phase"] == "sampling" and event["step"] == 1:
            asked.append(client.post("/api/queue/cancel", json={"job_id": job_id, "mode": "new_latents"}).json())
        return event["type"] == "state" and event["status"] in FINAL

    events = sse_events(client, f"/api/queue/job/{job_id}/events", stop, timeout=300)
    assert asked == [{"job_id": job_id, "status": "cancelling"}]
    assert events[-1]["status"] == "succeeded", events[-1]
    job = wait_job(client, job_id)
    assert job["outputs"] and len(job["outputs"]) == 1, job["outputs"]
    assert job["result"]["seeds"] == [7] and job["result"]["requested"] == 3 and job["result"]["skipped"] == 2
    image = Image.open(io.BytesIO(client.get(job["outputs"][0]["url"]).content))
    assert image.size == (64, 64)
    # the worker stays usable, and a later batch in the same context is whole (sd.cpp forgot the request)
    whole = client.post("/api/generate/text2img?wait=true", json={**TINY, "batch_count": 2}, timeout=300).json()
    assert whole["status"] == "succeeded" and len(whole["outputs"]) == 2 and "skipped" not in whole["result"]


def test_img2img_and_inpainting(real_server: LiveServer) -> None:
    client = real_server.client
    img = client.post("/api/generate/img2img?wait=true", json={**TINY, "init_image": png_b64((64, 64)),
                                                                "strength": 0.5}, timeout=300).json()
    assert img["status"] == "succeeded", img
    inpaint = client.post("/api/generate/inpainting?wait=true", json={
        **TINY, "source_image": png_b64((64, 64)), "mask_image": png_b64((64, 64), mode="L")}, timeout=300).json()
    assert inpaint["status"] == "succeeded", inpaint
    meta = parse_a1111_parameters(Image.open(io.BytesIO(base64.b64decode(inpaint["images"][0]["data"]))).info["parameters"])
    assert meta["Denoising strength"] == "0.75"


def test_upscale(real_server: LiveServer) -> None:
    client = real_server.client
    body = client.post("/api/generate/upscale?wait=true", json={"image": png_b64((16, 16)),
                                                                 "esrgan_model": "esrgan_x4"}, timeout=300).json()
    assert body["status"] == "succeeded", body
    assert Image.open(io.BytesIO(base64.b64decode(body["images"][0]["data"]))).size == (64, 64)


def test_load_unload_and_switch(real_server: LiveServer) -> None:
    client = real_server.client
    queue = real_server.queue
    sd1 = client.get("/api/models", params={"search": "sd1.safetensors"}).json()["models"][0]
    assert sd1["id"] == "checkpoints/sd1"  # an id with a "/": the routes take it as a path
    assert client.post("/api/models/checkpoints/sd1/load", timeout=300).json()["loaded"] is True
    assert client.get("/api/models/checkpoints/sd1").json()["loaded"] is True
    loads = queue.metric("model_loads_total", kind="diffusion")
    assert wait_job(client, client.post("/api/generate/text2img", json=TINY).json()["job_id"])["status"] == "succeeded"
    assert queue.metric("model_loads_total", kind="diffusion") == loads  # kept loaded between jobs
    switched = client.post("/api/generate/text2img", json={**TINY, "taesd_model": "taesd"}).json()["job_id"]
    assert wait_job(client, switched)["status"] == "succeeded"
    assert queue.metric("model_loads_total", kind="diffusion") == loads + 1  # other companions: a new context
    assert client.post(f"/api/models/{sd1['id']}/unload").json()["loaded"] is False
    assert client.get("/api/status").json()["loaded_models"] == [] or all(
        m["kind"] != "diffusion" for m in client.get("/api/status").json()["loaded_models"])
    assert client.post(f"/api/models/{sd1['id']}/unload").status_code == 409
    lora = client.get("/api/models", params={"type": "lora"}).json()["models"][0]
    assert client.post(f"/api/models/{lora['id']}/load").status_code == 422


def test_convert_and_hash_jobs(real_server: LiveServer) -> None:
    client = real_server.client
    response = client.post("/api/models/convert", json={"model_name": "sd1_lora", "quantization_type": "q8_0"})
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["job_id"], timeout=300)
    assert job["status"] == "succeeded", job
    models_dir = real_server.state.config.models_dir
    converted = models_dir / "lora" / "sd1_lora.q8_0.gguf"
    assert converted.read_bytes()[:4] == b"GGUF"
    client.post("/api/models/refresh")
    assert client.get("/api/models", params={"search": "q8_0"}).json()["total"] == 1
    again = client.post("/api/models/convert", json={"model_name": "sd1_lora", "quantization_type": "q8_0"})
    assert again.status_code == 409
    hashed = client.post("/api/models/hash", json={"models": ["sd1_lora"]}).json()
    job = wait_job(client, hashed["job_id"])
    raw = (models_dir / "lora" / "sd1_lora.safetensors").read_bytes()
    expected = hashlib.sha256(raw).hexdigest()
    assert job["status"] == "succeeded", job
    assert job["result"]["hashes"]["lora/sd1_lora"] == {
        "sha256": expected, "autov2": expected[:10], "legacy": hashlib.sha256(raw[0x100000:0x110000]).hexdigest()[:8]}
    # cached by the registry with the file's (size, mtime): the listing shows it now
    listed = client.get("/api/models/lora/sd1_lora").json()
    assert listed["hashes"]["sha256"] == expected


def test_controlnet(real_server: LiveServer) -> None:
    client = real_server.client
    body = client.post("/api/generate/controlnet?wait=true", json={
        **TINY, "control_image": png_b64((64, 64)), "control_net_model": "sd1_controlnet", "control_strength": 0.8},
        timeout=300).json()
    assert body["status"] == "succeeded", body
    meta = parse_a1111_parameters(Image.open(io.BytesIO(base64.b64decode(body["images"][0]["data"]))).info["parameters"])
    assert meta["Control strength"] == "0.8"


def test_a_model_added_after_the_workers_started_can_be_hashed(real_server: LiveServer) -> None:
    client = real_server.client
    models_dir = real_server.state.config.models_dir
    source = models_dir / "lora" / "sd1_lora.safetensors"
    late = models_dir / "lora" / "late_arrival.safetensors"
    late.write_bytes(source.read_bytes())
    assert client.post("/api/models/refresh").json()["added"] == ["lora/late_arrival"]
    job = wait_job(client, client.post("/api/models/hash", json={"models": ["lora/late_arrival"]}).json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["hashes"]["lora/late_arrival"]["sha256"] == hashlib.sha256(late.read_bytes()).hexdigest()
