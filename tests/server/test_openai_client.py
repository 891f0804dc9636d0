"""The official ``openai`` client, unmodified, against a live server with auth on and the synthetic SD1 model run
by the real workers: the images it gets back decode, with the size and count asked for."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import openai
import pytest
from PIL import Image
from server_live import AUTH_USERS, LiveServer, add_users, make_config

from sdrest.auth.store import AuthStore
from sdrest.server.app import create_app

#: the extras that keep a generation tiny (the size is asked for in each call)
TINY = {"steps": 1, "seed": 11, "sampler": "euler"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, synthetic_models: Path) -> Iterator[LiveServer]:
    """One server for the module: auth jwt, the test users, the synthetic models, the real workers."""
    config = make_config(tmp_path_factory.mktemp("openai"), synthetic_models, auth="jwt")
    add_users(config.data_dir, AUTH_USERS)
    with LiveServer(create_app(config)) as server:
        yield server


@pytest.fixture(scope="module")
def client(live: LiveServer) -> Iterator[openai.OpenAI]:
    """The official client with alice's API key, as its documentation sets one up (no retries: a test fails
    at once)."""
    store = AuthStore(live.state.config.data_dir / "auth.sqlite3")
    try:
        _, key = store.add_key("alice", "openai-client")
    finally:
        store.close()
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=300) as made:
        yield made


def decoded(data: bytes) -> Image.Image:
    """An image from its bytes, fully read."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_generate_b64_json_two_images(client: openai.OpenAI) -> None:
    result = client.images.generate(model="sd1", prompt="a lighthouse on a cliff", n=2, size="64x64",
                                    response_format="b64_json", extra_body=TINY)
    assert len(result.data) == 2 and result.created > 0 and result.usage.output_tokens == 2
    images = [decoded(base64.b64decode(item.b64_json)) for item in result.data]
    assert all(image.format == "PNG" and image.size == (64, 64) for image in images)
    assert images[0].tobytes() != images[1].tobytes()  # two seeds, two images


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, **changes})))


def test_generate_url_fetched_without_credentials(client: openai.OpenAI) -> None:
    result = client.images.generate(model="sd1", prompt="a lighthouse", size="64x128", response_format="url",
                                    extra_body=TINY)
    (item,) = result.data
    assert result.size == "64x128" and item.b64_json is None and "signature=" in item.url
    with httpx.Client(timeout=30) as anonymous:  # no Authorization header, no cookie
        fetched = anonymous.get(item.url)
        assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
        image = decoded(fetched.content)
        assert image.format == "PNG" and image.size == (64, 128)
        signature = parse_qs(urlsplit(item.url).query)["signature"][0]
        forged = signature[:-1] + ("A" if signature[-1] != "A" else "B")
        expires = int(parse_qs(urlsplit(item.url).query)["expires"][0])
        for tampered in (_with_query(item.url, signature=forged), _with_query(item.url, expires=str(expires + 3600)),
                         item.url.split("?")[0]):
            assert anonymous.get(tampered).status_code == 401, tampered


def test_edit_with_a_mask(client: openai.OpenAI, live: LiveServer) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(buffer, format="PNG")
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (16, 16, 48, 48))  # transparent: redraw the middle
    mask_buffer = io.BytesIO()
    mask.save(mask_buffer, format="PNG")
    raw = client.images.with_raw_response.edit(image=("photo.png", buffer.getvalue(), "image/png"),
                                               mask=("mask.png", mask_buffer.getvalue(), "image/png"),
                                               prompt="a window in the wall", n=2, size="64x64", extra_body=TINY)
    result = raw.parse()
    assert len(result.data) == 2
    assert all(decoded(base64.b64decode(item.b64_json)).size == (64, 64) for item in result.data)
    job = live.queue.get(raw.headers["x-sdrest-job-id"])
    assert job.kind == "inpainting" and job.status == "succeeded" and job.owner == "alice"


def test_models_list(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [model.id for model in models.data] == ["checkpoints/sd1"]
    assert client.models.retrieve("checkpoints/sd1").object == "model"
