"""The OpenAI dialect's mechanics with the stand-in runner and auth on: translation onto native requests (sizes,
masks, models, extras), the answer's shape and formats, errors in OpenAI's shape and the retry header, and the
queue (ownership, metrics, a full queue, a failed job, a client that leaves)."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from PIL import Image
from server_live import FakeRunner, LiveServer, client_as, login, until, wait_job

from sdrest.auth.store import AuthStore
from sdrest.server.openai_request import VARIATION_PROMPT, VARIATION_STRENGTH

AUTH_SETTINGS = {"queue_limit": 2, "requests_per_minute": 1000}
TINY = {"steps": 1, "seed": 5}


def png(size: tuple[int, int] = (64, 64), mode: str = "RGB", colour: Any = (120, 60, 30)) -> bytes:
    """A PNG file of one colour."""
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def half_transparent(size: tuple[int, int] = (64, 64)) -> bytes:
    """An RGBA PNG whose left half is fully transparent (OpenAI: redraw it) and right half opaque."""
    image = Image.new("RGBA", size, (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def keys(auth_server: LiveServer) -> dict[str, str]:
    """An API key for alice and one for bob."""
    store = AuthStore(auth_server.state.config.data_dir / "auth.sqlite3")
    try:
        return {name: store.add_key(name, "openai-tests")[1] for name in ("alice", "bob")}
    finally:
        store.close()


@pytest.fixture
def alice(auth_server: LiveServer, keys: dict[str, str]) -> Iterator[openai.OpenAI]:
    """The official client as alice, without retries."""
    with openai.OpenAI(base_url=f"{auth_server.url}/v1", api_key=keys["alice"], max_retries=0) as client:
        yield client


@pytest.fixture
def runner(auth_server: LiveServer) -> Iterator[FakeRunner]:
    """The stand-in runner, left running jobs after the test."""
    assert auth_server.runner is not None
    yield auth_server.runner
    auth_server.runner.hold.set()
    auth_server.runner.fail_next = None


def job_of(raw: Any) -> str:
    """The job id a raw OpenAI response names."""
    return raw.headers["x-sdrest-job-id"]


def stored_input(live: LiveServer, job_id: str, name: str) -> Image.Image:
    """An input image the server stored with a job."""
    with Image.open(live.state.inputs_dir / job_id / f"{name}.png") as image:
        return image.copy()


# -- generations -----------------------------------------------------------------------------------------


def test_generation_translates_onto_a_native_job_owned_by_the_caller(auth_server: LiveServer, alice: openai.OpenAI,
                                                                     keys: dict[str, str]) -> None:
    raw = alice.images.with_raw_response.generate(
        prompt="a red boat, at dawn", n=2, size="64x64", quality="hd", style="vivid", background="opaque",
        user="someone", extra_body={**TINY, "cfg_scale": 3.5, "negative_prompt": "fog", "sampler": "euler"})
    result = raw.parse()
    assert raw.headers.get("x-should-retry") is None
    assert len(result.data) == 2 and result.size == "64x64" and result.output_format == "png"
    for item in result.data:
        image = Image.open(io.BytesIO(base64.b64decode(item.b64_json)))
        assert image.format == "PNG" and image.size == (64, 64)
    usage = result.usage
    assert usage.input_tokens_details.text_tokens == 6  # a red boat , at dawn
    assert usage.output_tokens == 2 and usage.total_tokens == 8  # one token per 64x64
    with client_as(auth_server, keys["alice"]) as http:
        job = wait_job(http, job_of(raw))
        assert job["owner"] == "alice" and job["kind"] == "txt2img" and job["status"] == "succeeded"
        assert result.created == int(job["created_at"])
        params = job["parameters"]
        assert (params["batch_count"], params["steps"], params["seed"], params["cfg_scale"]) == (2, 1, 5, 3.5)
        assert (params["negative_prompt"], params["sampler"], params["model"]) == ("fog", "euler", "checkpoints/fake")
        assert job_of(raw) in [j["id"] for j in http.get("/api/queue/status").json()["recent"]]
    with client_as(auth_server, keys["bob"]) as http:
        assert http.get(f"/api/queue/job/{job_of(raw)}").status_code == 404
        assert job_of(raw) not in [j["id"] for j in http.get("/api/queue/status").json()["recent"]]


def test_generations_count_in_the_metrics(auth_server: LiveServer, alice: openai.OpenAI) -> None:
    admin = client_as(auth_server, login(auth_server, "admin")["access_token"])

    def succeeded() -> float:
        for line in admin.get("/metrics").text.splitlines():
            if line.startswith('sdrest_jobs_total{kind="txt2img",status="succeeded"}'):
                return float(line.split()[-1])
        return 0.0

    with admin:
        before = succeeded()
        alice.images.generate(prompt="a kite", size="64x64", extra_body=TINY)
        assert succeeded() == before + 1


@pytest.mark.parametrize(("output_format", "pillow"), [("jpeg", "JPEG"), ("webp", "WEBP")])
def test_output_format_reencodes_with_the_compression_as_quality(alice: openai.OpenAI, output_format: str,
                                                                 pillow: str) -> None:
    sizes = []
    for quality in (10, 95):
        result = alice.images.generate(prompt="a fox", size="64x64", output_format=output_format,
                                       output_compression=quality, extra_body=TINY)
        data = base64.b64decode(result.data[0].b64_json)
        image = Image.open(io.BytesIO(data))
        assert image.format == pillow and image.size == (64, 64) and result.output_format == output_format
        sizes.append(len(data))
    assert sizes[0] < sizes[1]


def test_openai_model_names_mean_the_default_model_and_dall_e_answers_urls(auth_server: LiveServer,
                                                                            alice: openai.OpenAI) -> None:
    raw = alice.images.with_raw_response.generate(prompt="a hat", model="dall-e-3", size="64x64", extra_body=TINY)
    result = raw.parse()
    assert result.data[0].b64_json is None and result.data[0].url.startswith(f"{auth_server.url}/api/queue/job/")
    assert result.output_format == "png"
    with httpx.Client() as anonymous:
        assert anonymous.get(result.data[0].url).status_code == 200
    gpt = alice.images.generate(prompt="a hat", model="gpt-image-1", size="64x64", extra_body=TINY)
    assert gpt.data[0].b64_json and gpt.data[0].url is None


def test_size_auto_lets_the_parser_choose(alice: openai.OpenAI) -> None:
    result = alice.images.generate(prompt="a bell", size="auto", extra_body=TINY)
    assert Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json))).size == (512, 512)


# -- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("arguments", "extra", "param", "starts"), [
    ({"size": "huge"}, {}, "size", "size: expected WIDTHxHEIGHT"),
    ({"size": "100x64"}, {}, "size", "size: width must be a multiple of 8"),
    ({"n": 1000}, {}, "n", "n: must be between 1 and"),
    ({"model": "no-such-model"}, {}, "model", "model: no model"),
    ({"response_format": "gif"}, {}, "response_format", "response_format: expected one of"),
    ({"output_compression": 101}, {}, "output_compression", "output_compression:"),
    ({"quality": "ultra"}, {}, "quality", "quality: expected one of"),
    ({}, {"steps": 0}, "steps", "steps:"),
    ({}, {"sampler": "warp"}, "sampler", "sampler: unknown value"),
    ({}, {"stream": True}, "stream", "stream: streaming is not supported"),
    ({}, {"colour": "blue"}, "colour", "colour: unrecognized request argument"),
])
def test_bad_requests_are_bad_request_errors_naming_the_param(alice: openai.OpenAI, runner: FakeRunner,
                                                             arguments: dict, extra: dict, param: str,
                                                             starts: str) -> None:
    ran = len(runner.ran)
    with pytest.raises(openai.BadRequestError) as caught:
        alice.images.generate(**{"prompt": "a cat", "size": "64x64", **arguments}, extra_body={**TINY, **extra})
    error = caught.value
    assert error.status_code == 400 and error.type == "invalid_request_error" and error.param == param
    assert error.body["message"].startswith(starts), error.body
    assert error.response.headers["x-should-retry"] == "false"
    assert len(runner.ran) == ran  # nothing was queued


def test_no_credentials_is_a_401_in_openai_shape(auth_server: LiveServer) -> None:
    with httpx.Client(base_url=auth_server.url) as anonymous:
        for method, path in (("POST", "/v1/images/generations"), ("POST", "/v1/images/edits"),
                             ("POST", "/v1/images/variations"), ("GET", "/v1/models"),
                             ("GET", "/v1/models/checkpoints/fake")):
            response = anonymous.request(method, path, json={"prompt": "x"} if method == "POST" else None)
            assert response.status_code == 401, (path, response.text)
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and error["type"] == "authentication_error"
            assert response.headers["x-should-retry"] == "false"
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_wrong_key_raises_authentication_error(auth_server: LiveServer) -> None:
    with openai.OpenAI(base_url=f"{auth_server.url}/v1", api_key="sdr_nope_nope", max_retries=0) as client, \
            pytest.raises(openai.AuthenticationError) as caught:
        client.models.list()
    assert caught.value.type == "authentication_error"


def test_a_failed_job_is_not_retried_by_the_client(auth_server: LiveServer, keys: dict[str, str],
                                                   runner: FakeRunner) -> None:
    runner.fail_next = "the sampler fell over"
    ran = len(runner.ran)
    # the client's default: two retries of a 5xx, unless the server says not to
    with openai.OpenAI(base_url=f"{auth_server.url}/v1", api_key=keys["alice"]) as client, \
            pytest.raises(openai.InternalServerError) as caught:
        client.images.generate(prompt="a vase", size="64x64", extra_body=TINY)
    error = caught.value
    assert error.status_code == 500 and error.type == "server_error" and error.code == "job_failed"
    assert "the sampler fell over" in error.body["message"]
    assert error.response.headers["x-should-retry"] == "false"
    assert len(runner.ran) == ran + 1  # one job, not three


def test_a_full_queue_may_be_retried(auth_server: LiveServer, keys: dict[str, str], alice: openai.OpenAI,
                                     runner: FakeRunner) -> None:
    runner.hold.clear()
    queued = []
    with client_as(auth_server, keys["bob"]) as bob:
        try:
            body = {"prompt": "a queue filler", "steps": 1, "width": 64, "height": 64}
            while True:
                answer = bob.post("/api/generate/text2img", json=body)
                if answer.status_code == 429:
                    break
                assert answer.status_code == 202, answer.text
                queued.append(answer.json()["job_id"])
            with pytest.raises(openai.RateLimitError) as caught:
                alice.images.generate(prompt="a cat", size="64x64", extra_body=TINY)
            error = caught.value
            assert error.type == "rate_limit_error" and error.code == "queue_full"
            assert "x-should-retry" not in error.response.headers and error.response.headers["retry-after"]
        finally:
            runner.hold.set()
            for job_id in queued:
                wait_job(bob, job_id)


def test_a_client_that_leaves_cancels_its_job(auth_server: LiveServer, keys: dict[str, str],
                                             runner: FakeRunner) -> None:
    runner.hold.clear()
    runner.started.clear()
    ran = len(runner.ran)
    body = json.dumps({"prompt": "a bell", "size": "64x64", **TINY}).encode()
    with socket.create_connection(("127.0.0.1", auth_server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + keys["alice"].encode() + b"\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert runner.started.wait(10)
    job_id = runner.ran[ran]
    with client_as(auth_server, keys["alice"]) as http:
        assert wait_job(http, job_id, timeout=30)["status"] == "cancelled"


# -- edits and variations ----------------------------------------------------------------------------


def test_an_edit_with_a_mask_redraws_its_transparent_pixels(auth_server: LiveServer, alice: openai.OpenAI) -> None:
    raw = alice.images.with_raw_response.edit(image=("photo.png", png(), "image/png"),
                                              mask=("mask.png", half_transparent(), "image/png"),
                                              prompt="a garden", n=2, size="64x64", extra_body=TINY)
    result = raw.parse()
    assert len(result.data) == 2
    assert result.usage.input_tokens_details.image_tokens == 1
    job = auth_server.queue.get(job_of(raw))
    assert job.kind == "inpainting" and job.params["strength"] == 1.0 and job.owner == "alice"
    mask = stored_input(auth_server, job.id, "mask").convert("L")
    assert mask.getpixel((0, 10)) == 255 and mask.getpixel((63, 10)) == 0  # white: redraw


def test_an_edit_without_a_mask_uses_the_images_own_transparency(auth_server: LiveServer,
                                                                  alice: openai.OpenAI) -> None:
    raw = alice.images.with_raw_response.edit(image=[("photo.png", half_transparent(), "image/png")],
                                              prompt="a garden", size="64x64", extra_body=TINY)
    job = auth_server.queue.get(job_of(raw))
    assert job.kind == "inpainting"
    assert stored_input(auth_server, job.id, "mask").convert("L").getpixel((0, 0)) == 255


def test_an_opaque_image_without_a_mask_is_redrawn_whole_at_its_own_size(auth_server: LiveServer,
                                                                        alice: openai.OpenAI) -> None:
    raw = alice.images.with_raw_response.edit(image=("photo.png", png((75, 70)), "image/png"), prompt="a garden",
                                              extra_body={**TINY, "strength": 0.4})
    result = raw.parse()
    job = auth_server.queue.get(job_of(raw))
    assert job.kind == "img2img" and job.params["strength"] == 0.4
    assert stored_input(auth_server, job.id, "image").size == (72, 64)  # auto: rounded down to multiples of 8
    assert Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json))).size == (72, 64)


def test_an_edit_is_stretched_to_the_asked_size(auth_server: LiveServer, alice: openai.OpenAI) -> None:
    raw = alice.images.with_raw_response.edit(image=("photo.png", png((96, 96)), "image/png"),
                                              mask=("mask.png", half_transparent((96, 96)), "image/png"),
                                              prompt="a garden", size="64x128", extra_body=TINY)
    job = auth_server.queue.get(job_of(raw))
    assert stored_input(auth_server, job.id, "image").size == (64, 128)
    assert stored_input(auth_server, job.id, "mask").size == (64, 128)
    assert raw.parse().size == "64x128"


@pytest.mark.parametrize(("files", "param", "words"), [
    ({"mask": ("m.png", png(mode="L", colour=0), "image/png")}, "mask", "alpha channel"),
    ({"mask": ("m.png", half_transparent((32, 32)), "image/png")}, "mask", "same size"),
    ({"image": [("a.png", png(), "image/png"), ("b.png", png(), "image/png")]}, "image", "one image at a time"),
    ({"image": ("a.gif", b"GIF89a" + b"\0" * 40, "image/gif")}, "image", "not a PNG, JPEG or WebP"),
])
def test_bad_edit_images_are_refused(alice: openai.OpenAI, files: dict, param: str, words: str) -> None:
    arguments = {"image": ("photo.png", png(), "image/png"), **files}
    with pytest.raises(openai.BadRequestError) as caught:
        alice.images.edit(prompt="a garden", size="64x64", extra_body=TINY, **arguments)
    assert caught.value.param == param and words in caught.value.body["message"]


def test_an_edit_must_be_multipart(auth_server: LiveServer, keys: dict[str, str]) -> None:
    with client_as(auth_server, keys["alice"]) as http:
        response = http.post("/v1/images/edits", json={"prompt": "a garden"})
        assert response.status_code == 400 and "multipart/form-data" in response.json()["error"]["message"]
        missing = http.post("/v1/images/edits", files={"prompt": (None, "a garden")})
        assert missing.status_code == 400 and missing.json()["error"]["param"] == "image"


def test_a_variation_is_an_img2img_of_the_image(auth_server: LiveServer, alice: openai.OpenAI) -> None:
    with pytest.warns(DeprecationWarning):  # the client marks the route deprecated; it still calls it
        raw = alice.images.with_raw_response.create_variation(image=("photo.png", png(), "image/png"), n=2,
                                                              size="64x64", response_format="url",
                                                              extra_body=TINY)
    result = raw.parse()
    assert len(result.data) == 2 and all(item.url for item in result.data)
    job = auth_server.queue.get(job_of(raw))
    assert job.kind == "img2img" and job.params["strength"] == VARIATION_STRENGTH
    assert job.params["prompt"] == VARIATION_PROMPT and job.owner == "alice"


# -- models ----------------------------------------------------------------------------------------------


def test_models_are_the_image_models(auth_server: LiveServer, alice: openai.OpenAI) -> None:
    listed = alice.models.list()
    assert [m.id for m in listed.data] == ["checkpoints/fake"]  # not the ESRGAN model
    assert listed.data[0].object == "model" and listed.data[0].owned_by == "sdrest"
    assert alice.models.retrieve("checkpoints/fake").id == "checkpoints/fake"  # the client sends %2F
    assert alice.models.retrieve("fake").id == "checkpoints/fake"
    for missing in ("no-such-model", "esrgan/x4"):
        with pytest.raises(openai.NotFoundError) as caught:
            alice.models.retrieve(missing)
        assert caught.value.code == "model_not_found" and caught.value.type == "not_found_error"


def test_the_document_describes_the_openai_routes(auth_server: LiveServer) -> None:
    document = auth_server.client.get("/api/openapi.json").json()
    generations = document["paths"]["/v1/images/generations"]["post"]
    assert generations["requestBody"]["content"]["application/json"]["schema"]["required"] == ["prompt"]
    assert "multipart/form-data" in document["paths"]["/v1/images/edits"]["post"]["summary"]
    assert {"/v1/images/variations", "/v1/models", "/v1/models/{model_id}"} <= set(document["paths"])


def test_a_server_that_stops_cancels_the_job_and_may_be_asked_again(fake_server: LiveServer,
                                                                    fake_runner: FakeRunner) -> None:
    """(auth none: any key is taken)"""
    fake_runner.hold.clear()
    answers: list[httpx.Response] = []

    def call() -> None:
        with httpx.Client(base_url=fake_server.url, timeout=30) as http:
            answers.append(http.post("/v1/images/generations", headers={"Authorization": "Bearer anything"},
                                     json={"prompt": "a bell", "size": "64x64", "model": "fake", **TINY}))

    caller = threading.Thread(target=call)
    caller.start()
    try:
        assert fake_runner.started.wait(10)
        fake_server.state.signal_stopping()
        caller.join(30)
    finally:
        fake_runner.hold.set()
    (answer,) = answers
    assert answer.status_code == 503 and answer.json()["error"]["type"] == "server_error"
    assert "x-should-retry" not in answer.headers and answer.headers["retry-after"]
    until(lambda: fake_server.queue.get(fake_runner.ran[0]).status == "cancelled", 30, "the job was not cancelled")
