"""Images given as URLs, through the API of a real server (issue 8, hardening): off by default; when on, every
address that is not public is refused (the numeric, IPv6 and redirect forms too) with a 4xx naming the field,
and a listener at such an address receives nothing; redirects, size and time are bounded; an allowed image
works end to end, as an img2img input and through ``GET /api/image/download``."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ESRGAN_X4, SD1_CONTROLNET, write_model
from PIL import Image
from server_live import FakeRunner, LiveServer, make_config
from url_hosts import ImageServer, Trap

from sdrest.server.app import create_app
from sdrest.testing.signatures import SIGNATURES

#: the image server's address: loopback, exempt through url_fetch_allow (the traps' addresses are not)
IMAGE_HOST = "127.0.0.3"
#: 0.01 MB: 10485 bytes, well above the served PNG and below /big
SETTINGS = {"url_images": True, "url_fetch_allow": f"{IMAGE_HOST}/32", "url_max_mb": 0.01,
            "url_timeout_seconds": 1.0}
BIG = 20_000
PROMPT = {"prompt": "a cat", "steps": 2, "model": "fake"}


@pytest.fixture(scope="module")
def traps() -> Iterator[dict[str, Trap]]:
    """Listeners no fetch may reach: on 127.0.0.1, ::1 and 127.0.0.2."""
    made = {host: Trap(host) for host in ("127.0.0.1", "::1", "127.0.0.2")}
    yield made
    for trap in made.values():
        trap.close()


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    with ImageServer(IMAGE_HOST, big=BIG) as server:
        yield server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The module's server: URL images on, the image server exempt, small size and time limits."""
    tmp = tmp_path_factory.mktemp("ssrf")
    models = tmp / "models"
    write_model(models, "checkpoints/fake.safetensors", SIGNATURES["SD 1.x"])
    write_model(models, "controlnet/canny.safetensors", SD1_CONTROLNET)
    write_model(models, "esrgan/x4.safetensors", ESRGAN_X4)
    with LiveServer(create_app(make_config(tmp, models, **SETTINGS), runner=FakeRunner())) as server:
        yield server


