"""The seed's own API (``/api/v1``): its README's Python and curl examples run as written (only the address
changed), its example request body, ``?async=true``, and the small differences found against the seed."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from conftest import ESRGAN_X4, write_model
from server_live import FakeRunner, LiveServer, make_config, until

from sdrest.server.app import create_app
from sdrest.testing.signatures import SIGNATURES

#: the seed README's Python example, word for word but for the address
PYTHON_EXAMPLE = textwrap.dedent("""\
    import requests
    import base64
    import json

    # Generate an image
    response = requests.post('http://localhost:8080/api/v1/generate', json={
        'prompt': 'a beautiful landscape',
        'width': 512,
        'height': 512,
        'steps': 20
    })

    result = response.json()
    if result['status'] == 'completed':
        # Decode and save the first image
        image_data = base64.b64decode(result['images'][0]['data'])
        with open('generated_image.png', 'wb') as f:
            f.write(image_data)
    """)
#: the seed README's example request body ("Generate Image Request")
EXAMPLE_BODY = {"prompt": "a beautiful landscape", "negative_prompt": "blurry, low quality", "model": "sd-v1-5",
                "width": 512, "height": 512, "steps": 20, "cfg_scale": 7.5, "seed": -1, "batch_size": 1}


@pytest.fixture(scope="module")
def seed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server as the seed's examples expect one: no auth, one checkpoint (named as in its example), the
    stand-in runner (the examples ask 512x512 with 20 steps; the real models run below, smaller)."""
    tmp = tmp_path_factory.mktemp("seed")
    models = tmp / "models"
    write_model(models, "checkpoints/sd-v1-5.safetensors", SIGNATURES["SD 1.x"])
    write_model(models, "esrgan/RealESRGAN_x4.safetensors", ESRGAN_X4)
    with LiveServer(create_app(make_config(tmp, models), runner=FakeRunner(step_seconds=0.001))) as live:
        yield live


def _png(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)), formats=["PNG"])


def test_the_python_example_runs_as_written(seed_server: LiveServer, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(PYTHON_EXAMPLE.replace("http://localhost:8080", seed_server.url))
    done = subprocess.run(["python", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "generated_image.png") as image:
        assert image.size == (512, 512) and image.format == "PNG"


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl here")
def test_the_curl_examples_run_as_written(seed_server: LiveServer) -> None:
    import json

    def curl(*args: str) -> dict:
        done = subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    generated = curl("-X", "POST", f"{seed_server.url}/api/v1/generate", "-H", "Content-Type: application/json",
                     "-d", '{\n    "prompt": "a beautiful landscape",\n    "width": 512,\n    "height": 512,\n'
                           '    "steps": 20\n  }')
    assert generated["status"] == "completed" and len(generated["images"]) == 1
    status = curl(f"{seed_server.url}/api/v1/generate/{generated['job_id']}")
    assert status["status"] == "completed" and status["images"][0]["data"] == generated["images"][0]["data"]
    listed = curl(f"{seed_server.url}/api/v1/models")
    assert "checkpoints/sd-v1-5" in [m["id"] for m in listed["models"]]


def test_the_example_body_answers_in_the_seeds_shape(seed_server: LiveServer) -> None:
    answer = seed_server.client.post("/api/v1/generate", json=EXAMPLE_BODY)
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "completed" and isinstance(body["generation_time"], float)
    (image,) = body["images"]
    assert _png(image["data"]).size == (512, 512)
    assert image["parameters"]["seed"] == image["seed"] >= 0
    assert {k: image["parameters"][k] for k in ("prompt", "negative_prompt", "width", "steps", "cfg_scale",
                                                 "batch_size")} == \
        {k: EXAMPLE_BODY[k] for k in ("prompt", "negative_prompt", "width", "steps", "cfg_scale", "batch_size")}
    assert seed_server.client.get(f"/api/queue/job/{body['job_id']}").json()["kind"] == "txt2img"  # via the queue


def test_async_answers_at_once_and_the_job_can_be_followed(seed_server: LiveServer) -> None:
    queued = seed_server.client.post("/api/v1/generate?async=true", json={"prompt": "a hut", "batch_size": 2,
                                                                          "width": 64, "height": 64, "steps": 2})
    assert queued.status_code == 202 and queued.json()["status"] in ("queued", "processing", "completed")
    job_id = queued.json()["job_id"]
    done = until(lambda: (r := seed_server.client.get(f"/api/v1/generate/{job_id}").json())["status"] == "completed"
                 and r, 30, "the job did not complete")
    assert [_png(i["data"]).size for i in done["images"]] == [(64, 64), (64, 64)]
    assert seed_server.client.post("/api/v1/generate", json={"prompt": "x", "batch_size": 1, "batch_count": 1}
                                   ).status_code == 422
    assert seed_server.client.get("/api/v1/generate/nope").status_code == 404


def test_the_seeds_small_differences(seed_server: LiveServer) -> None:
    client = seed_server.client
    by_date = client.get("/api/models", params={"sort_by": "date"})
    assert by_date.status_code == 200
    upscalers = client.get("/api/v1/models", params={"type": "upscaler"}).json()["models"]
    assert [m["id"] for m in upscalers] == ["esrgan/RealESRGAN_x4"]
    (seed_server.state.registry.root / "quantized").mkdir()
    inside = client.post("/api/models/convert", json={"model_name": "sd-v1-5", "quantization_type": "q8_0",
                                                      "output_path": "quantized/sd-v1-5-q8.gguf"})
    assert inside.status_code == 202 and inside.json()["output_path"] == "quantized/sd-v1-5-q8.gguf"
    for escape in ("../out.gguf", "quantized/../../out.gguf", "/etc/out.gguf", "nowhere/out.gguf"):
        refused = client.post("/api/models/convert", json={"model_name": "sd-v1-5", "quantization_type": "q8_0",
                                                           "output_path": escape})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "output_path", escape


def test_with_the_real_models(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The seed's body (smaller) through the real workers and the synthetic SD1 model, named by nobody: the
    only checkpoint is used."""
    synthetic = pytest.importorskip("sdrest.testing.synthetic")
    tmp = tmp_path_factory.mktemp("seed-real")
    synthetic.populate_models_dir(tmp / "models", ["sd1_checkpoint"])
    with LiveServer(create_app(make_config(tmp, tmp / "models"))) as live:
        answer = live.client.post("/api/v1/generate", json={**{k: v for k, v in EXAMPLE_BODY.items() if k != "model"},
                                                            "width": 64, "height": 64, "steps": 1})
        assert answer.status_code == 200, answer.text
        (image,) = answer.json()["images"]
        assert _png(image["data"]).size == (64, 64)
