"""``sdrest detect`` and ``sdrest models`` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdrest.cli import main
from sdrest.models.cli import format_table, human_size


def test_detect_table(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flux = models_dir / "diffusion_models" / "flux1-dev-q8_0.gguf"
    vae = models_dir / "vae" / "ae.safetensors"
    assert main(["detect", str(flux), str(vae)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["file", "kind", "architecture", "load", "as", "quant", "size", "needs", "/", "error"]
    assert "diffusion_model" in out[2] and "Flux" in out[2] and "q8_0" in out[2] and "vae, clip_l, t5xxl" in out[2]
    assert "Flux / SD3" in out[3]


def test_detect_json(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = models_dir / "checkpoints" / "sd_xl_base_1.0.safetensors"
    assert main(["detect", "--json", str(ckpt)]) == 0
    (info,) = json.loads(capsys.readouterr().out)
    assert info["architecture"] == "SDXL" and info["kind"] == "checkpoint" and info["load_as"] == "model"
    assert {c["role"] for c in info["companions"]} == {"vae", "clip_l", "clip_g"}


def test_detect_bad_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    assert main(["detect", str(bad)]) == 1
    assert "unknown" in capsys.readouterr().out


def test_detect_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(tmp_path / "nope.gguf")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_models_table(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", str(models_dir)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[2:-1]}
    assert out.splitlines()[0].split()[:5] == ["id", "kind", "architecture", "quant", "size"]
    assert "Flux" in lines["diffusion_models/flux1-dev-q8_0"]
    assert lines["diffusion_models/qwen-image"].rstrip().endswith("llm")  # missing after resolving
    assert "in vae/ but the header says lora" in lines["vae/oops_a_lora"]
    assert out.splitlines()[-1].startswith(f"{len(lines)} model(s) in ")


def test_models_filters_and_json(models_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    assert main(["models", str(models_dir), "--kind", "vae", "--json", "--cache", str(cache)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"] == 4 and {m["kind"] for m in data["models"]} == {"vae"}
    assert cache.is_file()
    assert main(["models", str(models_dir), "--arch", "Z-Image", "--search", "turbo"]) == 0
    assert "diffusion_models/z_image_turbo-q4_0" in capsys.readouterr().out


def test_models_missing_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", str(tmp_path / "nope")]) == 1
    assert "not found" in capsys.readouterr().err


def test_helpers() -> None:
    assert human_size(999) == "999 B"
    assert human_size(20_000_000_000) == "20.0 GB"
    assert format_table(["a", "bb"], [["xxx", "y"]]).splitlines() == ["a    bb", "---  --", "xxx  y"]
