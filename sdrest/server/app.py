"""``create_app(config)``: the Starlette application, with a lifespan that owns the job service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from sdrest.auth.service import Authenticator
from sdrest.config import ServerConfig
from sdrest.jobs.models import ModelLoader
from sdrest.jobs.queue import FinishHook
from sdrest.jobs.store import SUCCEEDED, Job
from sdrest.jobs.service import JobService, StoppedWhileStarting
from sdrest.jobs.worker import Runner
from sdrest.models.hashing import Hashes
from sdrest.models.registry import Registry
from sdrest.server import openapi, webui
from sdrest.server.auth import Authenticate
from sdrest.server.errors import exception_handlers
from sdrest.server.hosts import HostGuard, HostPolicy
from sdrest.server.middleware import AccessLog, BodyLimit, SecurityHeaders
from sdrest.server.requests import RequestParser
from sdrest.server.routes import auth as auth_routes
from sdrest.server.routes import a1111, gallery, generate, models, openai, queue, seed, system, templates, utility
from sdrest.server.state import ServerState

log = logging.getLogger("sdrest.server")

#: the request headers a page on a CORS origin may send
CORS_HEADERS = ["Authorization", "Content-Type", "X-API-Key", "X-CSRF-Token", "X-Request-ID"]
#: How long the server waits for its first worker to report (a CUDA start can take a while).
WORKER_START_SECONDS = 180.0


async def _retention_loop(jobs: JobService, days: float, every: float = 3600.0) -> None:
    """Apply the retention policy hourly (it also ran at start); nothing to do when it is off."""
    if days <= 0:
        return
    while True:
        await asyncio.sleep(every)
        removed = await anyio.to_thread.run_sync(jobs.apply_retention)
        if removed:
            log.info("retention: removed %d old job(s) and their files", len(removed))


def _hash_results(registry: Registry) -> FinishHook:
    """A finish hook: hashes the workers compute (hash jobs) join this process's registry, so listings show them."""
    def remember(job: Job, status: str, result: dict[str, Any]) -> None:
        if job.kind == "hash" and status == SUCCEEDED:
            for model_id, found in result.get("hashes", {}).items():
                registry.remember_hashes(model_id, Hashes(**found))
    return remember


def create_app(config: ServerConfig, *, runner: Runner | None = None,
               model_loader: ModelLoader | None = None) -> Starlette:
    """The server for ``config``. Nothing starts until the lifespan runs (uvicorn, or a test client).

    The native work runs in supervised worker processes; this process never imports ``sdrest._native``.
    ``runner`` or ``model_loader`` (stand-ins for the native work, in tests of the queue's mechanics)
    run the workers on threads of this process instead.
    """
    api_routes = [*generate.routes(), *queue.routes(), *gallery.routes(), *models.routes(), *system.routes(),
                  *utility.routes(), *auth_routes.routes(), *templates.routes(), *seed.routes(), *openai.routes(),
                  *a1111.routes()]
    routes = [*api_routes, *openapi.routes(api_routes), *webui.routes(config.ui_dir)]
    stop_requested = threading.Event()  # set by the server's signal handler: ends a wait for the first worker

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # the one source of truth for models: ids, kinds, companions, hashes (cached in the data dir)
        cache = config.data_dir / "models-cache.json"
        registry = Registry(config.models_dir or config.data_dir / "models", cache_path=cache,
                            links=config.models_links)
        jobs = JobService(config.data_dir, devices=config.device_list, workers_per_device=config.workers,
                          queue_limit=config.queue_limit, requeue_interrupted=config.on_interrupted == "requeue",
                          max_attempts=config.max_attempts, n_threads=config.n_threads,
                          idle_unload_seconds=config.idle_unload_seconds, memory_budget_mb=config.memory_budget_mb,
                          retention_days=config.retention_days, cancel_grace_seconds=config.cancel_grace_seconds,
                          job_timeout_seconds=config.job_timeout_seconds, models_dir=registry.root,
                          models_cache=cache, models_links=config.models_links, log_level=config.log_level,
                          queue_order=config.queue_order, broker=config.broker,
                          broker_namespace=config.broker_namespace, lease_seconds=config.lease_seconds, runner=runner, model_loader=model_loader, registry=registry)
        auth = Authenticator(config)
        if auth.needs_admin():
            log.warning("auth jwt: no admin exists yet, so every call but the public ones is refused. Create one "
                        "with: sdrest users add NAME --role admin --data-dir %s", config.data_dir)
        state = ServerState(config=config, queue=jobs.queue, registry=registry, parser=None,  # type: ignore[arg-type]
                            auth=auth)
        state.loop = asyncio.get_running_loop()
        await anyio.to_thread.run_sync(state.rescan)
        jobs.queue.add_finish_hook(_hash_results(registry))
        jobs.start()
        try:
            found = await anyio.to_thread.run_sync(jobs.wait_ready, WORKER_START_SECONDS, stop_requested)
        except BaseException as exc:
            await anyio.to_thread.run_sync(jobs.stop)
            auth.close()
            if isinstance(exc, StoppedWhileStarting):
                log.info("stopped before any worker was ready")
            raise
        state.parser = RequestParser(config, registry, state.rescan, found["samplers"], found["schedulers"],
                                     found["weight_types"], state.loaded_model_id)
        app.state.sdrest = state
        retention = asyncio.create_task(_retention_loop(jobs, config.retention_days))
        log.info("sdrest: %d model(s) in %s, data in %s, %d worker(s)", len(registry.entries()), config.models_dir,
                 config.data_dir, len(jobs.hosts))
        try:
            yield
        finally:
            state.stopping.set()
            retention.cancel()
            await anyio.to_thread.run_sync(jobs.stop)
            auth.close()

    middleware = [Middleware(AccessLog), Middleware(SecurityHeaders),
                  Middleware(HostGuard, policy=HostPolicy.from_config(config))]
    if config.origin_list:
        middleware.append(Middleware(CORSMiddleware, allow_origins=config.origin_list, allow_credentials=True,
                                     allow_methods=["GET", "POST", "PUT", "DELETE"], allow_headers=CORS_HEADERS,
                                     expose_headers=["X-Request-ID", "Retry-After", "Location"], max_age=600))
    middleware += [Middleware(BodyLimit, max_bytes=int(config.max_body_mb * 2**20)), Middleware(Authenticate)]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=exception_handlers(), lifespan=lifespan)
    app.state.stop_requested = stop_requested
    return app
