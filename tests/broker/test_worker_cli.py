"""``sdrest worker``'s refusals: one readable line and a non-zero exit, before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from broker_live import bare_environment


def worker(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``sdrest worker ARGS`` in ``tmp`` with nothing in the environment that sets the broker."""
    return subprocess.run([sys.executable, "-m", "sdrest", "worker", *args], capture_output=True, text=True,
                          cwd=tmp, timeout=60, env=bare_environment(tmp))


@pytest.mark.parametrize(("args", "said"), [
    ((), "broker: required"),
    (("--broker", "http://redis:6379"), "broker: expected a Redis URL"),
    (("--broker", "redis://127.0.0.1:1/0"), "cannot reach the broker at redis://127.0.0.1:1/0"),
    (("--broker", "redis://127.0.0.1:1/0", "--name", "two words"), "worker name 'two words'"),
    (("--broker", "redis://127.0.0.1:1/0", "--workers", "0"), "workers: must be at least 1"),
])
def test_bad_settings_are_one_line(tmp_path: Path, args: tuple[str, ...], said: str) -> None:
    done = worker(tmp_path, *args)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], done.stderr
