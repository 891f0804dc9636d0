"""``sdrest generate`` as a new user runs it: a subprocess, its files, exit codes and messages."""

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

from sdrest.cli import build_parser
from sdrest.infotext import parse_infotext

SIZE = 64
TINY = ["-W", str(SIZE), "-H", str(SIZE), "--steps", "1", "-t", "2"]


def sdrest(env: dict[str, str], *args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sdrest", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory, sd1_path: Path) -> Path:
    """A models dir holding the synthetic SD1 checkpoint (a link) under checkpoints/."""
    root = tmp_path_factory.mktemp("models")
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "sd1.safetensors").symlink_to(sd1_path)
    return root


@pytest.fixture(scope="module")
def first_run(child_env: dict[str, str], models_dir: Path, tmp_path_factory: pytest.TempPathFactory,
              ) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``sdrest generate "a cat" -m sd1 --models-dir DIR -o cat-{seed}.png``, piped."""
    cwd = tmp_path_factory.mktemp("run")
    done = sdrest(child_env, "generate", "a cat", "-m", "sd1", "--models-dir", str(models_dir), *TINY,
                  "-o", "cat-{seed}.png", cwd=cwd)
    return cwd, done


def test_generate_writes_a_png_with_its_parameters(first_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    cwd, done = first_run
    assert done.returncode == 0, done.stderr
    assert done.stdout == "cat-42.png\n", "stdout names the file written (sd-cli's default seed is 42)"
    with Image.open(cwd / "cat-42.png") as image:
        assert image.size == (SIZE, SIZE)
        fields = parse_infotext(image.info["parameters"])
    assert fields["prompt"] == "a cat" and fields["Seed"] == "42" and fields["Steps"] == "1"
    assert fields["Model"] == "sd1" and fields["Size"] == f"{SIZE}x{SIZE}" and fields["Sampler"] == "Euler a"


def test_piped_progress_is_plain_lines(first_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, done = first_run
    assert "\r" not in done.stderr and "\x1b" not in done.stderr, "no bar drawing when stderr is not a terminal"
    lines = done.stderr.splitlines()
    assert any(re.fullmatch(r"loading \d+/\d+ .*", line) for line in lines), done.stderr
    assert any(re.fullmatch(r"sampling 1/1 [\d.]+ (it/s|s/it) in \d+:\d\d", line) for line in lines), done.stderr


def test_refuses_to_overwrite_without_force(child_env: dict[str, str], sd1_path: Path, tmp_path: Path,
                                            first_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    cwd = tmp_path
    before = (first_run[0] / "cat-42.png").read_bytes()
    (cwd / "cat-42.png").write_bytes(before)
    done = sdrest(child_env, "generate", "a dog", "-m", str(sd1_path), *TINY, "-o", "cat-{seed}.png", cwd=cwd)
    assert done.returncode == 1
    assert done.stderr == "sdrest: error: output: 'cat-42.png' exists (use --force to overwrite)\n"
    assert (cwd / "cat-42.png").read_bytes() == before
    forced = sdrest(child_env, "generate", "a dog", "-m", str(sd1_path), *TINY, "-o", "cat-{seed}.png", "--force",
                    "-q", cwd=cwd)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout == "" and forced.stderr == "", "-q prints nothing"
    with Image.open(cwd / "cat-42.png") as image:
        assert parse_infotext(image.info["parameters"])["prompt"] == "a dog"


@pytest.mark.parametrize("args,message", [
    (["a cat", "-m", "nowhere.safetensors"], "sdrest: error: model: no such file: 'nowhere.safetensors'"),
    (["a cat", "-m", "x.gguf", "--bogus"], "sdrest generate: error: unrecognized arguments: --bogus"),
    (["a cat", "-m", "x.gguf", "--sampling-method", "fast"], "sdrest generate: error: argument --sampling-method: "
                                                           "invalid sampler 'fast' (choose from euler, euler_a"),
    (["a cat", "-m", "x.gguf", "-M", "convert"], "sdrest: error: -M convert: use `sdrest convert` for that"),
    (["a cat"], "sdrest: error: model: give a model"),
])
def test_bad_input_is_one_line(child_env: dict[str, str], tmp_path: Path, args: list[str], message: str) -> None:
    env = {k: v for k, v in child_env.items() if k != "SDREST_MODELS_DIR"}
    done = sdrest(env, "generate", *args, cwd=tmp_path, timeout=120)
    assert done.returncode in (1, 2)
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(message), done.stderr
    assert "Traceback" not in done.stderr


def test_unwritable_output_fails_before_loading(child_env: dict[str, str], sd1_path: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    done = sdrest(child_env, "generate", "a cat", "-m", str(sd1_path), *TINY, "-o", "afile/out.png", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("sdrest: error: output: cannot create folder 'afile'") and \
        done.stderr.count("\n") == 1, done.stderr
    assert "loading" not in done.stderr


def test_debug_shows_the_traceback(child_env: dict[str, str], tmp_path: Path) -> None:
    done = sdrest(child_env, "generate", "a cat", "-m", "nowhere.safetensors", "--debug", cwd=tmp_path, timeout=120)
    assert done.returncode == 1 and "Traceback" in done.stderr
    assert done.stderr.rstrip().endswith("sdrest: error: model: no such file: 'nowhere.safetensors' "
                                         "(no --models-dir to look in)")


def test_ctrl_c_stops_within_a_step_and_leaves_no_file(child_env: dict[str, str], sd1_path: Path,
                                                        tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sdrest", "generate", "a cat", "-m", str(sd1_path), "-W", "64",
                             "-H", "64", "--steps", "200", "-t", "2", "-o", "out.png"],
                            cwd=tmp_path, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the plain progress says when loading is done: sampling comes next
            if line.startswith("loading "):
                break
        else:
            pytest.fail(f"no progress before the end (exit {proc.wait()})")
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        code = proc.wait(timeout=120)
        stopped_in = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert code == 130, rest
    assert rest.endswith("sdrest: interrupted\n") and "Traceback" not in rest, rest
    assert stopped_in < 60, "200 steps would take minutes: it stopped at the next step"
    assert list(tmp_path.iterdir()) == [], "no output, no partial file"


def test_progress_bar_on_a_terminal(child_env: dict[str, str], sd1_path: Path, tmp_path: Path) -> None:
    main, secondary = pty.openpty()
    env = {**child_env, "TERM": "xterm", "COLUMNS": "100"}
    proc = subprocess.Popen([sys.executable, "-m", "sdrest", "generate", "a cat", "-m", str(sd1_path), *TINY,
                             "--steps", "2", "-o", "out.png"], cwd=tmp_path, env=env, stdin=secondary,
                            stdout=secondary, stderr=secondary)
    os.close(secondary)
    screen = b""
    try:
        while True:
            ready, _, _ = select.select([main], [], [], 600)
            if not ready:
                break
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
    finally:
        os.close(main)
        code = proc.wait(timeout=60)
    raw = screen.decode("utf-8", "replace")
    assert code == 0, raw[-2000:]
    assert "\x1b[" in raw, "the bar is drawn with terminal control sequences"
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", raw)
    assert re.search(r"sampling\s+━+\s+2/2", text), text[-2000:]
    assert re.search(r"\d+\.\d\d (it/s|s/it)", text)
    assert "out.png" in text
    assert (tmp_path / "out.png").exists()


def test_every_sd_cli_option_is_accepted(sd_cli: Path) -> None:
    helped = subprocess.run([str(sd_cli), "--help"], capture_output=True, text=True, timeout=60)
    flags = set(re.findall(r"^\s+(?:(-\w), )?(--[\w-]+)", helped.stdout, re.M))
    assert len(flags) > 120, helped.stdout[:2000]
    parser = build_parser()
    generate = parser._subparsers._group_actions[0].choices["generate"]  # type: ignore[union-attr]
    known = generate._option_string_actions
    missing = [long for short, long in flags if long not in known] + \
              [short for short, long in flags if short and known.get(short) is not known.get(long)]
    assert missing == [], f"sd-cli options sdrest generate lacks (or spells differently): {missing}"


def test_same_command_line_same_pixels_as_sd_cli(child_env: dict[str, str], sd_cli: Path, sd1_path: Path,
                                                 first_run: tuple[Path, subprocess.CompletedProcess[str]],
                                                 tmp_path: Path) -> None:
    """The subprocess path end to end: the first run's file against sd-cli's with the same flags."""
    cwd, _ = first_run
    done = subprocess.run([str(sd_cli), "-p", "a cat", "-m", str(sd1_path), *TINY, "-o", str(tmp_path / "cli.png")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:]
    with Image.open(cwd / "cat-42.png") as ours, Image.open(tmp_path / "cli.png") as theirs:
        assert np.array_equal(np.asarray(ours.convert("RGB")), np.asarray(theirs.convert("RGB")))


def test_video_mode_refuses_an_image_model(child_env: dict[str, str], sd1_path: Path, tmp_path: Path) -> None:
    done = sdrest(child_env, "generate", "a cat", "-M", "vid_gen", "-m", str(sd1_path), *TINY, "-o", "v.webp",
                  cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "sdrest: error: this model cannot generate video " \
                                          "(only the Wan family and SVD can)"
    assert not (tmp_path / "v.webp").exists()
