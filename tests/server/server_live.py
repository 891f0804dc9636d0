"""Helpers for the server tests: a live uvicorn in a thread, polling, SSE reading, a stand-in runner."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import httpx
import uvicorn
from PIL import Image

from sdrest.config import ServerConfig, validate
from sdrest.jobs.outputs import a1111_parameters, save_png
from sdrest.jobs.tasks import TaskContext, TaskResult
from sdrest.server.serving import HeaderTimeoutH11, Server

FINISHED = ("succeeded", "failed", "cancelled")


class LiveServer:
    """uvicorn serving an app in a thread, on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, http=HeaderTimeoutH11))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.client = httpx.Client(base_url=self.url, timeout=60)
        self.runner: FakeRunner | None = None  # the stand-in runner, where the fixture made one

    def __enter__(self) -> Self:
        self.thread.start()
        until(lambda: self.server.started, 30, "the server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()

    @property
    def state(self) -> Any:
        return self.app.state.sdrest

    @property
    def queue(self) -> Any:
        """The server's job queue."""
        return self.state.queue


def until(condition: Callable[[], Any], timeout: float, message: str, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(interval)


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120, statuses: tuple[str, ...] = FINISHED) -> dict:
    """Poll a job until it reaches one of ``statuses``."""
    box: dict[str, Any] = {}

    def check() -> bool:
        box["job"] = client.get(f"/api/queue/job/{job_id}").json()
        return box["job"]["status"] in statuses

    until(check, timeout, f"job {job_id} did not reach {statuses}: {box.get('job')}", interval=0.05)
    return box["job"]


def sse_events(client: httpx.Client, path: str, stop: Callable[[dict], bool], timeout: float = 120) -> list[dict]:
    """Read SSE frames from ``path`` until ``stop(event)`` or the stream ends."""
    events: list[dict] = []
    with client.stream("GET", path, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[len("data: "):])
                events.append(event)
                if stop(event):
                    break
    return events


class FakeRunner:
    """Stands in for the native tasks: ``steps`` steps of ``step_seconds``, cancellable, writing real PNGs.

    While ``hold`` is clear, a started job waits (so tests can hold a job in "running").
    """

    def __init__(self, step_seconds: float = 0.01) -> None:
        self.step_seconds = step_seconds
        self.hold = threading.Event()
        self.hold.set()
        self.started = threading.Event()
        self.ran: list[str] = []
        self.fail_next: str | None = None

    def __call__(self, kind: str, params: dict[str, Any], ctx: TaskContext) -> TaskResult:
        from sdrest.errors import Cancelled

        self.ran.append(ctx.job_id)
        self.started.set()
        while not self.hold.wait(0.01):
            if ctx.cancel.is_set():
                raise Cancelled("cancelled")
        if self.fail_next:
            message, self.fail_next = self.fail_next, None
            raise RuntimeError(message)
        steps = params.get("steps", 4)
        for step in range(1, steps + 1):
            if ctx.cancel.wait(self.step_seconds):
                raise Cancelled("cancelled")
            ctx.progress(step, steps, self.step_seconds, "sampling")
        outputs = []
        for index in range(params.get("batch_count", 1)):
            image = Image.new("RGB", (params["width"], params["height"]), (index * 40 % 256, 80, 160))
            name = f"{index:03d}.png"
            params["model_hash"] = "0123456789"
            save_png(image, ctx.output_dir / name, a1111_parameters(params, params["seed"] + index))
            outputs.append(name)
        return TaskResult(outputs, {"seeds": [params["seed"] + i for i in range(len(outputs))]})


def make_config(tmp: Path, models: Path, **overrides: Any) -> ServerConfig:
    """A config with its data under ``tmp``."""
    return validate(ServerConfig(models_dir=models, data_dir=tmp / "data", port=0, **overrides))




#: the users every auth test server has: name -> role (the password is :func:`password_of` the name)
AUTH_USERS = {"admin": "admin", "alice": "user", "bob": "user"}


def password_of(name: str) -> str:
    """The test password of a user of :data:`AUTH_USERS`."""
    return f"pw-of-{name}-123"


def add_users(data_dir: Path, users: dict[str, str]) -> None:
    """Create ``users`` (name -> role) in a server's auth store, as ``sdrest users add`` does."""
    from sdrest.auth.passwords import hash_password
    from sdrest.auth.store import AuthStore

    store = AuthStore(data_dir / "auth.sqlite3")
    try:
        for name, role in users.items():
            store.add_user(name, role, hash_password(password_of(name)))
    finally:
        store.close()


def login(live: LiveServer, name: str) -> dict[str, Any]:
    """The token pair of a user of :data:`AUTH_USERS`."""
    response = live.client.post("/api/auth/login", json={"username": name, "password": password_of(name)})
    assert response.status_code == 200, response.text
    return response.json()


def client_as(live: LiveServer, token: str | None) -> httpx.Client:
    """A client of ``live`` sending ``token`` as its bearer credentials (none: anonymous)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=live.url, timeout=60, headers=headers)
