"""Our sdist carries the pinned, patched sd.cpp source, so installing from it downloads nothing."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (ROOT / "third_party" / "fetch_sdcpp.py").is_file(),
                                reason="runs from a source checkout")


def test_sdist_contains_the_patched_source_and_its_stamp(tmp_path: Path) -> None:
    code = ("import sys; from scikit_build_core.build import build_sdist; "
            "print(build_sdist(sys.argv[1]))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    archive = tmp_path / done.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        top = archive.name.removesuffix(".tar.gz")
        sdcpp = f"{top}/third_party/stable-diffusion.cpp"
        assert f"{sdcpp}/include/stable-diffusion.h" in names
        assert f"{sdcpp}/ggml/CMakeLists.txt" in names
        assert f"{sdcpp}/.sdrest-fetched" in names, "without the stamp, a build from the sdist would download again"
        header = tar.extractfile(f"{sdcpp}/include/stable-diffusion.h").read().decode()
        assert "sd_cancel_generation" in header
        assert f"{top}/third_party/fetch_sdcpp.py" in names
        assert not any(n.startswith(f"{top}/build/") for n in names)
        assert not any(n.endswith(".so") for n in names)
