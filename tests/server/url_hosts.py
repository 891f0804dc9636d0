"""Hosts for the URL-download tests: traps nothing may connect to, and an image server on a loopback address."""

from __future__ import annotations

import io
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from PIL import Image


def png_bytes(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 40, 90)) -> bytes:
    """A small PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


class Trap:
    """A listening socket that no fetch may reach.

    It never accepts: a connection that reaches it completes in the kernel and waits in the backlog, where
    :meth:`connections` finds it. So nothing slips past between a connect and the check, as it could with an
    accepting thread that has not yet run.
    """

    def __init__(self, host: str) -> None:
        self.host = host
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.caught = 0

    @property
    def url(self) -> str:
        """``http://host:port/``."""
        return f"http://[{self.host}]:{self.port}/" if ":" in self.host else f"http://{self.host}:{self.port}/"

    def connections(self) -> int:
        """How many connections have reached the trap so far."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return self.caught
            conn.close()
            self.caught += 1

    def close(self) -> None:
        """Stop listening."""
        self.sock.close()


class _Handler(BaseHTTPRequestHandler):
    """The image server's answers, by path (see :class:`ImageServer`)."""

    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "image/png", length: bool = True,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        release = self.server.release
        if path == "/image.png":
            self._send(200, self.server.png)
        elif path.startswith("/hops/"):  # /hops/N: N redirects (relative Locations), then the image
            left = int(path.rsplit("/", 1)[1])
            if left:
                self._send(302, b"", headers={"Location": f"{left - 1}"})
            else:
                self._send(200, self.server.png)
        elif path == "/redirect":  # to the absolute URL in ?to=
            self._send(302, b"", headers={"Location": query["to"][0]})
        elif path == "/big":  # over the limit, and says so in its Content-Length
            self._send(200, self.server.png + bytes(self.server.big))
        elif path == "/big-unsized":  # over the limit, without a Content-Length (the connection's end ends it)
            self._send(200, self.server.png + bytes(self.server.big), length=False)
        elif path == "/stall":  # never answers
            release.wait()
        elif path == "/drip":  # a byte at a time, never done while the test runs
            self.send_response(200)
            self.send_header("Content-Length", "5000")  # under the tests' size limits
            self.end_headers()
            try:
                while not release.wait(0.05):
                    self.wfile.write(b"x")
                    self.wfile.flush()
            except OSError:  # the client gave up
                pass
        elif path == "/page.html":
            self._send(200, b"<html>not an image</html>", "text/html")
        else:
            self._send(404, b"no such thing", "text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[tuple[str, str]]
    release: threading.Event
    png: bytes
    big: int

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up mid-answer (what the tests make fetches do)


class ImageServer:
    """An HTTP server on ``host`` that records every request (path, ``Host`` header) and answers:
    ``/image.png`` a PNG; ``/hops/N`` N redirects then the PNG; ``/redirect?to=URL`` a redirect there;
    ``/big`` and ``/big-unsized`` a body ``big`` bytes longer than the PNG, with and without a Content-Length;
    ``/stall`` nothing; ``/drip`` a byte every 50 ms; ``/page.html`` HTML; anything else a 404.
    ``tls`` (an ``ssl.SSLContext``) serves https instead."""

    def __init__(self, host: str, big: int = 0, tls: Any = None) -> None:
        self.httpd = _Server((host, 0), _Handler)
        self.httpd.requests = []
        self.httpd.release = threading.Event()
        self.httpd.png = png_bytes()
        self.httpd.big = big
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port: int = self.httpd.server_address[1]
        self.base = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def png(self) -> bytes:
        """The PNG it serves."""
        return self.httpd.png

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(path, Host header) of every request so far."""
        return self.httpd.requests

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
