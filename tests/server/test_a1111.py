"""The AUTOMATIC1111 dialect (``/sdapi/v1``) with the real, unmodified ``webuiapi`` client from PyPI, against one
live server with auth on and the synthetic models through the real workers.

Every generation is tiny (64x64, 1-2 steps) except those that must be caught mid-way (progress, interrupt, skip,
a client that leaves), which run 40 steps and are stopped once the progress shows a step done.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import webuiapi
from PIL import Image, ImageDraw
from server_live import AUTH_USERS, LiveServer, add_users, login, make_config, password_of, until, wait_job

from sdrest.auth.store import AuthStore
from sdrest.infotext import parse_infotext
from sdrest.server.app import create_app
from sdrest.server.routes import a1111 as a1111_routes

LONG = 40  # steps of a generation a test stops mid-way
TINY = {"width": 64, "height": 64, "steps": 1}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, synthetic_models: Path) -> Iterator[LiveServer]:
    """One server for the module: auth jwt, the users of AUTH_USERS, the synthetic models plus a second name for
    the checkpoint (a hard link), the first one the default."""
    os.link(synthetic_models / "checkpoints" / "sd1.safetensors", synthetic_models / "checkpoints" / "sd1b.safetensors")
    tmp = tmp_path_factory.mktemp("a1111")
    config = make_config(tmp, synthetic_models, auth="jwt", default_model="checkpoints/sd1")
    add_users(config.data_dir, AUTH_USERS)
    with LiveServer(create_app(config)) as server:
        yield server


def api_as(live: LiveServer, name: str) -> webuiapi.WebUIApi:
    """webuiapi as a user of AUTH_USERS (it sends HTTP Basic)."""
    return webuiapi.WebUIApi(host="127.0.0.1", port=live.port, username=name, password=password_of(name))


def basic(live: LiveServer, name: str, password: str | None = None) -> httpx.Client:
    """A plain HTTP client sending HTTP Basic as ``name``."""
    return httpx.Client(base_url=live.url, timeout=300, auth=(name, password or password_of(name)))


def bearer(live: LiveServer, name: str) -> httpx.Client:
    """A client of the native API as ``name``."""
    return httpx.Client(base_url=live.url, timeout=60,
                        headers={"Authorization": f"Bearer {login(live, name)['access_token']}"})


def picture(size: tuple[int, int]) -> Image.Image:
    """A test picture: a gradient with a dark square, so crops and pastes are told apart."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    ImageDraw.Draw(image).rectangle((2, 2, size[0] // 3, size[1] // 3), fill=(20, 40, 160))
    return image


def lora_hash(path: Path) -> str:
    """A1111's short hash of a safetensors LoRA: the sha256 of everything after its JSON header, 12 hex."""
    data = path.read_bytes()
    return hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()[:12]


def job_ids(client: httpx.Client) -> dict[str, dict[str, Any]]:
    """The jobs ``/api/queue/status`` shows the client (running, queued and recent), by id."""
    status = client.get("/api/queue/status").json()
    return {job["id"]: job for job in status["jobs"] + status["recent"]}


class Call(threading.Thread):
    """A webuiapi call on a thread, its result (or exception) kept."""

    def __init__(self, call: Any) -> None:
        super().__init__(daemon=True)
        self.call, self.result, self.error = call, None, None

    def run(self) -> None:
        try:
            self.result = self.call()
        except Exception as exc:  # noqa: BLE001  (reported by the test)
            self.error = exc


def running_job(api: webuiapi.WebUIApi, with_preview: bool = False) -> dict[str, Any]:
    """Poll ``progress`` until the caller's job has done a sampling step (and shows a preview, if asked)."""
    def ready() -> dict[str, Any] | None:
        progress = api.get_progress()
        state = progress["state"]
        if state["sampling_step"] >= 1 and (progress["current_image"] or not with_preview):
            return progress
        return None
    return until(ready, 300, "the job never reached a sampling step", interval=0.05)


# -- generation -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def made(live: LiveServer) -> webuiapi.WebUIApiResult:
    """alice's txt2img: two images, a LoRA from the prompt, A1111's sampler and scheduler names."""
    return api_as(live, "alice").txt2img(prompt="a lovely cat <lora:sd1_lora:0.5>", negative_prompt="blurry",
                                         seed=11, batch_size=2, sampler_name="DPM++ 2M", scheduler="Karras", **TINY)


