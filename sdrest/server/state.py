"""What the handlers share: built by the app factory, reached as ``request.app.state.sdrest``."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request

from sdrest.auth.service import Authenticator
from sdrest.config import ServerConfig
from sdrest.jobs.queue import JobQueue
from sdrest.models.registry import ModelEntry, Registry, ScanReport
from sdrest.server.requests import RequestParser

log = logging.getLogger("sdrest.server")


@dataclass
class ServerState:
    """The config, the queue (the server's only way to the workers), the models registry, the request parser and
    the auth policy."""

    config: ServerConfig
    queue: JobQueue
    registry: Registry
    parser: RequestParser
    auth: Authenticator
    started_at: float = field(default_factory=time.time)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    loop: asyncio.AbstractEventLoop | None = None
    restart_requested: bool = False
    scanned_at: float = 0.0
    last_scan: ScanReport | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _scan_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def signal_stopping(self) -> None:
        """Mark the server as stopping, from any thread (a signal handler): streams end, waits return."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.stopping.set)

    @property
    def outputs_dir(self) -> Path:
        """Job outputs, one folder per job (written by the workers)."""
        return self.config.data_dir / "outputs"

    @property
    def inputs_dir(self) -> Path:
        """Job input images, one folder per job (written here, read by the workers)."""
        return self.config.data_dir / "inputs"

    @property
    def thumbs_dir(self) -> Path:
        """Thumbnails of outputs, made on demand."""
        return self.config.data_dir / "thumbnails"

    def loaded_models(self) -> list[dict[str, Any]]:
        """What every worker holds loaded, each item naming its worker."""
        return [dict(item, worker=w.name) for w in self.queue.workers() for item in w.loaded]

    def relative(self, path: str) -> str:
        """``path`` relative to the models or data dir (clients never see server paths)."""
        for root in (self.config.models_dir, self.config.data_dir):
            if root is not None:
                try:
                    return Path(path).relative_to(root).as_posix()
                except ValueError:
                    continue
        return Path(path).name

    def rescan(self) -> ScanReport:
        """Rescan the models dir (only new and changed files are read); an empty report without one.

        Blocking: call it from a thread in async code.
        """
        with self._scan_lock:
            if self.config.models_dir is None or not self.registry.root.is_dir():
                report = ScanReport()
            else:
                try:
                    report = self.registry.scan()
                except OSError as exc:  # the folder vanished between the check and the walk
                    log.warning("models dir scan failed: %s", exc)
                    report = ScanReport()
            self.last_scan = report
            self.scanned_at = time.time()
            return report

    def entry_for_path(self, path: str) -> ModelEntry | None:
        """The registry entry of a file path (as the model cache reports loaded files), if any."""
        for entry in self.registry.entries():
            if entry.path == path:
                return entry
        return None

    def loaded_model_id(self) -> str | None:
        """Id of the checkpoint or diffusion model a worker holds loaded, if any."""
        for item in self.loaded_models():
            path = item["files"].get("model") or item["files"].get("diffusion_model")
            entry = self.entry_for_path(path) if path else None
            if entry is not None:
                return entry.id
        return None


def state_of(request: Request) -> ServerState:
    """The shared state of the app serving ``request``."""
    return request.app.state.sdrest
