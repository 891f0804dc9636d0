"""ASGI middleware: one access-log line per request, security headers on every response, and a cap on request
bodies (413 before the body is read into memory)."""

from __future__ import annotations

import logging
import re
import secrets
import time

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sdrest.server.errors import send_error

ACCESS_LOG = logging.getLogger("sdrest.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class AccessLog:
    """Logs ``METHOD path status ms rid=ID`` when a response ends (at INFO on ``sdrest.access``).

    The request id is the client's ``X-Request-ID`` when it is a plain token, else a new one; the response
    carries it back, so a client's report can be matched to the log line.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), "")
        request_id = given if _REQUEST_ID.match(given) else secrets.token_hex(8)
        started = time.perf_counter()
        status = 500

        async def tagged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, tagged_send)
        finally:
            ACCESS_LOG.info("%s %s %d %.1fms rid=%s", scope["method"], scope["path"], status,
                            (time.perf_counter() - started) * 1000, request_id)


#: the Content-Security-Policy of a page: its own scripts, styles and images only (and images from data: and
#: blob: URLs, which the UI makes); a route may send a stricter or more specific one of its own
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: the policy of everything else (JSON, images, streams): nothing in it may run or be framed
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
_SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                     (b"x-frame-options", b"DENY"), (b"cross-origin-opener-policy", b"same-origin")]


class SecurityHeaders:
    """Adds ``X-Content-Type-Options: nosniff``, ``Referrer-Policy``, ``X-Frame-Options`` and a
    Content-Security-Policy (strict for pages, nothing-runs for data) to every response that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in _SECURITY_HEADERS if name not in present]
                if b"content-security-policy" not in present:
                    html = any(name.lower() == b"content-type" and value.startswith(b"text/html")
                               for name, value in headers)
                    headers.append((b"content-security-policy", (PAGE_POLICY if html else DATA_POLICY).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: how long a refused body is read on, so that the 413 reaches the client
DRAIN_SECONDS = 10.0


class BodyLimit:
    """Refuse bodies larger than ``max_bytes`` with a JSON 413 (by Content-Length, and while streaming).

    Before answering, the rest of a refused body is read and dropped, up to as much again as the limit and for
    :data:`DRAIN_SECONDS`: a server that closes a connection with unread data makes the kernel reset it, and the
    reset can destroy the answer before the client reads it. A body drained whole leaves the connection usable.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:  # drained only when it can be whole
                    drained = declared <= 2 * self.max_bytes and await self._drain(receive, 0)
                    await self._refuse(scope, send, drained=drained)
                    return
        seen = 0
        ended = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, ended
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                ended = not message.get("more_body", False)
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, send, drained=ended or await self._drain(receive, seen))

    async def _drain(self, receive: Receive, read: int) -> bool:
        """Read and drop the rest of the body (``read`` bytes of it already read); whether it ended."""
        with anyio.move_on_after(DRAIN_SECONDS):
            while read <= 2 * self.max_bytes:
                message = await receive()
                if message["type"] != "http.request":
                    return False
                read += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return True
        return False

    async def _refuse(self, scope: Scope, send: Send, drained: bool) -> None:
        await send_error(scope, send, 413, "too_large", f"the request body is larger than {self.max_bytes} bytes",
                         headers=() if drained else ((b"connection", b"close"),))


class _TooLarge(Exception):
    pass