def assert_field_error(response: httpx.Response, status: int, field: str, *parts: str) -> str:
    """``response`` is a JSON error ``status`` naming ``field`` whose message holds every one of ``parts``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["field"] == field, error
    assert error["message"].startswith(f"{field}: "), error
    for part in parts:
        assert part in error["message"], error
    return error["message"]


def png_of(data_url: str) -> Image.Image:
    """The image in a ``data:image/png;base64,`` URL."""
    head, _, data = data_url.partition(",")
    assert head == "data:image/png;base64"
    return Image.open(io.BytesIO(base64.b64decode(data)), formats=["PNG"])


# -- the address list: refused, the field named, and nothing reaches the traps ----------------------------------

FORMS = [
    ("http://127.0.0.1:{v4}/x.png", "127.0.0.1 is a loopback address"),
    ("http://2130706433:{v4}/x.png", "2130706433 is 127.0.0.1, a loopback address"),
    ("http://0x7f.1:{v4}/x.png", "0x7f.1 is 127.0.0.1, a loopback address"),
    ("http://0x7f000001:{v4}/x.png", "0x7f000001 is 127.0.0.1, a loopback address"),
    ("http://0177.0.0.1:{v4}/x.png", "0177.0.0.1 is 127.0.0.1, a loopback address"),
    ("http://127.1:{v4}/x.png", "127.1 is 127.0.0.1, a loopback address"),
    ("http://0:{v4}/x.png", "0 is 0.0.0.0, an unspecified ('this network') address"),
    ("http://0.0.0.0:{v4}/x.png", "0.0.0.0 is an unspecified ('this network') address"),
    ("http://localhost:{v4}/x.png", "localhost is a loopback name"),
    ("http://localhost.:{v4}/x.png", "localhost. is a loopback name"),
    ("https://127.0.0.1:{v4}/x.png", "127.0.0.1 is a loopback address"),
    ("http://127.0.0.2:{v4b}/x.png", "127.0.0.2 is a loopback address"),
    ("http://[::1]:{v6}/x.png", "::1 is a loopback address"),
    ("http://[::]:{v6}/x.png", ":: is an unspecified address"),
    ("http://[::ffff:127.0.0.1]:{v4}/x.png", "::ffff:127.0.0.1 is the IPv4-mapped form of 127.0.0.1, a loopback"),
    ("http://[::ffff:10.0.0.1]:{v4}/x.png", "::ffff:10.0.0.1 is the IPv4-mapped form of 10.0.0.1, a private address"),
    ("http://[64:ff9b::7f00:1]:{v4}/x.png", "64:ff9b::7f00:1 is the NAT64 form of 127.0.0.1, a loopback address"),
    ("http://[2002:7f00:1::]:{v4}/x.png", "2002:7f00:1:: is a 6to4 address embedding 127.0.0.1, a loopback"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the cloud metadata address"),
    ("http://10.0.0.1:{v4}/x.png", "10.0.0.1 is a private address"),
    ("http://192.168.1.1:{v4}/x.png", "192.168.1.1 is a private address"),
    ("http://172.16.0.1:{v4}/x.png", "172.16.0.1 is a private address"),
    ("http://100.64.0.1:{v4}/x.png", "100.64.0.1 is a shared (carrier-grade NAT) address"),
    ("http://[fc00::1]:{v6}/x.png", "fc00::1 is a private (unique local) address"),
    ("http://user:pass@127.0.0.1:{v4}/x.png", "user names and passwords in the URL"),
]


def _url(form: str, traps: dict[str, Trap]) -> str:
    return form.format(v4=traps["127.0.0.1"].port, v6=traps["::1"].port, v4b=traps["127.0.0.2"].port)


def assert_traps_untouched(traps: dict[str, Trap]) -> None:
    assert {host: trap.connections() for host, trap in traps.items()} == {host: 0 for host in traps}


@pytest.mark.parametrize(("form", "reason"), FORMS, ids=[form.split("/")[2] for form, _ in FORMS])
def test_every_internal_address_form_is_refused_and_nothing_is_reached(live: LiveServer, traps: dict[str, Trap],
                                                                       form: str, reason: str) -> None:
    url = _url(form, traps)
    shown = url.replace("user:pass@", "***@")
    assert_field_error(live.client.post("/api/generate/img2img", json={**PROMPT, "init_image": url}), 422,
                       "init_image", f"init_image: refused {shown}: {reason}")
    assert_field_error(live.client.get("/api/image/download", params={"url": url}), 422, "url",
                       f"url: refused {shown}: {reason}")
    assert_traps_untouched(traps)
    assert "pass@" not in live.client.get("/api/queue/status").text
    assert sum(live.client.get("/api/queue/status").json()["counts"].values()) == 0


@pytest.mark.parametrize(("path", "field", "extra"), [
    ("/api/generate/img2img", "init_image", {}),
    ("/api/generate/inpainting", "source_image", {"mask_image": "{image}"}),
    ("/api/generate/inpainting", "mask_image", {"source_image": "{image}"}),
    ("/api/generate/controlnet", "control_image", {"control_net_model": "canny"}),
    ("/api/generate/video", "init_image", {}),
    ("/api/generate/upscale", "image", {}),
    ("/api/image/resize", "image", {"width": 32}),
    ("/api/image/crop", "image", {}),
])
def test_every_image_field_takes_urls_and_names_itself_when_refused(live: LiveServer, traps: dict[str, Trap],
                                                                    images: ImageServer, path: str, field: str,
                                                                    extra: dict[str, object]) -> None:
    good = f"{images.base}/image.png"
    body = {**({} if path.startswith(("/api/image", "/api/generate/upscale")) else PROMPT),
            **{key: good if value == "{image}" else value for key, value in extra.items()},
            field: traps["127.0.0.1"].url}
    assert_field_error(live.client.post(path, json=body), 422, field,
                       f"{field}: refused {traps['127.0.0.1'].url}: 127.0.0.1 is a loopback address")
    assert_traps_untouched(traps)


# -- redirects, size, time ----------------------------------------------------------------------------------


def test_a_redirect_to_an_internal_address_is_refused_and_its_listener_reached_by_nothing(
        live: LiveServer, traps: dict[str, Trap], images: ImageServer) -> None:
    target = traps["127.0.0.2"].url
    url = f"{images.base}/redirect?to={target}"
    before = len(images.requests)
    assert_field_error(live.client.post("/api/generate/img2img", json={**PROMPT, "init_image": url}), 422,
                       "init_image", f"refused {target} (redirected from {url}): 127.0.0.2 is a loopback address")
    assert images.requests[before:] == [(f"/redirect?to={target}", f"{IMAGE_HOST}:{images.port}")]
    metadata = f"{images.base}/redirect?to=http://169.254.169.254/latest/meta-data/"
    assert_field_error(live.client.get("/api/image/download", params={"url": metadata}), 422, "url",
                       "169.254.169.254 is the cloud metadata address")
    assert_traps_untouched(traps)


def test_three_redirects_are_followed_and_a_fourth_refused(live: LiveServer, images: ImageServer) -> None:
    answer = live.client.get("/api/image/download", params={"url": f"{images.base}/hops/3"})
    assert answer.status_code == 200, answer.text
    assert png_of(answer.json()["image"]).size == (64, 48)
    assert_field_error(live.client.get("/api/image/download", params={"url": f"{images.base}/hops/4"}), 422, "url",
                       f"refused {images.base}/hops/4: more than 3 redirects")


@pytest.mark.parametrize("path", ["/big", "/big-unsized"])
def test_an_answer_over_url_max_mb_is_refused(live: LiveServer, images: ImageServer, path: str) -> None:
    assert_field_error(live.client.post("/api/generate/img2img",
                                        json={**PROMPT, "init_image": f"{images.base}{path}"}),
                       422, "init_image", "the answer is larger than 10485 bytes")


@pytest.mark.parametrize("path", ["/stall", "/drip"])
def test_a_server_slower_than_url_timeout_seconds_is_given_up(live: LiveServer, images: ImageServer,
                                                              path: str) -> None:
    # /stall never answers; /drip sends a byte every 50 ms (a per-read timeout would never fire)
    assert_field_error(live.client.get("/api/image/download", params={"url": f"{images.base}{path}"}), 422, "url",
                       f"could not fetch {images.base}{path}: no complete answer within 1 s")
    assert live.client.get("/api/health").status_code == 200


def test_what_is_not_an_image_or_not_there_is_refused(live: LiveServer, images: ImageServer) -> None:
    answer = live.client.get("/api/image/download", params={"url": f"{images.base}/page.html"})
    assert_field_error(answer, 415, "url", "not a PNG, JPEG or WebP image")
    assert_field_error(live.client.get("/api/image/download", params={"url": f"{images.base}/missing.png"}), 422,
                       "url", "answered HTTP 404")
    assert_field_error(live.client.get("/api/image/download", params={"url": "iVBORw0KGgo="}), 400, "url",
                       "expected an http or https URL")
    assert_field_error(live.client.get("/api/image/download"), 400, "url", "required")


# -- an allowed image, end to end -----------------------------------------------------------------------------


def test_an_allowed_url_works_as_an_init_image_and_through_download(live: LiveServer, images: ImageServer) -> None:
    url = f"{images.base}/image.png"
    served = Image.open(io.BytesIO(images.png))
    done = live.client.post("/api/generate/img2img", params={"wait": "true", "timeout": "60"},
                            json={**PROMPT, "init_image": url})
    assert done.status_code == 200, done.text
    job = done.json()
    assert job["status"] == "succeeded" and len(job["images"]) == 1
    assert (job["parameters"]["width"], job["parameters"]["height"]) == (64, 48)
    stored = Image.open(Path(live.state.inputs_dir) / job["id"] / "image.png")
    assert stored.convert("RGB").tobytes() == served.convert("RGB").tobytes()

    answer = live.client.get("/api/image/download", params={"url": url})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    image = png_of(body["image"])
    assert (body["width"], body["height"], body["mime_type"]) == (64, 48, "image/png")
    assert body["size_bytes"] == len(base64.b64decode(body["image"].partition(",")[2]))
    assert image.convert("RGB").tobytes() == served.convert("RGB").tobytes()

    resized = live.client.post("/api/image/resize", json={"image": url, "width": 32}).json()
    assert (resized["width"], resized["height"]) == (32, 24)


# -- off by default -------------------------------------------------------------------------------------------


def test_url_images_are_off_by_default(fake_server: LiveServer, images: ImageServer) -> None:
    url = f"{images.base}/image.png"
    before = len(images.requests)
    answer = fake_server.client.get("/api/image/download", params={"url": url})
    assert answer.status_code == 403, answer.text
    error = answer.json()["error"]
    assert error["code"] == "disabled"
    assert "url_images" in error["message"] and "SDREST_URL_IMAGES" in error["message"]
    assert_field_error(fake_server.client.post("/api/generate/img2img", json={**PROMPT, "init_image": url}), 422,
                       "init_image", "URL downloads are not enabled", "url_images", "send the image as base64")
    assert images.requests[before:] == []
