"""One declaration of a generation's fields: the OpenAPI document, ``/api/parameters`` and the parser agree on
every field, and what a request leaves out its model's family decides."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_model
from server_live import LiveServer, wait_job

from sdrest.generation_fields import FAMILY_DEFAULTS, FIELDS, GENERATION_KINDS, fields_for
from sdrest.models import sdversion as V
from sdrest.testing.signatures import SIGNATURES

PATHS = {"txt2img": "text2img", "img2img": "img2img", "inpainting": "inpainting", "controlnet": "controlnet",
         "video": "video"}


@pytest.fixture
def sdxl_models(fake_models: Path) -> Path:
    """The fake models dir plus a header-only SDXL checkpoint."""
    write_model(fake_models, "checkpoints/big.safetensors", SIGNATURES["SDXL"])
    return fake_models


@pytest.mark.parametrize("kind", GENERATION_KINDS)
def test_document_parameters_and_parser_agree(fake_server: LiveServer, kind: str) -> None:
    client = fake_server.client
    document = client.get("/api/openapi.json").json()
    body = document["paths"][f"/api/generate/{PATHS[kind]}"]["post"]["requestBody"]["content"]["application/json"]
    documented = set(body["schema"]["properties"])
    listed = {name for name, item in client.get("/api/parameters").json()["parameters"].items()
              if isinstance(item, dict) and kind in item.get("kinds", [])}
    declared = {f.name for f in fields_for(kind)}
    aliases = {a for f in fields_for(kind) for a in f.aliases}
    assert documented == declared | aliases
    assert listed == declared
    for name in declared | aliases:  # the parser takes each (a 422 for a bad value names it, never "unknown")
        answer = client.post("/api/validate", json={"type": kind, "parameters": {"prompt": "x", name: object_of(name)}})
        errors = answer.json()["errors"]
        assert not any("unknown field" in e["message"] for e in errors), (name, errors)
    unknown = client.post("/api/validate", json={"type": kind, "parameters": {"prompt": "x", "no_such": 1}}).json()
    assert unknown["errors"][0]["field"] == "no_such"


def object_of(name: str) -> object:
    """A value of the wrong type for any field (so the field is read, and refused by its own rule)."""
    return {"not": name}


def test_every_bound_is_stated_once(fake_server: LiveServer) -> None:
    parameters = fake_server.client.get("/api/parameters").json()["parameters"]
    for field in FIELDS:
        item = parameters[field.name]
        if field.default is not None:
            assert item["default"] == field.default
        if field.minimum is not None:
            assert item["minimum"] == field.minimum
    assert parameters["steps"]["maximum"] == fake_server.state.config.max_steps
    assert parameters["sampling_method"]["enum"] == fake_server.state.parser.samplers


def test_the_models_family_decides_what_a_request_leaves_out(tmp_path: Path, sdxl_models: Path) -> None:
    from server_live import FakeRunner, make_config

    from sdrest.server.app import create_app

    with LiveServer(create_app(make_config(tmp_path, sdxl_models), runner=FakeRunner())) as live:
        big = live.client.post("/api/generate/text2img", json={"prompt": "x", "model": "big", "steps": 1}).json()
        job = wait_job(live.client, big["job_id"])
        expected = FAMILY_DEFAULTS[V.SDXL]
        assert (job["parameters"]["width"], job["parameters"]["height"]) == (expected["width"], expected["height"])
        small = live.client.post("/api/generate/text2img", json={"prompt": "x", "model": "fake", "steps": 1}).json()
        assert wait_job(live.client, small["job_id"])["parameters"]["width"] == FAMILY_DEFAULTS[V.SD1]["width"]
        given = live.client.post("/api/generate/text2img", json={"prompt": "x", "model": "big", "steps": 1,
                                                                 "width": 512, "cfg_scale": 3}).json()
        params = wait_job(live.client, given["job_id"])["parameters"]
        assert params["width"] == 512 and params["height"] == 1024 and params["cfg_scale"] == 3
