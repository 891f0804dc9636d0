"""Helpers for the broker's tests: a real ``redis-server`` on a loopback port, a real API node (uvicorn in this
process) and real ``sdrest worker`` processes."""

from __future__ import annotations

import base64
import io
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis
from PIL import Image
from server_live import LiveServer, make_config, until

import sdrest
from sdrest.server.app import create_app

#: the folder holding the ``sdrest`` package these tests run against
PACKAGE_ROOT = str(Path(sdrest.__file__).resolve().parents[1])


def bare_environment(home: Path) -> dict[str, str]:
    """An environment for a ``sdrest`` command with nothing in it that sets the broker, running the package these
    tests import (the installed one in CI), not the checkout's folder it may start in."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONSAFEPATH": "1", "PYTHONPATH": PACKAGE_ROOT}


def png_b64(size: tuple[int, int] = (16, 16)) -> str:
    """A small PNG, base64."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` on a loopback port, without persistence (a restart loses everything, as a crash would)."""

    def __init__(self, folder: Path, password: str | None = None, tls: tuple[Path, Path] | None = None) -> None:
        """``password``: required of clients; ``tls``: (certificate, key) to answer only TLS with (the
        certificate, its own authority, is named in :attr:`url` as the one to trust)."""
        self.folder = folder
        self.port = free_port()
        self.password = password
        self.tls = tls
        credentials = f":{password}@" if password else ""
        self.url = (f"rediss://{credentials}127.0.0.1:{self.port}/0?ssl_ca_certs={tls[0]}" if tls
                    else f"redis://{credentials}127.0.0.1:{self.port}/0")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it answers."""
        port = ("--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls[0]),
                "--tls-key-file", str(self.tls[1]), "--tls-ca-cert-file", str(self.tls[0]),
                "--tls-auth-clients", "no") if self.tls else ("--port", str(self.port))
        self.proc = subprocess.Popen(["redis-server", *port, "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.folder),
                                      *(("--requirepass", self.password) if self.password else ())],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        until(lambda: self._answers(client), 20, "redis-server did not start")
        client.close()

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        """Stop it (its data is gone)."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(20)
            self.proc = None

    def client(self) -> redis.Redis:
        """A client of it (answers as text)."""
        return redis.Redis.from_url(self.url, decode_responses=True)


class WorkerHost:
    """One ``sdrest worker`` process (one worker), as on another host: its own data dir, the same models dir."""

    def __init__(self, name: str, broker: str, models: Path, folder: Path, lease: float,
                 extra: tuple[str, ...] = ()) -> None:
        self.name = name
        self.worker = f"{name}.0"
        self.log = folder / f"{name}.log"
        # the sdrest these tests import (the installed one in CI, a checkout with its built module here), not the
        # folder the command runs in
        env = {**os.environ, "PYTHONSAFEPATH": "1",
               "PYTHONPATH": os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sdrest", "worker", "--broker", broker, "--models-dir", str(models),
                 "--data-dir", str(folder / name), "--name", name, "--lease-seconds", str(lease), "--n-threads", "1",
                 "--cancel-grace-seconds", "60", *extra],
                env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the worker host process alone (its worker process ends when it loses it)."""
        self.proc.send_signal(sig)

    def stop(self) -> None:
        """Stop it and everything it started."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


class Cluster:
    """Redis, an API node with no local worker, and worker hosts: all real processes but the API node."""

    def __init__(self, folder: Path, models: Path, lease: float = 3.0, redis_tls: tuple[Path, Path] | None = None,
                 **config: Any) -> None:
        self.folder = folder
        self.models = models
        self.lease = lease
        self.redis = RedisServer(folder, tls=redis_tls)
        self.config = config
        self.hosts: dict[str, WorkerHost] = {}
        self.api: LiveServer | None = None

    def start(self, workers: int) -> None:
        """Start Redis, ``workers`` worker hosts and the API node; wait until every worker is ready."""
        self.redis.start()
        for index in range(workers):
            self.add_worker(f"w{index}")
        self.start_api()
        self.wait_workers(len(self.hosts))

    def add_worker(self, name: str, *extra: str) -> WorkerHost:
        """Start one more worker host."""
        host = self.hosts[name] = WorkerHost(name, self.redis.url, self.models, self.folder, self.lease, extra)
        return host

    def upscale(self) -> str:
        """Queue a quick job (a 16x16 image upscaled x4); its id."""
        assert self.api is not None
        response = self.api.client.post("/api/generate/upscale", json={"image": png_b64(), "esrgan_model": "esrgan_x4"})
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    def start_api(self) -> LiveServer:
        """Start (or start again) the API node on the same data dir."""
        config = make_config(self.folder, self.models, broker=self.redis.url, workers=0, lease_seconds=self.lease,
                             **self.config)
        self.api = LiveServer(create_app(config)).__enter__()
        return self.api

    def stop_api(self) -> None:
        """Stop the API node (as a server stop does)."""
        if self.api is not None:
            self.api.__exit__(None, None, None)
            self.api = None

    def wait_workers(self, count: int, timeout: float = 120) -> None:
        """Until ``count`` remote workers are alive and ready."""
        def ready() -> bool:
            assert self.api is not None
            alive = [w for w in self.api.queue.workers() if w.alive and w.capabilities]
            return len(alive) >= count
        until(ready, timeout, f"{count} workers did not join", interval=0.2)

    def stop(self) -> None:
        """Stop everything."""
        try:
            self.stop_api()
        finally:
            for host in self.hosts.values():
                host.stop()
            self.redis.stop()


