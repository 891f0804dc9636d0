"""The web UI's tests: a live server (real uvicorn) and, for the browser tests, Debian's Chromium through
Playwright (Playwright's own browser download is not used). Browser tests skip where no Chromium is installed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))  # server_live, the live-server helpers


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$SDREST_ARTIFACTS/webui`` when set, else a temporary folder."""
    root = os.environ.get("SDREST_ARTIFACTS")
    path = Path(root) / "webui" if root else tmp_path_factory.mktemp("webui-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def synthetic_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir laid out with the synthetic models (real tiny weights; hard links to the cache)."""
    synthetic = pytest.importorskip("sdrest.testing.synthetic")
    root = tmp_path_factory.mktemp("models")
    synthetic.populate_models_dir(root)
    return root
