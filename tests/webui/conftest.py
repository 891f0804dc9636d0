"""The web UI's tests: a live server (real uvicorn) and, for the browser tests, Debian's Chromium through
Playwright (Playwright's own browser download is not used). Browser tests skip where no Chromium is installed."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))  # server_live, the live-server helpers
sys.path.insert(0, str(Path(__file__).parent))  # browser_device


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$SDREST_ARTIFACTS/webui`` when set, else a temporary folder."""
    root = os.environ.get("SDREST_ARTIFACTS")
    path = Path(root) / "webui" if root else tmp_path_factory.mktemp("webui-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, headless (no sandbox: CI runs as root)."""
    from playwright.sync_api import sync_playwright

    from sdrest.testing.browser import chromium_path

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def device(browser: Any, live: Any) -> Iterator[Any]:
    """A desktop device on the module's ``live`` server; the test fails if the page logged a console error."""
    from browser_device import Device

    made = Device(browser, live)
    yield made
    made.close()
    assert made.errors == []
