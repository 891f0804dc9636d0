"""``/api/templates``: the presets and prompt templates of the models dir, listed and read, without server paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from server_live import LiveServer


@pytest.fixture
def templated(fake_models: Path) -> Path:
    """The fake models dir with a preset (JSON), a prompt (text), a negative prompt (YAML) and a broken file."""
    for rel, text in (("presets/portrait.json", json.dumps({"width": 512, "height": 768, "steps": 25})),
                      ("presets/broken.json", "{not json"),
                      ("presets/list.yaml", "- 1\n- 2\n"),
                      ("prompts/styles/watercolor.txt", "a watercolor painting of {subject}\n"),
                      ("neg_prompts/common.yaml", "prompt: blurry, lowres\n")):
        path = fake_models / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return fake_models


def test_list_and_read_templates(templated: Path, fake_server: LiveServer) -> None:
    client = fake_server.client
    listed = client.get("/api/templates").json()["templates"]
    assert [(t["kind"], t["name"]) for t in listed] == [
        ("neg_prompt", "common"), ("preset", "broken"), ("preset", "list"), ("preset", "portrait"),
        ("prompt", "watercolor")]
    assert all("path" not in t and str(templated) not in json.dumps(t) for t in listed)
    presets = client.get("/api/templates", params={"kind": "preset"}).json()["templates"]
    assert {t["kind"] for t in presets} == {"preset"} and len(presets) == 3
    assert client.get("/api/templates", params={"kind": "styles"}).status_code == 400

    portrait = client.get(f"/api/templates/{presets[2]['id']}").json()
    assert portrait["content"] == {"width": 512, "height": 768, "steps": 25}
    prompt = next(t for t in listed if t["kind"] == "prompt")
    assert client.get(f"/api/templates/{prompt['id']}").json()["content"] == "a watercolor painting of {subject}\n"
    negative = next(t for t in listed if t["kind"] == "neg_prompt")
    assert client.get(f"/api/templates/{negative['id']}").json()["content"] == "blurry, lowres"

    broken = client.get(f"/api/templates/{presets[0]['id']}")
    assert broken.status_code == 422 and "line 1" in broken.json()["error"]["message"]
    assert str(templated) not in broken.text
    assert client.get(f"/api/templates/{presets[1]['id']}").status_code == 422  # a list is no preset
    missing = client.get("/api/templates/presets/nope")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "template_id"
    assert client.get("/api/templates/../../etc/passwd").status_code == 404


def test_templates_need_a_user(auth_server: LiveServer) -> None:
    assert auth_server.client.get("/api/templates").status_code == 401
