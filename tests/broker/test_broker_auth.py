"""A Redis that wants a password. Without it (or with a wrong one, or naming a database Redis does not have) the API
node and the workers refuse to start, in one line that never shows the password; with it the API node waits for a
first worker, and Ctrl-C or SIGTERM ends that wait at once."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from broker_live import RedisServer, bare_environment, free_port

PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server that answers only with :data:`PASSWORD`."""
    server = RedisServer(tmp_path_factory.mktemp("locked-redis"), password=PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def command(tmp: Path, name: str, url: str) -> list[str]:
    """``sdrest serve`` (the API node, no local worker) or ``sdrest worker`` with ``--broker url``."""
    models = tmp / "models"
    models.mkdir(exist_ok=True)
    args = {"serve": ["serve", "--workers", "0", "--port", str(free_port()), "--data-dir", str(tmp / "data")],
            "worker": ["worker", "--data-dir", str(tmp / "data")]}[name]
    return [sys.executable, "-m", "sdrest", *args, "--models-dir", str(models), "--broker", url]


WRONG_URLS: dict[str, Callable[[str], str]] = {
    "no password": lambda url: url.replace(f":{PASSWORD}@", ""),
    "a wrong password": lambda url: url.replace(PASSWORD, "wrong-pw"),
    "a database Redis does not have": lambda url: url.removesuffix("/0") + "/99",
}


@pytest.mark.parametrize("name", ["serve", "worker"])
@pytest.mark.parametrize("wrong", WRONG_URLS)
def test_refused_by_the_broker_is_one_line_without_the_password(tmp_path: Path, locked_redis: RedisServer,
                                                                name: str, wrong: str) -> None:
    url = WRONG_URLS[wrong](locked_redis.url)
    done = subprocess.run(command(tmp_path, name, url), capture_output=True, text=True, timeout=60,
                          env=bare_environment(tmp_path), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("sdrest: error:")]
    assert len(errors) == 1 and "refuses this client" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert PASSWORD not in done.stderr and "wrong-pw" not in done.stderr


@pytest.mark.parametrize(("sent", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_with_the_password_the_api_node_waits_for_a_worker_until_stopped(tmp_path: Path, locked_redis: RedisServer,
                                                                         sent: signal.Signals, exit_code: int) -> None:
    proc = subprocess.Popen(command(tmp_path, "serve", locked_redis.url), stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env=bare_environment(tmp_path), cwd=tmp_path)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # uvicorn says when the app starts: the broker took the password
            seen.append(line)
            if "Waiting for application startup" in line:
                break
        else:
            raise AssertionError("the server stopped:\n" + "".join(seen))
        proc.send_signal(sent)
        said = "".join(seen) + proc.communicate(timeout=30)[1]
        assert proc.returncode == exit_code, said
        assert "stopped before any worker was ready" in said, said
        assert "Traceback" not in said and "refuses" not in said, said
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
