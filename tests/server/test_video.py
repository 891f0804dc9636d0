"""/api/generate/video end to end: the synthetic Wan 2.1 set, companions resolved by the registry."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from server_live import LiveServer, make_config

from sdrest.server.app import create_app
from sdrest.testing import synthetic


@pytest.fixture(scope="module")
def wan_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose models dir holds only the Wan diffusion model, its umt5 encoder and its VAE."""
    models = tmp_path_factory.mktemp("wan-models")
    for folder, source in (("diffusion_models", synthetic.wan_diffusion_model()),
                           ("text_encoders", synthetic.umt5_encoder()), ("vae", synthetic.wan_vae())):
        (models / folder).mkdir()
        os.link(source, models / folder / Path(source).name)
    tmp = tmp_path_factory.mktemp("wan-server")
    with LiveServer(create_app(make_config(tmp, models), )) as live:
        yield live


def test_video_job_runs_with_resolved_companions(wan_server: LiveServer) -> None:
    client = wan_server.client
    model_id = f"diffusion_models/{Path(synthetic.wan_diffusion_model()).stem}"
    detail = client.get(f"/api/models/{model_id}").json()
    assert "Wan" in detail["architecture"]
    response = client.post("/api/generate/video?wait=true", timeout=900, json={
        "model": model_id, "prompt": "a cat", "width": 64, "height": 64, "video_frames": 1, "steps": 1, "seed": 3,
        "cfg_scale": 1})  # cfg 1: no negative prompt, so umt5-xxl encodes once (~60 s on 2 cores)
    job = response.json()
    assert response.status_code == 200 and job["status"] == "succeeded", job
    assert job["result"]["seeds"] == [3]
    assert len(job["outputs"]) == 1
    frame = Image.open(io.BytesIO(client.get(job["images"][0]["url"]).content))
    pixels = np.asarray(frame.convert("RGB"), dtype=np.float32)
    assert frame.size == (64, 64) and pixels.std() > 0
