"""What the handlers share: built by the app factory, reached as ``request.app.state.sdrest``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from sdrest.config import ServerConfig
from sdrest.jobs.service import JobService
from sdrest.server.catalog import Catalog
from sdrest.server.requests import RequestParser


@dataclass
class ServerState:
    """The config, the job service, the models catalog and the request parser."""

    config: ServerConfig
    jobs: JobService
    catalog: Catalog
    parser: RequestParser
    started_at: float = field(default_factory=time.time)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    restart_requested: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def loaded_model_id(self) -> str | None:
        """Id of the checkpoint loaded in the first worker, if any."""
        for item in self.jobs.models.loaded():
            path = item["files"].get("model") or item["files"].get("diffusion_model")
            if path:
                for entry in self.catalog.list():
                    if str(entry.path) == path:
                        return entry.id
        return None


def state_of(request: Request) -> ServerState:
    """The shared state of the app serving ``request``."""
    return request.app.state.sdrest
