"""Running the app under uvicorn: connection timeouts against slow or silent clients, and a stop that
ends streams and waits before the lifespan shuts the workers down."""

from __future__ import annotations

import asyncio
import logging
import socket
from types import FrameType
from typing import Any

import h11
import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from sdrest.config import ServerConfig
from sdrest.jobs.service import StoppedWhileStarting


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline for the request head.

    uvicorn closes idle keep-alive connections, but a connection that never sends a request, or sends
    its head a byte at a time (slowloris), is held forever. The deadline runs from the connection's
    start and from each response's end until the next request's head is complete.
    """

    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the head deadline."""
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Stop the deadline once a request head is complete."""
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def on_response_complete(self) -> None:
        """The next request's head has its own deadline."""
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE or self.conn.their_state is h11.DONE:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """No deadline for a closed connection."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _expire(self) -> None:
        self._head_deadline = None
        if self.cycle is None or self.cycle.response_complete:
            if not self.transport.is_closing():
                self.transport.close()


def uvicorn_config(app: Starlette, config: ServerConfig, **overrides: Any) -> uvicorn.Config:
    """uvicorn's settings for ``app``: timeouts and the connection limit from ``config``."""
    protocol = type("SdrestH11", (HeaderTimeoutH11,), {"header_timeout": config.header_timeout_seconds})
    settings: dict[str, Any] = {
        "host": config.host, "port": config.port, "log_level": config.log_level, "http": protocol,
        "timeout_keep_alive": config.keep_alive_seconds, "limit_concurrency": config.max_connections,
        "timeout_graceful_shutdown": 5, "access_log": False, "log_config": None,  # sdrest.access, our handlers
    }
    settings.update(overrides)
    return uvicorn.Config(app, **settings)


class _QuietStopWhileStarting(logging.Filter):
    """Drops uvicorn's report of a startup ended by a stop (Ctrl-C or SIGTERM before any worker was ready): the
    traceback and "Application startup failed" of an expected stop. The app says it stopped, in one line."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if StoppedWhileStarting.__name__ in message:
            self.stopped = True
            return False
        return not (self.stopped and message.startswith("Application startup failed"))


class Server(uvicorn.Server):
    """uvicorn's server, telling the app it stops as soon as a signal arrives (before connections drain),
    so event streams end with a final event and waiting requests answer with the job's state; a stop before
    the app is ready ends its wait for a first worker."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stop_signal: int | None = None
        self.quiet_stop = _QuietStopWhileStarting()

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's ``serve``, with its report of a stop before the app was ready kept quiet meanwhile."""
        logger = logging.getLogger("uvicorn.error")
        logger.addFilter(self.quiet_stop)
        try:
            await super().serve(sockets)
        finally:
            logger.removeFilter(self.quiet_stop)

    @property
    def stopped_while_starting(self) -> bool:
        """Whether a stop ended the startup (no worker was ready yet)."""
        return self.quiet_stop.stopped

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Mark the app as stopping (or end its wait for a first worker), then let uvicorn stop."""
        self.stop_signal = self.stop_signal or sig
        app_state = getattr(self.config.app, "state", None)
        stop_requested = getattr(app_state, "stop_requested", None)
        if stop_requested is not None:
            stop_requested.set()
        state = getattr(app_state, "sdrest", None)
        if state is not None:
            state.signal_stopping()
        super().handle_exit(sig, frame)
