"""Connections that never finish a request (slowloris) are closed; normal keep-alive use is unaffected."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from server_live import FakeRunner, LiveServer, make_config

from sdrest.server.app import create_app
from sdrest.server.serving import Server, uvicorn_config

HEADER_TIMEOUT = 1.0


class TunedServer(LiveServer):
    """A live server run with the uvicorn settings ``sdrest serve`` uses (timeouts from the config)."""

    def __init__(self, app: object, config: uvicorn.Config) -> None:
        super().__init__(app)
        self.server = Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TunedServer]:
    tmp = tmp_path_factory.mktemp("conn")
    (tmp / "models").mkdir()
    config = make_config(tmp, tmp / "models", header_timeout_seconds=HEADER_TIMEOUT, keep_alive_seconds=2,
                         max_connections=50)
    app = create_app(config, runner=FakeRunner())
    with TunedServer(app, uvicorn_config(app, config, log_level="warning")) as live:
        yield live


def closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes ``sock`` (recv returns b""); fails after ``limit``."""
    started = time.monotonic()
    sock.settimeout(limit)
    while True:
        data = sock.recv(4096)
        if not data:
            return time.monotonic() - started


def test_a_silent_connection_is_closed(tuned: TunedServer) -> None:
    with socket.create_connection(("127.0.0.1", tuned.port)) as sock:
        assert closed_after(sock, 10) < HEADER_TIMEOUT + 2


def test_a_head_sent_a_byte_at_a_time_is_cut_off(tuned: TunedServer) -> None:
    with socket.create_connection(("127.0.0.1", tuned.port)) as sock:
        started = time.monotonic()
        head = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
        sock.settimeout(0.2)
        try:
            for byte in head:
                sock.sendall(bytes([byte]))
                try:
                    if sock.recv(1) == b"":
                        break
                except TimeoutError:
                    continue
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert time.monotonic() - started < HEADER_TIMEOUT + 3


def test_keep_alive_requests_still_work(tuned: TunedServer) -> None:
    for _ in range(3):
        assert tuned.client.get("/api/health").status_code == 200
