"""What the handlers share: built by the app factory, reached as ``request.app.state.sdrest``."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from sdrest.config import ServerConfig
from sdrest.jobs.service import JobService
from sdrest.models.registry import ModelEntry, Registry, ScanReport
from sdrest.server.requests import RequestParser

log = logging.getLogger("sdrest.server")


@dataclass
class ServerState:
    """The config, the job service, the models registry and the request parser."""

    config: ServerConfig
    jobs: JobService
    registry: Registry
    parser: RequestParser
    started_at: float = field(default_factory=time.time)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    restart_requested: bool = False
    scanned_at: float = 0.0
    last_scan: ScanReport | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _scan_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
        """Id of the checkpoint or diffusion model loaded in the first worker, if any."""
        for item in self.jobs.models.loaded():
            path = item["files"].get("model") or item["files"].get("diffusion_model")
            entry = self.entry_for_path(path) if path else None
            if entry is not None:
                return entry.id
        return None


def state_of(request: Request) -> ServerState:
    """The shared state of the app serving ``request``."""
    return request.app.state.sdrest
