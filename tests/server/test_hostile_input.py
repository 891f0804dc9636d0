"""Input an attacker would send, through real HTTP: every one is a quick 4xx JSON error naming what is wrong,
nothing reaches the queue, and the server keeps answering everyone else (issue 7, defects 2-6, 10, 11)."""

from __future__ import annotations

import base64
import http.client
import io
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from server_live import LiveServer, wait_job

from sdrest.config import ServerConfig
from sdrest.server.body import MAX_JSON_DEPTH
from sdrest.server.hosts import HostPolicy

SERVER_SETTINGS = {"allowed_hosts": "trusted.example, Other.Example."}
BASE = {"prompt": "a cat", "width": 64, "height": 64, "steps": 2, "model": "fake"}


def image_b64(fmt: str, size: tuple[int, int] = (64, 64)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


def assert_error(response: httpx.Response, status: int, field: str | None = None) -> dict:
    """``response`` is the JSON error ``status``, naming ``field`` (in ``field`` and in the message)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] and error["message"]
    if field is not None:
        assert error["field"] == field and field.split("[")[0].split(".")[0] in error["message"], error
    return error


def assert_nothing_created(server: LiveServer) -> None:
    """No job in the store (whatever its state) and no input file written."""
    counts = server.client.get("/api/queue/status").json()["counts"]
    assert sum(counts.values()) == 0, counts
    inputs = server.state.inputs_dir
    assert not inputs.exists() or not any(inputs.iterdir())


# -- defect 2: the <lora:...> scan is linear, and parsing never stalls the event loop -------------------------

HOSTILE_PROMPTS = [
    "<lora:a:" + "1" * 19990,                      # the probe's: quadratic backtracking in the old weight pattern
    "<lora:a:1" * 2222,                             # many starts, none closed
    "<lora:" + "a" * 19990,                         # a name that never ends
    "<lora:" * 3333,                                # nothing but starts
    "x <lora:a:" + "." * 19980 + ">",               # a weight that never becomes a number
]


@pytest.mark.parametrize("prompt", HOSTILE_PROMPTS, ids=["digits", "starts-with-weight", "long-name", "starts", "dots"])
def test_hostile_lora_tags_are_answered_at_once_and_health_meanwhile(fake_server: LiveServer, prompt: str) -> None:
    answers: list[tuple[int, float]] = []

    def post() -> None:
        with httpx.Client(base_url=fake_server.url, timeout=60) as client:
            for _ in range(3):
                start = time.perf_counter()
                status = client.post("/api/generate/text2img", json={**BASE, "prompt": prompt}).status_code
                answers.append((status, time.perf_counter() - start))

    posters = [threading.Thread(target=post) for _ in range(3)]
    for thread in posters:
        thread.start()
    health: list[float] = []
    while any(thread.is_alive() for thread in posters) or not health:
        start = time.perf_counter()
        assert fake_server.client.get("/api/health").status_code == 200
        health.append(time.perf_counter() - start)
    for thread in posters:
        thread.join()
    assert len(answers) == 9 and {status for status, _ in answers} <= {202, 422}, answers  # 422: no such LoRA
    slowest = max(seconds for _, seconds in answers)
    assert slowest < 2.0, f"a request took {slowest:.1f} s (the backtracking pattern took 9-29 s)"
    assert max(health) < 2.0, f"/api/health waited {max(health):.1f} s behind the hostile requests"


def test_lora_tags_still_work_and_a_bad_weight_is_refused(fake_server: LiveServer) -> None:
    client = fake_server.client
    ok = client.post("/api/generate/text2img", json={**BASE, "prompt": "a cat <lora:style:0.5> <lora:style>"})
    assert ok.status_code == 202, ok.text
    job = wait_job(client, ok.json()["job_id"])
    assert job["parameters"]["prompt"] == "a cat"
    assert [lora["multiplier"] for lora in job["parameters"]["loras"]] == [0.5, 1.0]
    bad = client.post("/api/generate/text2img", json={**BASE, "prompt": "a cat <lora:style:lots>"})
    assert "weight" in assert_error(bad, 422, "prompt")["message"]


# -- defect 3: deep JSON is a 400 and the connection stays open ------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000, 100000])
def test_deeply_nested_json_is_a_400_on_a_kept_alive_connection(fake_server: LiveServer, depth: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", fake_server.port, timeout=30)
    try:
        body = '{"prompt": ' + "[" * depth + "]" * depth + "}"
        connection.request("POST", "/api/generate/text2img", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = json.loads(response.read())
        assert response.status == 400 and payload["error"]["code"] == "too_deep", payload
        assert not response.will_close
        sock = connection.sock
        connection.request("GET", "/api/health")
        again = connection.getresponse()
        again.read()
        assert again.status == 200 and connection.sock is sock  # the same connection answered
    finally:
        connection.close()


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_a_400(fake_server: LiveServer, constant: str) -> None:
    body = '{"prompt": "a cat", "model": "fake", "cfg_scale": %s}' % constant
    response = fake_server.client.post("/api/generate/text2img", content=body.encode(),
                                       headers={"Content-Type": "application/json"})
    assert constant in assert_error(response, 400)["message"]
    assert_nothing_created(fake_server)


def test_nesting_a_generation_needs_is_fine(fake_server: LiveServer) -> None:
    response = fake_server.client.post("/api/generate/text2img",
                                       json={**BASE, "loras": [{"name": "style", "multiplier": 0.5}]})
    assert response.status_code == 202, response.text


# -- defect 4: malformed query parameters are a 400 naming them ------------------------------------------------


@pytest.mark.parametrize(("query", "field"), [
    ("/api/queue/status?limit=abc", "limit"),
    ("/api/queue/status?limit=1e3", "limit"),
    ("/api/queue/status?limit=0", "limit"),
    ("/api/queue/status?limit=%C2%B2", "limit"),
    ("/api/queue/status?limit=99999999999999999999999", "limit"),
    ("/api/models?page=%C2%B2", "page"),
    ("/api/models?page=%D9%A1", "page"),  # ARABIC-INDIC DIGIT ONE: int() would take it
    ("/api/models?page=1_0", "page"),
    ("/api/models?page=0", "page"),
    ("/api/models?limit=-1", "limit"),
    ("/api/models?limit=%201", "limit"),
    ("/api/models?type=nonsense", "type"),
    ("/api/models?sort_by=evil", "sort_by"),
    ("/api/models?sort_order=sideways", "sort_order"),
    ("/api/models?search=" + "x" * 2000, "search"),
    ("/api/models?search=a%00b", "search"),
])
def test_malformed_query_parameters_are_a_400_naming_them(fake_server: LiveServer, query: str, field: str) -> None:
    assert_error(fake_server.client.get(query), 400, field)


def test_output_file_query_parameters(fake_server: LiveServer) -> None:
    client = fake_server.client
    job = wait_job(client, client.post("/api/generate/text2img", json=BASE).json()["job_id"])
    url = f"/api/queue/job/{job['id']}/output/000.png"
    for query, field in (("?thumb=1&size=abc", "size"), ("?thumb=1&size=8", "size"), ("?thumb=perhaps", "thumb"),
                         ("?download=2", "download")):
        assert_error(client.get(url + query), 400, field)
    assert client.get(url + "?thumb=true&size=32").headers["content-type"] == "image/webp"
    assert client.get(url + "?download=true").headers["content-disposition"].startswith("attachment")
    assert client.get(url + "?download=").headers["content-disposition"].startswith("inline")


def test_well_formed_query_parameters_still_work(fake_server: LiveServer) -> None:
    client = fake_server.client
    assert client.get("/api/queue/status?limit=1000").status_code == 200
    assert client.get("/api/queue/status?limit=").status_code == 200  # empty: not given
    listing = client.get("/api/models?page=2&limit=2&sort_by=size&sort_order=desc&type=").json()
    assert listing["page"] == 2 and listing["limit"] == 2 and len(listing["models"]) == 2


# -- defect 5: ?wait and ?timeout are checked before anything is created ---------------------------------------


@pytest.mark.parametrize(("query", "field"), [
    ("wait=true&timeout=abc", "timeout"),
    ("wait=true&timeout=nan", "timeout"),
    ("wait=true&timeout=inf", "timeout"),
    ("wait=true&timeout=-1", "timeout"),
    ("wait=true&timeout=1e99", "timeout"),
    ("wait=perhaps", "wait"),
])
def test_bad_wait_parameters_create_nothing(fake_server: LiveServer, query: str, field: str) -> None:
    body = {**BASE, "init_image": image_b64("PNG")}
    assert_error(fake_server.client.post(f"/api/generate/img2img?{query}", json=body), 400, field)
    assert_error(fake_server.client.post(f"/api/generate/upscale?{query}",
                                         json={"image": image_b64("PNG"), "esrgan_model": "x4"}), 400, field)
    assert_nothing_created(fake_server)


def test_wait_answers_with_the_images(fake_server: LiveServer) -> None:
    response = fake_server.client.post("/api/generate/text2img?wait=true&timeout=60", json=BASE)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded" and len(response.json()["images"]) == 1


# -- defect 6: a NUL (or a lone surrogate) in any string field is a 422 at parse time ------------------------------------------------


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/generate/text2img", {**BASE, "prompt": "a\x00cat"}, "prompt"),
    ("/api/generate/text2img", {**BASE, "negative_prompt": "\x00"}, "negative_prompt"),
    ("/api/generate/text2img", {**BASE, "loras": [{"name": "style\x00../x", "multiplier": 1}]}, "loras[0].name"),
    ("/api/generate/text2img", {**BASE, "model": "fake\x00"}, "model"),
    ("/api/generate/text2img", {**BASE, "sampling_method": "euler\x00"}, "sampling_method"),
    ("/api/generate/text2img", {**BASE, "pro\x00mpt": "x"}, "body"),
    ("/api/queue/cancel", {"job_id": "abc\x00"}, "job_id"),
    ("/api/models/hash", {"models": ["fake", "\x00"]}, "models[1]"),
    ("/api/validate", {"type": "txt2img", "parameters": {**BASE, "prompt": "\x00"}}, "parameters.prompt"),
    ("/api/generate/text2img", {**BASE, "prompt": "a \ud800 cat"}, "prompt"),  # a lone surrogate: no UTF-8 form
    ("/api/generate/text2img", {**BASE, "loras": [{"name\udfff": "style"}]}, "loras[0]"),
])
def test_a_nul_or_a_lone_surrogate_in_a_string_is_a_422_before_queueing(fake_server: LiveServer, path: str, body: dict,
                                                    field: str) -> None:
    raw = json.dumps(body).encode()  # ASCII, escapes and all (a lone surrogate has no UTF-8 to send it as)
    response = fake_server.client.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert_error(response, 422, field)
    assert_nothing_created(fake_server)


# -- defect 10 (part): JSON bodies must say so; the Host must be one of ours -----------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "text/plain;charset=UTF-8",
                                          "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "application/jsonp", "application/json-seq"])
@pytest.mark.parametrize("path", ["/api/generate/text2img", "/api/queue/cancel", "/api/models/hash",
                                  "/api/image/resize"])
def test_a_body_not_declared_as_json_is_a_415(fake_server: LiveServer, content_type: str | None, path: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    raw = json.dumps({**BASE, "job_id": "x", "models": ["fake"], "image": image_b64("PNG")}).encode()
    # no Content-Type at all is what fetch() sends with an untyped Blob body: no preflight either
    request = fake_server.client.build_request("POST", path, content=raw, headers=headers)
    assert request.headers.get("content-type") == content_type
    error = assert_error(fake_server.client.send(request), 415)
    assert error["code"] == "unsupported_media_type" and "application/json" in error["message"]
    assert_nothing_created(fake_server)


def test_json_with_a_charset_is_accepted(fake_server: LiveServer) -> None:
    response = fake_server.client.post("/api/generate/text2img", content=json.dumps(BASE).encode(),
                                       headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example",
                                  "localhost.evil.example", "trusted.example.evil", "[::2]:{port}", "10.0.0.1"])
def test_a_foreign_host_is_a_421(fake_server: LiveServer, host: str) -> None:
    header = host.format(port=fake_server.port)
    for method, path in (("GET", "/api/health"), ("GET", "/api/models"), ("POST", "/api/queue/clear")):
        response = fake_server.client.request(method, path, headers={"Host": header})
        error = assert_error(response, 421)
        assert error["code"] == "misdirected" and "allowed_hosts" in error["message"]
    response = fake_server.client.post("/api/generate/text2img", json=BASE, headers={"Host": header})
    assert_error(response, 421)
    assert_nothing_created(fake_server)


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "localhost.", "[::1]:{port}",
                                  "trusted.example", "trusted.example:{port}", "other.example"])
def test_our_own_hosts_are_answered(fake_server: LiveServer, host: str) -> None:
    response = fake_server.client.get("/api/health", headers={"Host": host.format(port=fake_server.port)})
    assert response.status_code == 200, response.text


def test_host_policy_of_a_server_bound_to_every_address(tmp_path: Path) -> None:
    policy = HostPolicy.from_config(ServerConfig(host="0.0.0.0", data_dir=tmp_path))
    assert policy.allows("192.168.1.7:8080") and policy.allows("[fe80::1]:8080") and policy.allows("localhost")
    assert not policy.allows("evil.example") and not policy.allows("192.168.1.7.nip.io")
    named = HostPolicy.from_config(ServerConfig(host="studio.lan", data_dir=tmp_path))
    assert named.allows("studio.lan:8080") and not named.allows("192.168.1.7")
    anything = HostPolicy.from_config(ServerConfig(allowed_hosts="*", data_dir=tmp_path))
    assert anything.allows("evil.example")


# -- defect 11: image inputs are PNG, JPEG or WebP -------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "ICO", "PPM", "TGA"])
def test_other_image_formats_are_a_415(fake_server: LiveServer, fmt: str) -> None:
    client = fake_server.client
    data = image_b64(fmt)
    response = client.post("/api/generate/img2img", json={**BASE, "init_image": data})
    assert assert_error(response, 415, "init_image")["code"] == "unsupported_media_type"
    disguised = client.post("/api/generate/img2img", json={**BASE, "init_image": f"data:image/png;base64,{data}"})
    assert_error(disguised, 415, "init_image")
    assert_error(client.post("/api/image/resize", json={"image": data, "width": 32}), 415, "image")
    assert_error(client.post("/api/generate/upscale", json={"image": data, "esrgan_model": "x4"}), 415, "image")
    checked = client.post("/api/validate", json={"type": "img2img", "parameters": {**BASE, "init_image": data}})
    assert checked.json()["valid"] is False and checked.json()["errors"][0]["field"] == "init_image"
    assert_nothing_created(fake_server)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_png_jpeg_and_webp_are_accepted(fake_server: LiveServer, fmt: str) -> None:
    response = fake_server.client.post("/api/generate/img2img", json={**BASE, "init_image": image_b64(fmt)})
    assert response.status_code == 202, response.text


def test_a_truncated_png_is_a_422(fake_server: LiveServer) -> None:
    data = base64.b64decode(image_b64("PNG"))[:40]
    response = fake_server.client.post("/api/generate/img2img",
                                       json={**BASE, "init_image": base64.b64encode(data).decode()})
    assert "PNG" in assert_error(response, 422, "init_image")["message"]
