"""sdrest.models works where the native extension is not built (an API node)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sdrest.testing.signatures import SIGNATURES, bare
from sdrest.testing.headers import write_safetensors

_SCRIPT = """
import sys, importlib.abc

class NoNative(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "sdrest._native":
            raise ImportError("no native build here")
        return None

sys.meta_path.insert(0, NoNative())
import sdrest
info = sdrest.detect(sys.argv[1])
assert "sdrest._native" not in sys.modules
print(info.architecture, info.load_as)
"""


def test_detect_without_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "flux.safetensors"
    write_safetensors(path, bare(SIGNATURES["Flux"]))
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(path)], capture_output=True, text=True, cwd=root, check=True
    )
    assert out.stdout.split() == ["Flux", "diffusion_model"]
