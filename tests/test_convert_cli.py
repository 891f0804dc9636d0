"""``sdrest convert`` as a new user runs it: a subprocess, its exit code, its files and its one-line errors."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import sdrest
from sdrest.models.gguf import read_gguf
from sdrest.testing import synthetic

TIMEOUT = 900


def sdrest_cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m sdrest ARGS`` in a child interpreter, output captured (a pipe: no live bar)."""
    return subprocess.run([sys.executable, "-m", "sdrest", *args], env=env, cwd=cwd, check=False,
                          capture_output=True, text=True, timeout=TIMEOUT)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command (no traceback, no progress)."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def gguf_tensors(path: Path) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """name -> (ggml type, shape, data bytes) of a GGUF file (sd-cli's tensor order varies: compare by name)."""
    table = read_gguf(path)
    out = {}
    with path.open("rb") as f:
        for info in table.tensors.values():
            f.seek(info.offset)
            out[info.name] = (info.dtype, info.shape, f.read(info.nbytes))
    return out


def assert_same_tensors(ours: Path, theirs: Path) -> set[str]:
    """Every tensor equal in type, shape and bytes; returns the types seen."""
    a, b = gguf_tensors(ours), gguf_tensors(theirs)
    assert set(a) == set(b)
    assert len(a) > 10
    for name, (ggml_type, shape, data) in a.items():
        assert (ggml_type, shape) == b[name][:2], name
        assert data == b[name][2], f"{name}: bytes differ"
    return {ggml_type for ggml_type, _, _ in a.values()}


def no_leftovers(folder: Path) -> list[str]:
    """Hidden temporary files left in ``folder``."""
    return [p.name for p in folder.iterdir() if ".partial" in p.name]


@pytest.fixture(scope="module")
def vae_path() -> Path:
    """The synthetic SD1 VAE (167 MB of f32): converts in seconds, has tensors every type can take."""
    return synthetic.sd1_vae()


@pytest.mark.parametrize("weight_type", ["q8_0", "q4_0", "q4_K", "f16", None])
def test_matches_sd_cli(vae_path: Path, sd_cli: Path, child_env: dict[str, str], tmp_path: Path,
                        weight_type: str | None) -> None:
    type_args = ["--type", weight_type] if weight_type else []  # None: both keep the source's types
    theirs = tmp_path / "cli.gguf"
    done = subprocess.run([str(sd_cli), "-M", "convert", "-m", str(vae_path), "-o", str(theirs), *type_args],
                          check=False, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ours = tmp_path / "ours.gguf"
    cli_type = ["--type", weight_type.lower()] if weight_type else []  # q4_k as a user types it
    mine = sdrest_cli(child_env, "convert", str(vae_path), str(ours), *cli_type)
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout.strip() == str(ours)
    assert "\x1b" not in mine.stderr, "no terminal control codes when stderr is a pipe"
    types = assert_same_tensors(ours, theirs)
    assert (weight_type or sdrest.detect(vae_path).quantization) in types  # None: the source's own type
    assert no_leftovers(tmp_path) == []


def test_vae_and_tensor_type_rules_match_sd_cli(vae_path: Path, sd_cli: Path, child_env: dict[str, str],
                                                tmp_path: Path) -> None:
    model = synthetic.taesd()
    rules = "^vae\\.decoder\\.=f16"
    theirs = tmp_path / "cli.gguf"
    done = subprocess.run([str(sd_cli), "-M", "convert", "-m", str(model), "--vae", str(vae_path), "-o", str(theirs),
                           "--type", "q8_0", "--tensor-type-rules", rules], check=False, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ours = tmp_path / "ours.gguf"
    mine = sdrest_cli(child_env, "convert", str(model), str(ours), "--vae", str(vae_path), "--type", "q8_0",
                      "--tensor-type-rules", rules)
    assert mine.returncode == 0, mine.stderr
    assert assert_same_tensors(ours, theirs) >= {"q8_0", "f16"}
    names = set(gguf_tensors(ours))
    assert any(n.startswith("vae.decoder.") for n in names) and any(n.startswith("decoder.") for n in names)


def test_safetensors_output(vae_path: Path, child_env: dict[str, str], tmp_path: Path) -> None:
    """A .safetensors DST is written as safetensors (sd.cpp decides by the suffix; the temporary name keeps it)."""
    out = tmp_path / "vae-f16.safetensors"
    done = sdrest_cli(child_env, "convert", str(vae_path), str(out), "--type", "f16")
    assert done.returncode == 0, done.stderr
    info = sdrest.detect(out)
    assert info.quantization == "f16", info
    assert no_leftovers(tmp_path) == []


def test_refuses_to_overwrite_without_force(child_env: dict[str, str], tmp_path: Path, esrgan_path: Path) -> None:
    out = tmp_path / "out.gguf"
    out.write_bytes(b"keep me")
    refused = sdrest_cli(child_env, "convert", str(esrgan_path), str(out), "--type", "q8_0")
    assert refused.returncode == 1
    assert "exists (use --force to overwrite)" in one_line_error(refused)
    assert out.read_bytes() == b"keep me"
    forced = sdrest_cli(child_env, "convert", str(esrgan_path), str(out), "--type", "q8_0", "--force")
    assert forced.returncode == 0, forced.stderr
    assert read_gguf(out).tensors
    assert no_leftovers(tmp_path) == []


def test_bad_type_lists_the_c_librarys_types(child_env: dict[str, str], tmp_path: Path, esrgan_path: Path) -> None:
    done = sdrest_cli(child_env, "convert", str(esrgan_path), str(tmp_path / "out.gguf"), "--type", "q9_9")
    assert done.returncode == 1
    line = one_line_error(done)
    assert "unknown weight type 'q9_9'" in line
    listed = line.split("valid types: ", 1)[1].split(", ")
    assert listed == sdrest.weight_types()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "code", "words"), [
    (["missing.safetensors", "out.gguf"], 1, "no such file: missing.safetensors"),
    (["a.safetensors", "b.gguf", "--bogus"], 2, "unrecognized arguments: --bogus"),
    ([], 2, "the following arguments are required: SRC, DST"),
])
def test_bad_input_is_one_line(child_env: dict[str, str], tmp_path: Path, args: list[str], code: int,
                               words: str) -> None:
    done = sdrest_cli(child_env, "convert", *args, cwd=tmp_path)
    assert done.returncode == code
    assert words in one_line_error(done)
    assert list(tmp_path.iterdir()) == []


def test_missing_vae(child_env: dict[str, str], tmp_path: Path, esrgan_path: Path) -> None:
    done = sdrest_cli(child_env, "convert", str(esrgan_path), str(tmp_path / "o.gguf"), "--vae", "nope.safetensors")
    assert done.returncode == 1
    assert "--vae: no such file: nope.safetensors" in one_line_error(done)


def test_unwritable_output(child_env: dict[str, str], tmp_path: Path, esrgan_path: Path) -> None:
    if os.geteuid() == 0:
        folder = Path("/sys")  # not even root may create files there
    else:
        folder = tmp_path / "readonly"
        folder.mkdir(mode=0o500)
    done = sdrest_cli(child_env, "convert", str(esrgan_path), str(folder / "out.gguf"), "--type", "q8_0")
    assert done.returncode == 1
    assert f"cannot write in '{folder}'" in one_line_error(done)


class OnTerminal:
    """``sdrest ARGS`` with stderr on a pseudo-terminal (as in a shell): the live bar shows there."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.leader, follower = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "-m", "sdrest", *args],
                                     env={**env, "TERM": "xterm-256color", "COLUMNS": "100"},
                                     stdout=subprocess.PIPE, stderr=follower, text=True)
        os.close(follower)
        self.seen = b""

    def read_until(self, marker: bytes, timeout: float = 300) -> None:
        """Read the terminal until ``marker`` shows (select() wakes on output: no polling)."""
        deadline = time.monotonic() + timeout
        while marker not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{marker!r} never showed: {self.seen[-500:]!r}"
            if select.select([self.leader], [], [], left)[0]:
                self.seen += os.read(self.leader, 4096)

    def finish(self, timeout: float = 120) -> str:
        """Wait for the exit, read what is left; the whole terminal text."""
        self.proc.wait(timeout=timeout)
        while select.select([self.leader], [], [], 0.5)[0]:
            try:
                chunk = os.read(self.leader, 4096)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            self.seen += chunk
        return self.seen.decode(errors="replace")

    def close(self) -> None:
        """Kill the command if it still runs; close the terminal."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        os.close(self.leader)


#: SD1's tensor count, as the bar shows it ("12/1130"): seeing it means the conversion is under way.
SD1_PROGRESS = b"/1130"


def test_ctrl_c_on_a_terminal(child_env: dict[str, str], sd1_path: Path, tmp_path: Path) -> None:
    """On a terminal: a live progress bar over the tensors; Ctrl-C once it moves exits 130 and leaves nothing."""
    out = tmp_path / "sd1.gguf"
    term = OnTerminal(child_env, "convert", str(sd1_path), str(out), "--type", "q8_0")
    try:
        term.read_until(SD1_PROGRESS)
        workers = psutil.Process(term.proc.pid).children()
        assert workers, "the conversion runs in a child process"
        term.proc.send_signal(signal.SIGINT)
        text = term.finish()
    finally:
        term.close()
    assert term.proc.returncode == 130
    assert "converting" in text and "\x1b[" in text, "a live bar on a terminal"
    assert "sdrest: interrupted" in text
    assert not out.exists() and no_leftovers(tmp_path) == []
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, "the converter was left running"


def test_a_killed_converter_leaves_nothing(child_env: dict[str, str], sd1_path: Path, tmp_path: Path) -> None:
    """A failure mid-way (the converter killed, as the OOM killer would): exit 1, one line, no partial file."""
    out = tmp_path / "sd1.gguf"
    term = OnTerminal(child_env, "convert", str(sd1_path), str(out), "--type", "q8_0")
    try:
        term.read_until(SD1_PROGRESS)
        for worker in psutil.Process(term.proc.pid).children():
            worker.kill()
        text = term.finish()
    finally:
        term.close()
    assert term.proc.returncode == 1
    assert "converter crashed (signal SIGKILL)" in text and "Traceback" not in text
    assert not out.exists() and no_leftovers(tmp_path) == []
