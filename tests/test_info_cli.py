"""``sdrest info`` and ``sdrest --version`` as a new user runs them."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import sdrest
from sdrest import system
from sdrest.threads import available_physical_cores

FETCH_SCRIPT = Path(__file__).resolve().parents[1] / "third_party" / "fetch_sdcpp.py"


def sdrest_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m sdrest ARGS`` in a child interpreter, output captured."""
    return subprocess.run([sys.executable, "-m", "sdrest", *args], env=env, check=False, capture_output=True,
                          text=True, timeout=120)


def test_version(child_env: dict[str, str]) -> None:
    done = sdrest_cli(child_env, "--version")
    assert done.returncode == 0, done.stderr
    pin = runpy.run_path(str(FETCH_SCRIPT))
    assert done.stdout.strip().startswith(f"sdrest {sdrest.__version__} (stable-diffusion.cpp from "
                                          f"{pin['PACKAGE']}=={pin['VERSION']}, Python ")


def test_info_json_states_the_build(child_env: dict[str, str], tmp_path: Path) -> None:
    env = {**child_env, "SDREST_DATA_DIR": str(tmp_path / "data"), "SDREST_MODELS_DIR": str(tmp_path / "models")}
    done = sdrest_cli(env, "info", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    pin = runpy.run_path(str(FETCH_SCRIPT))  # the pin's one source of truth
    assert info["sdrest"]["version"] == sdrest.__version__
    assert info["sdcpp"]["pin"] == f"{pin['PACKAGE']}=={pin['VERSION']}"
    assert info["sdcpp"]["sha256"] == pin["SHA256"]
    assert len(info["sdcpp"]["patches"]) == 64
    assert info["sdcpp"]["reported_commit"] != subprocess.run(
        ["git", "-C", str(FETCH_SCRIPT.parent), "rev-parse", "--short", "HEAD"],
        check=False, capture_output=True, text=True).stdout.strip(), "sd.cpp must not report sdrest's own commit"
    assert "CPU" in info["backends"]
    assert info["backends"] == system.backends()
    assert {d["backend"] for d in info["devices"]} <= set(info["backends"])
    cpu = [d for d in info["devices"] if d["type"] == "cpu"]
    assert cpu and cpu[0]["memory_total"] > 0
    assert info["cpu_features"] and all(f"{f} = 1" in system.system_info() for f in info["cpu_features"])
    assert info["threads_default"] == available_physical_cores()
    assert info["folders"]["data_dir"] == str(tmp_path / "data")
    assert info["folders"]["models_dir"] == str(tmp_path / "models")


def test_info_text(child_env: dict[str, str]) -> None:
    done = sdrest_cli(child_env, "info")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    keys = [line.split(":", 1)[0].strip() for line in lines if not line.startswith(" ")]
    for key in ("sdrest", "stable-diffusion.cpp", "backends", "devices", "cpu features", "threads (default)",
                "data dir", "models dir"):
        assert key in keys, done.stdout
    assert any(line.startswith("  CPU: ") for line in lines)


def test_help_teaches_with_examples(child_env: dict[str, str]) -> None:
    for command in ("convert", "upscale", "info"):
        done = sdrest_cli(child_env, command, "--help")
        assert done.returncode == 0
        assert "examples:" in done.stdout and f"sdrest {command}" in done.stdout.split("examples:", 1)[1]
    top = sdrest_cli(child_env, "--help")
    for command in ("convert", "upscale", "info"):
        assert f"    {command} " in top.stdout
