"""Links in the models dir through the HTTP API: a link to a file that is not a model (``/etc/passwd``)
is not listed, hashed or served, and no response carries its bytes; a model linked in from another tool's
folder is served and hashed, unless ``models_links: inside`` refuses links leading out of the models dir."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import SD1_LORA, write_model
from server_live import LiveServer, make_config, wait_job

from sdrest.jobs.tasks import run_task
from sdrest.server.app import create_app

SECRET = b"root:x:0:0:root:/root:/bin/bash\nsshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/sbin/nologin\n"
"""A stand-in for /etc/passwd (the host's own may differ or be missing)."""
SECRET_SHA256 = hashlib.sha256(SECRET).hexdigest()
SECRET_NUMBERS = {str(int.from_bytes(SECRET[i : i + n], order)) for i in (0, 4, 8) for n in (4, 8)  # type: ignore[arg-type]
                  for order in ("little", "big")}
"""The first bytes read as numbers, as a header reader once put them in its messages (``root:x:0``)."""

PASSWD_LINKS = ("checkpoints/passwd.safetensors", "lora/passwd.ckpt", "esrgan/passwd.pth", "passwd.gguf")
PASSWD_IDS = ("checkpoints/passwd", "lora/passwd", "esrgan/passwd", "passwd")


def assert_clean(response: httpx.Response) -> None:
    """The response says nothing of the secret file: no bytes, no numbers read from it, not its hash."""
    text = response.text
    for run in ("root:x", "/bin/bash", "nologin", "Privilege"):
        assert run not in text, f"{run!r} in {response.request.url}: {text}"
    for number in SECRET_NUMBERS:
        assert number not in text, f"{number} in {response.request.url}: {text}"
    assert SECRET_SHA256 not in text and SECRET_SHA256[:10] not in text


@pytest.fixture
def linked_models(tmp_path: Path, fake_models: Path) -> Path:
    """``fake_models`` with links to a passwd-like file and to a LoRA in another tool's folder.

    Requested before ``fake_server``, so the server's first scan sees the links."""
    secret = tmp_path / "etc" / "passwd"
    secret.parent.mkdir()
    secret.write_bytes(SECRET)
    for rel in PASSWD_LINKS:
        (fake_models / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake_models / rel).symlink_to(secret)
    elsewhere = write_model(tmp_path / "comfyui", "models/loras/ink.safetensors", SD1_LORA)
    (fake_models / "lora" / "ink.safetensors").symlink_to(elsewhere)
    (fake_models / "checkpoints" / "up").symlink_to("..", target_is_directory=True)  # a loop
    (fake_models / "lora" / "self.safetensors").symlink_to("self.safetensors")  # another
    return fake_models


def test_links_to_non_models_are_not_listed(linked_models: Path, fake_server: LiveServer) -> None:
    client = fake_server.client
    listing = client.get("/api/models", params={"limit": 1000})
    assert listing.status_code == 200
    ids = {m["id"] for m in listing.json()["models"]}
    assert "lora/ink" in ids  # a model linked in from elsewhere is followed
    assert not ids & set(PASSWD_IDS) and not any("passwd" in i or "self" in i for i in ids)
    assert not any(i.startswith("checkpoints/up/") for i in ids)  # the loop added nothing
    assert_clean(listing)
    assert client.get("/api/models", params={"search": "passwd"}).json()["total"] == 0
    for path in ("/api/models/stats", "/api/models/types", "/api/models/directories"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_clean(response)
    refreshed = client.post("/api/models/refresh")
    assert refreshed.status_code == 200
    assert_clean(refreshed)


def test_links_to_non_models_are_not_served(linked_models: Path, fake_server: LiveServer) -> None:
    client = fake_server.client
    for model_id in PASSWD_IDS:
        for response in (client.get(f"/api/models/{model_id}"), client.post(f"/api/models/{model_id}/load")):
            assert response.status_code == 404, (response.request.url, response.text)
            assert_clean(response)
        # validate says why the file is left out, without its bytes
        checked = client.post("/api/models/validate", json={"model": model_id})
        assert checked.status_code == 200, checked.text
        verdict = checked.json()
        assert verdict["valid"] is False and verdict["type"] == "unknown" and verdict["id"] == model_id
        assert verdict["problems"][0].startswith("not a model file: ")
        assert_clean(checked)
        generate = client.post("/api/generate/text2img", json={"prompt": "x", "model": model_id, "steps": 1,
                                                               "width": 64, "height": 64})
        assert generate.status_code == 422, generate.text
        assert_clean(generate)
        upscale = client.post("/api/models/convert", json={"model_name": model_id, "quantization_type": "q8_0"})
        assert upscale.status_code in (404, 422), upscale.text
        assert_clean(upscale)


def test_hash_endpoint_refuses_links_to_non_models(linked_models: Path, fake_server: LiveServer) -> None:
    client = fake_server.client
    for model_id in PASSWD_IDS:
        response = client.post("/api/models/hash", json={"models": [model_id]})
        assert response.status_code == 404, response.text
        assert response.json()["error"]["field"] == "models"
        assert_clean(response)
    mixed = client.post("/api/models/hash", json={"models": ["lora/ink", "lora/passwd"]})
    assert mixed.status_code == 404  # nothing is queued when one of them is refused
    assert_clean(mixed)


@pytest.fixture
def hashing_server(tmp_path: Path, linked_models: Path) -> Iterator[LiveServer]:
    """The server with the real task runner (hash jobs read the files; nothing native runs)."""
    with LiveServer(create_app(make_config(tmp_path / "real", linked_models), runner=run_task)) as live:
        yield live


def test_a_model_linked_in_is_hashed(hashing_server: LiveServer, linked_models: Path) -> None:
    client = hashing_server.client
    accepted = client.post("/api/models/hash", json={"models": ["lora/ink"]})
    assert accepted.status_code == 202, accepted.text
    job = wait_job(client, accepted.json()["job_id"])
    assert job["status"] == "succeeded", job
    raw = (linked_models / "lora" / "ink.safetensors").read_bytes()
    assert job["result"]["hashes"]["lora/ink"]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert_clean(client.get(f"/api/queue/job/{job['id']}"))


def test_a_link_retargeted_after_the_scan_is_not_hashed(hashing_server: LiveServer, linked_models: Path,
                                                          tmp_path: Path) -> None:
    client = hashing_server.client
    assert "lora/ink" in {m["id"] for m in client.get("/api/models", params={"limit": 1000}).json()["models"]}
    link = linked_models / "lora" / "ink.safetensors"
    link.unlink()
    link.symlink_to(tmp_path / "etc" / "passwd")  # behind the server's back: no refresh
    refused = client.post("/api/models/hash", json={"models": ["lora/ink"]})
    assert refused.status_code == 404, refused.text  # the request's rescan saw what the link leads to now
    assert_clean(refused)
    assert "lora/ink" not in {m["id"] for m in client.get("/api/models", params={"limit": 1000}).json()["models"]}
    status = client.get("/api/queue/status")
    assert status.status_code == 200
    assert_clean(status)


@pytest.fixture
def hardened_server(tmp_path: Path, linked_models: Path) -> Iterator[LiveServer]:
    """The server with ``models_links: inside``."""
    config = make_config(tmp_path / "hardened", linked_models, models_links="inside")
    with LiveServer(create_app(config, runner=run_task)) as live:
        yield live


def test_models_links_inside_refuses_links_leading_out(hardened_server: LiveServer, linked_models: Path) -> None:
    client = hardened_server.client
    ids = {m["id"] for m in client.get("/api/models", params={"limit": 1000}).json()["models"]}
    assert "lora/ink" not in ids and "lora/style" in ids
    refused = client.post("/api/models/hash", json={"models": ["lora/ink"]})
    assert refused.status_code == 404 and refused.json()["error"]["field"] == "models"
    assert client.get("/api/models/lora/ink").status_code == 404
    # a link that stays inside the models dir is still followed
    (linked_models / "lora" / "alias.safetensors").symlink_to("style.safetensors")
    client.post("/api/models/refresh")
    accepted = client.post("/api/models/hash", json={"models": ["lora/alias"]})
    assert accepted.status_code == 202, accepted.text
    job = wait_job(client, accepted.json()["job_id"])
    raw = (linked_models / "lora" / "style.safetensors").read_bytes()
    assert job["result"]["hashes"]["lora/alias"]["sha256"] == hashlib.sha256(raw).hexdigest()


def test_models_links_setting_is_read_and_checked() -> None:
    from sdrest.config import load_config

    assert load_config(environ={}).models_links == "follow"
    assert load_config(environ={"SDREST_MODELS_LINKS": "inside"}).models_links == "inside"
    assert load_config(flags={"models_links": "follow"}, environ={"SDREST_MODELS_LINKS": "inside"}).models_links \
        == "follow"
    with pytest.raises(ValueError, match="models_links"):
        load_config(environ={"SDREST_MODELS_LINKS": "outside"})
