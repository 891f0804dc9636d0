"""third_party/fetch_sdcpp.py: pinned by package name and hash, idempotent, patches applied."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "third_party" / "fetch_sdcpp.py"

pytestmark = pytest.mark.skipif(not SCRIPT.is_file(), reason="runs from a source checkout")


def load_fetch():
    spec = importlib.util.spec_from_file_location("fetch_sdcpp", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fetch_sdcpp"] = module
    spec.loader.exec_module(module)
    return module


def test_patches_exist_and_apply_to_the_fetched_tree() -> None:
    fetch = load_fetch()
    patches = sorted(fetch.PATCHES.glob("*.patch"))
    assert [p.name for p in patches][:1] == ["0001-cancel-generation.patch"]
    header = (fetch.DEFAULT_DEST / "include" / "stable-diffusion.h").read_text()
    assert "sd_cancel_generation(sd_ctx_t* sd_ctx, enum sd_cancel_mode_t mode)" in header
    stamp = (fetch.DEFAULT_DEST / fetch.STAMP).read_text()
    assert fetch.SHA256 in stamp and fetch.patches_digest() in stamp


def test_a_tampered_download_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fetch = load_fetch()
    fake = tmp_path / f"{fetch.PACKAGE.replace('-', '_')}-{fetch.VERSION}.tar.gz"
    fake.write_bytes(b"not the pinned archive")
    monkeypatch.delenv("SDREST_SDIST_CACHE", raising=False)
    # Stand in for pip: "download" the tampered archive into --dest.
    copy = f"import shutil, sys; shutil.copy({str(fake)!r}, sys.argv[sys.argv.index('--dest') + 1])"
    monkeypatch.setattr(fetch, "_pip_command", lambda: [sys.executable, "-c", copy])
    workdir = tmp_path / "download"
    workdir.mkdir()
    with pytest.raises(SystemExit, match="sha256 mismatch"):
        fetch.download_sdist(workdir)