def test_txt2img_images_info_and_infotext(made: webuiapi.WebUIApiResult, synthetic_models: Path) -> None:
    assert len(made.images) == 2 and all(image.size == (64, 64) for image in made.images)
    raw = json.loads(made.json["info"])
    assert made.info == raw and raw["seed"] == 11 and raw["all_seeds"] == [11, 12]
    assert raw["sampler_name"] == "DPM++ 2M" and raw["extra_generation_params"]["Schedule type"] == "Karras"
    assert made.parameters["prompt"] == "a lovely cat <lora:sd1_lora:0.5>" and made.parameters["batch_size"] == 2
    base64.b64decode(made.json["images"][0], validate=True)  # raw base64, no data: URL
    text = raw["infotexts"][0]
    assert made.images[0].info["parameters"] == text
    fields = parse_infotext(text)
    assert fields["prompt"] == "a lovely cat <lora:sd1_lora:0.5>" and fields["negative_prompt"] == "blurry"
    assert fields["Sampler"] == "DPM++ 2M" and fields["Schedule type"] == "Karras" and fields["Seed"] == "11"
    assert fields["Lora hashes"] == f"sd1_lora: {lora_hash(synthetic_models / 'lora' / 'sd1_lora.safetensors')}"
    with open(synthetic_models / "checkpoints" / "sd1.safetensors", "rb") as sd1:
        assert fields["Model hash"] == raw["sd_model_hash"] == hashlib.file_digest(sd1, "sha256").hexdigest()[:10]
    assert fields["Model"] == "sd1" and fields["Size"] == "64x64"


def test_jobs_go_through_the_queue_as_the_callers(live: LiveServer, made: webuiapi.WebUIApiResult) -> None:
    with bearer(live, "alice") as alice, bearer(live, "bob") as bob, bearer(live, "admin") as admin:
        mine = [job for job in job_ids(alice).values() if job["parameters"].get("seed") == 11]
        assert len(mine) == 1 and mine[0]["owner"] == "alice" and mine[0]["status"] == "succeeded"
        assert mine[0]["kind"] == "txt2img" and mine[0]["parameters"]["batch_count"] == 2
        assert mine[0]["id"] not in job_ids(bob)  # another user's job is not shown
        metrics = admin.get("/metrics").text
    assert 'sdrest_jobs_total{kind="txt2img",status="succeeded"}' in metrics


def test_png_info_reads_what_txt2img_wrote(live: LiveServer, made: webuiapi.WebUIApiResult) -> None:
    info = api_as(live, "alice").png_info(made.images[1])
    assert info.info == made.info["infotexts"][1] and info.info.startswith("a lovely cat")
    parameters = info.json["parameters"]
    assert parameters["Prompt"] == "a lovely cat <lora:sd1_lora:0.5>" and parameters["Sampler"] == "DPM++ 2M"
    assert parameters["Size-1"] == "64" and parameters["Seed"] == "12"


def test_img2img_with_a_mask(live: LiveServer) -> None:
    """webuiapi's defaults inpaint the masked region at full resolution: the answer has the original's size, and
    its pixels away from the mask are the original's."""
    source = picture((96, 64))
    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (60, 20, 80, 40))
    result = api_as(live, "alice").img2img(images=[source], mask_image=mask, prompt="a window", seed=6,
                                           denoising_strength=0.9, inpaint_full_res_padding=8,
                                           include_init_images=True, **TINY)
    assert [image.size for image in result.images] == [(96, 64)]
    out = result.images[0].convert("RGB")
    assert all(out.getpixel(xy) == source.getpixel(xy) for xy in ((0, 0), (2, 60), (95, 0), (40, 63)))
    assert result.parameters["init_images"] and result.parameters["mask"]  # include_init_images echoes them
    assert parse_infotext(result.info["infotexts"][0])["Denoising strength"] == "0.9"
    with bearer(live, "alice") as alice:
        assert "inpainting" in {job["kind"] for job in job_ids(alice).values()}


def test_img2img_resizes_as_asked(live: LiveServer) -> None:
    result = api_as(live, "alice").img2img(images=[picture((80, 48))], prompt="a hill", resize_mode=1,
                                           include_init_images=False, seed=3, **TINY)
    assert [image.size for image in result.images] == [(64, 64)]
    assert result.parameters["init_images"] is None and result.parameters["mask"] is None  # not echoed back


def test_extras_upscale_with_an_esrgan_model(live: LiveServer) -> None:
    api = api_as(live, "alice")
    upscalers = {u["name"]: u for u in api.get_upscalers()}
    assert upscalers["esrgan_x4"]["scale"] == 4 and "None" in upscalers
    single = api.extra_single_image(picture((64, 48)), upscaler_1="esrgan_x4", upscaling_resize=2)
    assert single.image.size == (128, 96) and "esrgan_x4" in single.json["html_info"]
    batch = api.extra_batch_images([picture((64, 64)), picture((32, 32))], upscaler_1="esrgan_x4",
                                   upscaling_resize=2)
    assert [image.size for image in batch.images] == [(128, 128), (64, 64)]
    sized = api.extra_single_image(picture((64, 64)), upscaler_1="esrgan_x4", resize_mode=1,
                                   upscaling_resize_w=100, upscaling_resize_h=60, upscaling_crop=True)
    assert sized.image.size == (100, 60)
    plain = api.extra_single_image(picture((64, 64)), upscaler_1="Lanczos", upscaling_resize=1.5)
    assert plain.image.size == (96, 96)
    with bearer(live, "alice") as alice:
        assert sum(job["kind"] == "upscale" for job in job_ids(alice).values()) >= 4  # the model ones were queued


# -- progress, interrupt, skip, a client that leaves ----------------------------------------------------------


def test_progress_then_interrupt_stops_the_job(live: LiveServer) -> None:
    api = api_as(live, "bob")
    api.set_options({"show_progress_every_n_steps": 1})  # a preview every step, for current_image
    idle = api.get_progress()
    assert idle["progress"] == 0 and idle["state"]["job_count"] == 0
    call = Call(lambda: api.txt2img(prompt="a slow cat", width=64, height=64, steps=LONG, seed=1))
    call.start()
    progress = running_job(api, with_preview=True)
    state = progress["state"]
    assert 0 < progress["progress"] < 1 and progress["eta_relative"] >= 0 and progress["textinfo"] == "Sampling"
    assert state["job_count"] == 1 and state["sampling_steps"] == LONG and state["job"] == "scripts_txt2img"
    Image.open(io.BytesIO(base64.b64decode(progress["current_image"]))).load()  # a preview that decodes
    assert api.interrupt() == {}
    call.join(120)
    assert not call.is_alive() and call.error is None and call.result.images == []
    with bearer(live, "bob") as bob:
        job = wait_job(bob, state["job_id"])
    assert job["status"] == "cancelled" and job["step"] < LONG  # it really stopped
    after = api.get_progress()
    assert after["state"]["interrupted"] is True and after["state"]["job_count"] == 0


def test_skip_ends_the_running_job(live: LiveServer) -> None:
    api = api_as(live, "bob")  # its job reaching a step also shows that the interrupted one freed the worker
    call = Call(lambda: api.txt2img(prompt="a skipped cat", width=64, height=64, steps=LONG, seed=4))
    call.start()
    job_id = running_job(api)["state"]["job_id"]
    assert api.skip() is None
    call.join(120)
    assert not call.is_alive() and call.error is None and call.result.images == []
    with bearer(live, "bob") as bob:
        job = wait_job(bob, job_id)
    assert job["status"] == "cancelled" and job["step"] < LONG
    assert api.get_progress()["state"]["skipped"] is True


def test_a_client_that_leaves_cancels_its_job(live: LiveServer) -> None:
    api = api_as(live, "bob")
    body = json.dumps({"prompt": "an abandoned cat", "width": 64, "height": 64, "steps": LONG}).encode()
    credentials = base64.b64encode(f"bob:{password_of('bob')}".encode())
    with socket.create_connection(("127.0.0.1", live.port), timeout=30) as sock:
        sock.sendall(b"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic " + credentials +
                     b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
                     b"\r\n\r\n" + body)
        job_id = running_job(api)["state"]["job_id"]
    with bearer(live, "bob") as bob:
        job = wait_job(bob, job_id)
    assert job["status"] == "cancelled" and job["step"] < LONG


# -- models, options, names -----------------------------------------------------------------------------------


def test_lists(live: LiveServer) -> None:
    api = api_as(live, "alice")
    models = {m["model_name"]: m for m in api.get_sd_models()}
    assert set(models) == {"sd1", "sd1b"} and models["sd1"]["filename"] == "checkpoints/sd1.safetensors"
    assert models["sd1"]["title"].startswith("sd1.safetensors")
    samplers = {s["name"]: s for s in api.get_samplers()}
    assert {"Euler a", "Euler", "DPM++ 2M", "LCM", "DDIM"} <= set(samplers)
    assert samplers["Euler a"]["aliases"] == ["k_euler_a", "k_euler_ancestral"]
    assert samplers["DPM++ 2M"]["options"] == {"scheduler": "karras"}
    assert {"automatic", "karras", "exponential", "sgm_uniform"} <= {s["name"] for s in api.get_schedulers()}
    assert {v["model_name"] for v in api.get_sd_vae()} >= {"sd1_vae.safetensors", "taesd.safetensors"}
    assert [lo["name"] for lo in api.get_loras()] == ["sd1_lora"]
    assert api.get_scripts() == {"txt2img": [], "img2img": []} and api.get_embeddings()["loaded"] == {}
    assert api.get_memory()["ram"]["total"] > 0
    assert api.refresh_checkpoints() is None
    with basic(live, "alice") as client:
        assert client.get("/sdapi/v1/script-info").json() == []
        assert client.post("/sdapi/v1/refresh-loras").status_code == 200


