"""The server's upscale honours ``upscale_factor`` exactly (the library's passes + Lanczos) and says so in the PNG."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from server_live import LiveServer


def png_b64(size: tuple[int, int]) -> str:
    """A noisy RGB PNG, base64."""
    rng = np.random.default_rng(11)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(("factor", "passes"), [(2, 1), (3, 1), (8, 2)])
def test_upscale_factor_is_exact(real_server: LiveServer, factor: int, passes: int) -> None:
    body = real_server.client.post("/api/generate/upscale?wait=true", timeout=300, json={
        "image": png_b64((12, 10)), "esrgan_model": "esrgan_x4", "upscale_factor": factor}).json()
    assert body["status"] == "succeeded", body
    with Image.open(io.BytesIO(base64.b64decode(body["images"][0]["data"]))) as image:
        assert image.size == (12 * factor, 10 * factor)
        meta = dict(field.split(": ", 1) for field in image.info["parameters"].split(", "))
    assert meta["Postprocess upscale by"] == str(factor)
    assert meta["Upscaler passes"] == str(passes)
    assert meta["Upscaler scale"] == "4"
