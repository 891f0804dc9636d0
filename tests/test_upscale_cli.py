"""``sdrest upscale`` as a new user runs it: a subprocess, exact sizes, PNG infotext, one-line errors."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sdrest

TIMEOUT = 600


def sdrest_cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m sdrest ARGS`` in a child interpreter, output captured."""
    return subprocess.run([sys.executable, "-m", "sdrest", *args], env=env, cwd=cwd, check=False,
                          capture_output=True, text=True, timeout=TIMEOUT)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command (no traceback)."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def size_of(path: Path) -> tuple[int, int]:
    """An image file's (width, height)."""
    with Image.open(path) as image:
        return image.size


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    """A 24x16 PNG with structure (a gradient and noise)."""
    rng = np.random.default_rng(5)
    x = np.linspace(0, 255, 24, dtype=np.float32)
    array = np.stack([np.tile(x, (16, 1)), rng.uniform(0, 255, (16, 24)), np.full((16, 24), 90.0)], axis=-1)
    path = tmp_path / "photo.png"
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def test_factor_two_on_an_x4_model(child_env: dict[str, str], esrgan_path: Path, photo: Path, tmp_path: Path) -> None:
    done = sdrest_cli(child_env, "upscale", str(photo), "-m", str(esrgan_path), "--factor", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "photo-x2.png"
    assert done.stdout.strip() == "photo-x2.png"
    with Image.open(out) as image:
        assert image.size == (48, 32)
        info = image.info["parameters"]
    assert info == ("Postprocess upscale by: 2, Postprocess upscaler: esrgan_x4, Upscaler scale: 4, "
                    "Upscaler passes: 1, Resize: Lanczos from 96x64")
    with sdrest.Upscaler(esrgan_path) as upscaler, Image.open(photo) as source, Image.open(out) as written:
        expected = upscaler.upscale(source, 2)
        same = np.array_equal(np.asarray(written.convert("RGB")), np.asarray(expected))
        assert same, "the CLI writes the library's result"
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_several_images_into_a_folder(child_env: dict[str, str], esrgan_path: Path, photo: Path,
                                      tmp_path: Path) -> None:
    second = tmp_path / "second.jpg"
    with Image.open(photo) as source:
        source.resize((10, 14)).save(second)
    done = sdrest_cli(child_env, "upscale", str(photo), str(second), "-m", str(esrgan_path), "--factor", "3",
                      "-o", str(tmp_path / "big") + "/")
    assert done.returncode == 0, done.stderr
    outs = [Path(line) for line in done.stdout.split()]
    assert [p.name for p in outs] == ["photo-x3.png", "second-x3.png"]
    assert [size_of(p) for p in outs] == [(72, 48), (30, 42)]


def test_default_factor_and_pattern(child_env: dict[str, str], esrgan_path: Path, photo: Path, tmp_path: Path) -> None:
    done = sdrest_cli(child_env, "upscale", str(photo), "-m", str(esrgan_path), "-o", str(tmp_path / "{name}-big.png"))
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "photo-big.png") as image:
        assert image.size == (96, 64)
        assert "Resize" not in image.info["parameters"]


def test_model_by_name_from_models_dir(child_env: dict[str, str], esrgan_path: Path, photo: Path,
                                       tmp_path: Path) -> None:
    models = tmp_path / "models" / "esrgan"
    models.mkdir(parents=True)
    os.link(esrgan_path, models / esrgan_path.name)
    done = sdrest_cli(child_env, "upscale", str(photo), "-m", "esrgan_x4", "--models-dir", str(tmp_path / "models"),
                      "--factor", "1", "-o", str(tmp_path / "same.png"))
    assert done.returncode == 0, done.stderr
    assert size_of(tmp_path / "same.png") == (24, 16)


def test_refuses_to_overwrite_without_force(child_env: dict[str, str], esrgan_path: Path, photo: Path,
                                            tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    refused = sdrest_cli(child_env, "upscale", str(photo), "-m", str(esrgan_path), "-o", str(out))
    assert refused.returncode == 1
    assert "exists (use --force to overwrite)" in one_line_error(refused)
    assert out.read_bytes() == b"keep me"
    forced = sdrest_cli(child_env, "upscale", str(photo), "-m", str(esrgan_path), "-o", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert size_of(out) == (96, 64)


@pytest.mark.parametrize(("args", "code", "words"), [
    (["{photo}", "-m", "missing.pth"], 1, "-m: no such file: missing.pth"),
    (["nope.png", "-m", "{model}"], 1, "IMG: no such file: nope.png"),
    (["{photo}", "-m", "{model}", "--factor", "0"], 1, "--factor: must be between 1 and 16, got 0"),
    (["{photo}", "-m", "{model}", "--factor", "two"], 2, "argument --factor: invalid float value: 'two'"),
    (["{photo}", "-m", "{model}", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["{photo}"], 2, "the following arguments are required: -m/--model"),
    (["{photo}", "{photo}", "-m", "{model}", "-o", "one.png"], 1, "-o: 2 images need a folder"),
    (["{photo}", "-m", "{model}", "-o", "/sys/out.png"], 1, "-o: cannot write in"),
    (["{model}", "-m", "{model}"], 1, "cannot identify image file"),
])
def test_bad_input_is_one_line(child_env: dict[str, str], esrgan_path: Path, photo: Path, tmp_path: Path,
                               args: list[str], code: int, words: str) -> None:
    if "/sys/out.png" in args and os.geteuid() != 0:
        readonly = tmp_path / "readonly"
        readonly.mkdir(mode=0o500)
        args = [str(readonly / "out.png") if a == "/sys/out.png" else a for a in args]
    filled = [a.format(photo=photo, model=esrgan_path) for a in args]
    before = set(tmp_path.iterdir())
    done = sdrest_cli(child_env, "upscale", *filled, cwd=tmp_path)
    assert done.returncode == code
    assert words in one_line_error(done)
    assert set(tmp_path.iterdir()) == before, "nothing written"


def test_ctrl_c_on_a_terminal(child_env: dict[str, str], esrgan_path: Path, tmp_path: Path) -> None:
    """Ctrl-C mid-pass exits 130 at once (not when the pass ends) and writes nothing."""
    big = tmp_path / "big.png"
    rng = np.random.default_rng(9)
    Image.fromarray(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)).save(big)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "sdrest", "upscale", str(big), "-m", str(esrgan_path),
                             "--factor", "8", "--tile-size", "16"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=follower, env={**child_env, "TERM": "xterm-256color", "COLUMNS": "100"})
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 300
        while not re.search(rb"upscaling.*\b[1-9]\d*/\d+", seen):  # the bar has counted a tile: mid-pass
            left = deadline - time.monotonic()
            assert left > 0, seen[-500:]
            if select.select([leader], [], [], left)[0]:
                seen += os.read(leader, 4096)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        stopped_in = time.monotonic() - started
        while select.select([leader], [], [], 0.5)[0]:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        os.close(leader)
    assert proc.returncode == 130
    assert stopped_in < 10, f"took {stopped_in:.1f} s: the pass (hundreds of tiles) was waited for"
    assert b"sdrest: interrupted" in seen
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png"], "nothing written"
