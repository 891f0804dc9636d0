"""A real uvicorn on a loopback port, real SQLite under tmp_path, real HTTP with httpx.

``fake_server`` runs the queue with a stand-in runner (no native work: fast and
deterministic for queue mechanics); ``real_server`` (module-scoped) runs the
synthetic SD1 model and friends through the real workers.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helpers module beside this file

from server_live import FakeRunner, LiveServer, make_config

from sdrest.jobs.tasks import run_task
from sdrest.server.app import create_app


@pytest.fixture
def fake_models(tmp_path: Path) -> Path:
    """A models dir of placeholder files (the fake runner never reads them)."""
    root = tmp_path / "models"
    for rel in ("checkpoints/fake.safetensors", "checkpoints/other.safetensors", "lora/style.safetensors",
                "esrgan/x4.pth", "controlnet/canny.safetensors"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    return root


@pytest.fixture
def fake_runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def fake_server(tmp_path: Path, fake_models: Path, fake_runner: FakeRunner, request: pytest.FixtureRequest
                ) -> Iterator[LiveServer]:
    """A live server whose workers run :class:`FakeRunner`; a test module's ``SERVER_SETTINGS`` dict
    overrides config fields."""
    settings = getattr(request.module, "SERVER_SETTINGS", {})
    with LiveServer(create_app(make_config(tmp_path, fake_models, **settings), runner=fake_runner)) as live:
        yield live


# -- the real models ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir laid out with the synthetic models (hard links to the cache)."""
    synthetic = pytest.importorskip("sdrest.testing.synthetic")
    root = tmp_path_factory.mktemp("models")
    synthetic.populate_models_dir(root)
    return root


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory, synthetic_models: Path) -> Iterator[LiveServer]:
    """One live server with the real runner, shared by a test module (the model loads once)."""
    tmp = tmp_path_factory.mktemp("server")
    with LiveServer(create_app(make_config(tmp, synthetic_models), runner=run_task)) as live:
        yield live
