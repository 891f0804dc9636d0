"""Schemathesis over ``/api/openapi.json`` against one live server on a loopback port (issue 7, defect 12), with
auth on (``auth jwt``) and every request carrying an admin's API key (issue 8).

Every operation gets generated requests, valid and invalid by the document, over real HTTP; every answer must
be below 500, carry a status code the document lists for the operation, in the media type it states, with a body
its schema accepts. The generation routes run with tiny limits and the stand-in runner, so the jobs they create
cost next to nothing; what the native code does with parameters is the business of the worker tests.
"""

from __future__ import annotations

import base64
import io
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from PIL import Image
from conftest import ESRGAN_X4, SD1_CONTROLNET, write_model
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from server_live import FakeRunner, LiveServer, add_users, make_config

from sdrest.auth.store import AuthStore
from sdrest.server.app import create_app
from sdrest.testing.signatures import SIGNATURES

#: generated cases per operation (Hypothesis stops sooner where the document leaves few distinct inputs)
MAX_EXAMPLES = 25
#: small limits, still above what a request without width, height or steps asks for (512x512, 20 steps), so
#: that generated requests are often valid; the stand-in runner makes each job a few milliseconds
TINY_LIMITS = {"max_pixels": 512 * 512, "max_steps": 20, "max_batch": 2, "queue_limit": 4, "max_body_mb": 1}
#: left out: a restart (it stops the server; without ``sdrest serve`` it is a 503)
EXCLUDED = ("/api/system/restart",)
#: the all-jobs event stream never ends by itself: read its first frames only
MAX_STREAM_EVENTS = 1
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

#: operation -> answers by status, printed when the module ends (``pytest -s``)
answers: dict[str, Counter[int]] = {}
#: the admin every case acts as (by an API key: a generated logout call cannot revoke it)
ADMIN = "schemathesis-admin"
credentials: dict[str, str] = {}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The one server of the module: header-only models, an SD1 checkpoint the default one (names no generated
    input will hit, so no case loads a model)."""
    tmp = tmp_path_factory.mktemp("schemathesis")
    models = tmp / "models"
    write_model(models, "checkpoints/schemathesis-sd1.safetensors", SIGNATURES["SD 1.x"])
    write_model(models, "controlnet/schemathesis-canny.safetensors", SD1_CONTROLNET)
    write_model(models, "esrgan/schemathesis-x4.safetensors", ESRGAN_X4)
    config = make_config(tmp, models, default_model="checkpoints/schemathesis-sd1", auth="jwt", **TINY_LIMITS)
    add_users(config.data_dir, {ADMIN: "admin"})
    store = AuthStore(config.data_dir / "auth.sqlite3")
    try:
        # as the Authorization header, which wins over any credentials a case generates from the security schemes
        credentials["Authorization"] = "Bearer " + store.add_key(ADMIN, "schemathesis")[1]
    finally:
        store.close()
    started = time.monotonic()
    with LiveServer(create_app(config, runner=FakeRunner(step_seconds=0.001))) as server:
        server.client.headers.update(credentials)
        yield server
    total = sum(sum(counts.values()) for counts in answers.values())
    print(f"\nschemathesis: {total} cases over {len(answers)} operations in {time.monotonic() - started:.1f} s")
    for label, counts in sorted(answers.items()):
        print(f"  {sum(counts.values()):5d}  {label:45s} {dict(sorted(counts.items()))}")


@pytest.fixture(scope="module")
def api_schema(live: LiveServer) -> schemathesis.BaseSchema:
    """The served document, minus :data:`EXCLUDED`, every request aimed at the live server."""
    config = schemathesis.Config.from_dict({"max-stream-events": MAX_STREAM_EVENTS})
    return schemathesis.openapi.from_url(f"{live.url}/api/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path=list(EXCLUDED))


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented_and_below_500(case: schemathesis.Case) -> None:
    response = case.call_and_validate(checks=CHECKS, timeout=30, headers=credentials)
    answers.setdefault(case.operation.label, Counter())[response.status_code] += 1


def test_the_exclusions_name_real_paths(live: LiveServer) -> None:
    """A renamed route would otherwise drop out of the test unseen."""
    paths = live.client.get("/api/openapi.json").json()["paths"]
    assert all(path in paths for path in EXCLUDED)


def _png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


#: a request of each kind the parser accepts, to change one field of at a time
_SMALL = {"prompt": "a cat", "width": 64, "height": 64, "steps": 1}
VALID = {"text2img": _SMALL, "img2img": {**_SMALL, "init_image": _png()},
         "inpainting": {**_SMALL, "source_image": _png(), "mask_image": _png()},
         "controlnet": {**_SMALL, "control_image": _png(), "control_net_model": "schemathesis-canny"},
         "video": _SMALL, "upscale": {"image": _png(), "esrgan_model": "schemathesis-x4"}}


def _outside(schema: dict) -> list:
    """Values just outside the bounds a numeric property's schema states."""
    step = schema.get("multipleOf", 1 if schema["type"] == "integer" else 0.5)
    values = []
    if "minimum" in schema:
        values.append(schema["minimum"] - step)
    if "maximum" in schema:
        values.append(schema["maximum"] + step)
    return values


@pytest.mark.parametrize("kind", list(VALID))
def test_the_document_states_what_the_parser_enforces(live: LiveServer, kind: str) -> None:
    """Every bound, length, count and unknown-key rule the document states for a generation body is refused
    when broken, with a 422 naming the field; the request the document describes as valid is accepted."""
    document = live.client.get("/api/openapi.json").json()
    body_schema = document["paths"][f"/api/generate/{kind}"]["post"]["requestBody"]["content"]["application/json"]
    properties = body_schema["schema"]["properties"]
    validate_kind = "txt2img" if kind == "text2img" else kind

    def refused(field: str, value: object) -> None:
        body = {"type": validate_kind, "parameters": {**VALID[kind], field: value}}
        answer = live.client.post("/api/validate", json=body).json()
        assert answer["valid"] is False and answer["errors"][0]["field"] == field, (field, value, answer)

    valid = live.client.post("/api/validate", json={"type": validate_kind, "parameters": VALID[kind]}).json()
    if kind == "video":  # an SD1 checkpoint cannot make a video: the model is the only field refused
        assert [e["field"] for e in valid["errors"]] == ["model"]
    else:
        assert valid == {"valid": True, "errors": []}
    checked = 0
    for field, schema in properties.items():
        if kind == "video" and field == "loras":
            continue  # read after the model, which the video kind refuses here first
        if schema.get("type") in ("integer", "number"):
            for value in _outside(schema):
                refused(field, value)
                checked += 1
        if schema.get("type") == "string" and "maxLength" in schema:
            refused(field, "x" * (schema["maxLength"] + 1))
            checked += 1
        if schema.get("minLength") and field in VALID[kind]:
            refused(field, "")
            checked += 1
        if schema.get("type") == "array" and "maxItems" in schema:
            refused(field, ["x"] * (schema["maxItems"] + 1))
            checked += 1
    assert body_schema["schema"]["additionalProperties"] is False
    refused("no_such_field", 1)
    assert checked >= (3 if kind == "upscale" else 20)
