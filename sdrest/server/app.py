"""``create_app(config)``: the Starlette application, with a lifespan that owns the job service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware

from sdrest.config import ServerConfig
from sdrest.jobs.models import ModelLoader
from sdrest.jobs.service import JobService
from sdrest.jobs.tasks import run_task
from sdrest.jobs.worker import Runner
from sdrest.models.registry import Registry
from sdrest.server import openapi
from sdrest.server.errors import exception_handlers
from sdrest.server.hosts import HostGuard, HostPolicy
from sdrest.server.middleware import BodyLimit
from sdrest.server.requests import RequestParser
from sdrest.server.routes import generate, models, queue, system, utility
from sdrest.server.state import ServerState

log = logging.getLogger("sdrest.server")


async def _retention_loop(jobs: JobService, days: float, every: float = 3600.0) -> None:
    """Apply the retention policy hourly (it also ran at start); nothing to do when it is off."""
    if days <= 0:
        return
    while True:
        await asyncio.sleep(every)
        removed = await anyio.to_thread.run_sync(jobs.apply_retention)
        if removed:
            log.info("retention: removed %d old job(s) and their files", len(removed))


def create_app(config: ServerConfig, *, runner: Runner | None = None,
               model_loader: ModelLoader | None = None) -> Starlette:
    """The server for ``config``. Nothing starts until the lifespan runs (uvicorn, or a test client).

    ``runner`` replaces what workers run for each job (tests of the queue's mechanics);
    ``model_loader`` replaces how the workers load native contexts (tests of the unload policy).
    """
    from sdrest import names

    api_routes = [*generate.routes(), *queue.routes(), *models.routes(), *system.routes(), *utility.routes()]
    routes = [*api_routes, *openapi.routes(api_routes)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # the one source of truth for models: ids, kinds, companions, hashes (cached in the data dir)
        registry = Registry(config.models_dir or config.data_dir / "models",
                            cache_path=config.data_dir / "models-cache.json")
        jobs = JobService(config.data_dir, workers=config.workers, queue_limit=config.queue_limit,
                          requeue_interrupted=config.on_interrupted == "requeue", n_threads=config.n_threads,
                          idle_unload_seconds=config.idle_unload_seconds, memory_budget_mb=config.memory_budget_mb,
                          retention_days=config.retention_days, runner=runner or run_task,
                          registry=registry, model_loader=model_loader)
        state = ServerState(config=config, jobs=jobs, registry=registry, parser=None)  # type: ignore[arg-type]
        await anyio.to_thread.run_sync(state.rescan)
        state.parser = RequestParser(config, registry, state.rescan, names.samplers(), names.schedulers(),
                                     names.weight_types(), state.loaded_model_id)
        app.state.sdrest = state
        jobs.start()
        retention = asyncio.create_task(_retention_loop(jobs, config.retention_days))
        log.info("sdrest: %d model(s) in %s, data in %s", len(registry.entries()), config.models_dir, config.data_dir)
        try:
            yield
        finally:
            state.stopping.set()
            retention.cancel()
            await anyio.to_thread.run_sync(jobs.stop)

    return Starlette(routes=routes, middleware=[Middleware(HostGuard, policy=HostPolicy.from_config(config)),
                                                Middleware(BodyLimit, max_bytes=int(config.max_body_mb * 2**20))],
                     exception_handlers=exception_handlers(), lifespan=lifespan)