def test_set_model_switches_the_callers_later_jobs(live: LiveServer) -> None:
    alice, bob = api_as(live, "alice"), api_as(live, "bob")
    alice.util_set_model("SD1B")  # webuiapi lower-cases the name and picks the closest title
    assert alice.util_get_current_model().startswith("sd1b.safetensors")
    assert bob.util_get_current_model().startswith("sd1.safetensors")  # bob's options are his own
    result = alice.txt2img(prompt="a switched cat", seed=8, **TINY)
    assert parse_infotext(result.info["infotexts"][0])["Model"] == "sd1b" and result.info["sd_model_name"] == "sd1b"
    alice.set_options({"sd_model_checkpoint": "sd1.safetensors", "my_own_setting": [1, "two"]})
    options = alice.get_options()
    assert options["sd_model_checkpoint"].startswith("sd1.safetensors") and options["my_own_setting"] == [1, "two"]
    with basic(live, "alice") as client:
        for name in ("sd1", "checkpoints/sd1.safetensors", "SD1.SAFETENSORS"):
            assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": name}).status_code == 200, name
        refused = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "no-such-model"})
        override = client.post("/sdapi/v1/txt2img", json={"prompt": "x", **TINY,
                                                          "override_settings": {"sd_model_checkpoint": "nope"}})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "sd_model_checkpoint"]
    assert override.status_code == 422
    assert override.json()["detail"][0]["loc"] == ["body", "override_settings", "sd_model_checkpoint"]


@pytest.mark.parametrize(("body", "field"), [
    ({"prompt": "x", "sampler_name": "No Such Sampler"}, "sampler_name"),
    ({"prompt": "x", "scheduler": "wobbly"}, "scheduler"),
    ({"prompt": "x", "width": 65}, "width"),
    ({"prompt": "x", "batch_size": 1000}, "batch_size"),
    ({"prompt": "x", "enable_hr": True}, "enable_hr"),
    ({"prompt": "x", "alwayson_scripts": {"ControlNet": {"args": []}}}, "alwayson_scripts"),
    ({"prompt": "x <lora:no_such_lora:1>"}, "prompt"),
])
def test_refusals_name_the_a1111_field(live: LiveServer, body: dict[str, Any], field: str) -> None:
    with basic(live, "alice") as client:
        answer = client.post("/sdapi/v1/txt2img", json=body)
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", field] and problem["msg"].startswith(field)


def test_img2img_refusals(live: LiveServer) -> None:
    with basic(live, "alice") as client:
        missing = client.post("/sdapi/v1/img2img", json={"prompt": "x"})
        garbage = client.post("/sdapi/v1/img2img", json={"prompt": "x", "init_images": ["bm90IGFuIGltYWdl"]})
        upscaler = client.post("/sdapi/v1/extra-single-image", json={"image": webuiapi.raw_b64_img(picture((8, 8))),
                                                                      "upscaler_1": "R-ESRGAN 4x+"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "init_images"]
    assert garbage.status_code == 415 and isinstance(garbage.json()["detail"], str)
    assert upscaler.status_code == 422 and upscaler.json()["detail"][0]["loc"] == ["body", "upscaler_1"]


# -- who may call what ----------------------------------------------------------------------------------------


def _paths() -> list[tuple[str, str]]:
    return [(method, route.path) for route in a1111_routes.routes() for method in sorted(route.methods or ())
            if method != "HEAD"]


def test_every_route_needs_credentials(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as anonymous:
        for method, path in _paths():
            answer = anonymous.request(method, path, json={} if method == "POST" else None)
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.json()["detail"].startswith("Not authenticated: send HTTP Basic")
            assert answer.headers["www-authenticate"].startswith("Basic")
    # one wrong password only: failed passwords are counted (per user and per address) towards a back-off
    with basic(live, "alice", "wrong-password") as wrong:
        answer = wrong.get("/sdapi/v1/sd-models")
    assert answer.status_code == 401 and answer.json()["detail"]


def test_admin_only_and_api_keys(live: LiveServer) -> None:
    with basic(live, "alice") as alice, basic(live, "admin") as admin:
        refused = alice.get("/sdapi/v1/cmd-flags")
        assert refused.status_code == 403 and refused.json()["detail"] == "only an admin may do this"
        flags = admin.get("/sdapi/v1/cmd-flags").json()
        assert flags["api"] is True and "/" not in str(flags["ckpt_dir"])
    store = AuthStore(live.state.config.data_dir / "auth.sqlite3")
    try:
        key = store.add_key("alice", "a1111 test")[1]
    finally:
        store.close()
    api = webuiapi.WebUIApi(host="127.0.0.1", port=live.port, username="apikey", password=key)
    assert [m["model_name"] for m in api.get_sd_models()]
