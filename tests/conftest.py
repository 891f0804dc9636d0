"""Shared fixtures: synthetic models (written once, cached outside the repo) and sd.cpp's own CLI."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

import sdrest
from sdrest.testing import synthetic


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the children the tests start, however the suite was launched: a shell that starts a command
    in the background (``cmd &``) has it ignore SIGINT, and every child would inherit that (the Ctrl-C tests)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="module")
def synthetic_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir laid out with the synthetic models (real tiny weights; hard links to the cache), one per module:
    a module may add files of its own."""
    root = tmp_path_factory.mktemp("models")
    synthetic.populate_models_dir(root)
    return root


@pytest.fixture(scope="session")
def sd1_path() -> Path:
    """A full-size SD1.x checkpoint with random weights."""
    return synthetic.sd1_checkpoint()


@pytest.fixture(scope="session")
def esrgan_path() -> Path:
    """A small ESRGAN x4 upscaler with random weights."""
    return synthetic.esrgan()


@pytest.fixture(scope="session")
def taesd_path() -> Path:
    """A TAESD with random weights."""
    return synthetic.taesd()


@pytest.fixture(scope="session")
def lora_path() -> Path:
    """An SD1 LoRA with random weights."""
    return synthetic.sd1_lora()


@pytest.fixture(scope="session")
def controlnet_path() -> Path:
    """An SD1 ControlNet with random weights."""
    return synthetic.sd1_controlnet()


@pytest.fixture(scope="session")
def wrong_vae_path() -> Path:
    """A VAE that does not fit an SD1 checkpoint."""
    return synthetic.wrong_vae()


@pytest.fixture(scope="session")
def sd_cli() -> Path:
    """sd.cpp's own CLI, built from the same source and flags as the extension.

    Installed into the package by ``-C cmake.define.SDREST_BUILD_SDCLI=ON`` (the
    README's test command); ``SDREST_SD_CLI`` points at another build.
    """
    candidates = [os.environ.get("SDREST_SD_CLI"), Path(sdrest.__file__).parent / "_bin" / "sd-cli",
                  shutil.which("sd-cli")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail("sd.cpp's CLI is missing: install with -C cmake.define.SDREST_BUILD_SDCLI=ON (see README)")


@pytest.fixture(scope="session")
def child_env() -> dict[str, str]:
    """Environment for a child interpreter that imports the same sdrest as these tests.

    ``PYTHONSAFEPATH`` keeps the child's working directory off ``sys.path``: from a
    source checkout, ``./sdrest`` (no compiled extension) must not shadow the install.
    """
    return {**os.environ, "PYTHONPATH": str(Path(sdrest.__file__).resolve().parents[1]), "PYTHONSAFEPATH": "1"}


@pytest.fixture(scope="session")
def sd1(sd1_path: Path) -> sdrest.StableDiffusion:
    """One SD1 context shared by the tests that only generate (loading costs seconds)."""
    with sdrest.StableDiffusion(sd1_path) as sd:
        yield sd


@pytest.fixture(scope="module", autouse=True)
def _sdrest_logger_restored() -> Iterator[None]:
    """A command run in this process (``sdrest generate``'s entry point) configures the ``sdrest`` logger for a
    terminal; put it back after each test module (module scope: it is set up before the module's own fixtures,
    which may run the command), so later modules see their log records."""
    import logging

    logger = logging.getLogger("sdrest")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved
