"""Health, status, system information, config, version, restart, and ``/metrics``."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import anyio
import psutil
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse

import sdrest
from sdrest.auth.service import PASSWORD_MODES
from sdrest.jobs.store import QUEUED, RUNNING
from sdrest.server.auth import maybe_principal
from sdrest.server.spec import ADMIN, PUBLIC, ApiRoute
from sdrest.server.state import ServerState, state_of


async def health(request: Request) -> JSONResponse:
    """200 while the server takes requests (``degraded`` while a worker restarts), 503 once it stops."""
    state = state_of(request)
    workers = state.queue.workers()
    alive = sum(1 for w in workers if w.alive)
    stopping = state.stopping.is_set()
    status = "stopping" if stopping else ("ok" if workers and alive == len(workers) else "degraded")
    return JSONResponse({"status": status, "workers_alive": alive, "workers": len(workers),
                         "version": sdrest.__version__}, status_code=503 if stopping else 200)


async def status(request: Request) -> JSONResponse:
    state = state_of(request)
    counts = state.queue.counts()
    return JSONResponse({
        "status": "stopping" if state.stopping.is_set() else "running",
        "uptime_seconds": round(time.time() - state.started_at, 3),
        "queue": {"queued": counts[QUEUED], "running": counts[RUNNING], "limit": state.queue.limit},
        "jobs": counts,
        "loaded_models": _loaded(state),
        "running_jobs": [job_id for job_id in state.queue.running_ids() if _visible(request, job_id)],
        "workers": [_worker(request, w.to_dict()) for w in state.queue.workers()],
        "models_dir": state.config.models_dir.name if state.config.models_dir else None,
        # what a client (the web UI) needs before it knows who it is: whether to show a log-in form
        "auth": {"mode": state.auth.mode, "login": state.auth.mode in PASSWORD_MODES},
    })


def _visible(request: Request, job_id: str) -> bool:
    """Whether the (possibly anonymous) caller may know of this job: they own it, or they are an admin."""
    principal = maybe_principal(request)
    if principal is None:
        return False
    if principal.is_admin:
        return True
    job = state_of(request).queue.get(job_id)
    return job is not None and principal.sees(job.owner)


def _worker(request: Request, worker: dict) -> dict:
    """A worker as the caller may see it: the job it runs only when that is theirs to know of."""
    if worker.get("current_job") and not _visible(request, worker["current_job"]):
        worker["current_job"] = "(another user's)"
    return worker


def _loaded(state: ServerState) -> list[dict]:
    """What the workers hold, with file paths relative to the models dir."""
    return [dict(item, files={k: state.relative(v) for k, v in item["files"].items()})
            for item in state.loaded_models()]


def _gpus() -> list[dict]:
    """NVIDIA GPUs as ``nvidia-smi`` reports them (empty where there is none)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return []
    try:
        out = subprocess.run([tool, "--query-gpu=name,memory.total,memory.used,utilization.gpu",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            gpus.append({"name": parts[0], "memory_total_mb": _number(parts[1]), "memory_used_mb": _number(parts[2]),
                         "utilization_percent": _number(parts[3])})
    return gpus


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _system_info(capabilities: dict) -> dict:
    mem = psutil.virtual_memory()
    proc = psutil.Process()
    return {
        "cpu": {"model": platform.processor() or platform.machine(), "logical_cores": psutil.cpu_count(),
                "physical_cores": psutil.cpu_count(logical=False), "usable_threads": sdrest.available_physical_cores(),
                "load_percent": psutil.cpu_percent(interval=None)},
        "memory": {"total_mb": mem.total // 2**20, "available_mb": mem.available // 2**20,
                   "process_rss_mb": proc.memory_info().rss // 2**20},
        "gpu": _gpus(),
        "backend": capabilities.get("backend", "CPU"),
        "backends": capabilities.get("backends", []),
        "devices": capabilities.get("devices", []),
        "sdcpp": {"system_info": capabilities.get("system_info", ""), **capabilities.get("sdcpp", {})},
        "platform": {"system": platform.system(), "release": platform.release(),
                     "python": platform.python_version(), "pid": os.getpid()},
    }


async def system(request: Request) -> JSONResponse:
    return JSONResponse(await anyio.to_thread.run_sync(_system_info, state_of(request).queue.capabilities()))


async def config(request: Request) -> JSONResponse:
    """The settings, folders by name only (clients never see server paths)."""
    settings = state_of(request).config.to_dict()
    for key in ("models_dir", "data_dir"):
        if settings.get(key):
            settings[key] = Path(settings[key]).name
    return JSONResponse(settings)


async def version(request: Request) -> JSONResponse:
    sdcpp = state_of(request).queue.capabilities().get("sdcpp", {})
    return JSONResponse({"version": sdrest.__version__, "sdcpp": sdcpp, "api": "native/1"})


async def restart(request: Request) -> JSONResponse:
    """Ask the serving process to stop and start again (the CLI re-executes itself)."""
    state = state_of(request)
    server = getattr(request.app.state, "uvicorn_server", None)
    if server is None:
        return JSONResponse({"error": {"code": "unavailable", "message": "restart needs `sdrest serve`"}},
                            status_code=503)
    state.restart_requested = True
    state.stopping.set()
    server.should_exit = True
    return JSONResponse({"status": "restarting"}, status_code=202)


async def metrics(request: Request) -> PlainTextResponse:
    state = state_of(request)
    counts = state.queue.counts()
    workers = state.queue.workers()
    gauges = {"queue_depth": counts[QUEUED], "jobs_running": counts[RUNNING],
              "models_loaded": len(state.loaded_models()), "workers_alive": sum(1 for w in workers if w.alive),
              "worker_restarts": sum(w.restarts for w in workers),
              "uptime_seconds": round(time.time() - state.started_at, 3),
              "process_resident_memory_bytes": psutil.Process().memory_info().rss}
    for name, value in counts.items():
        gauges[f"jobs_stored_{name}"] = value
    text = state.queue.render_metrics(gauges)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


def routes() -> list[ApiRoute]:
    """The system routes."""
    return [
        ApiRoute("/api/health", health, methods=["GET"], summary="Health check", tag="system", errors=(503,),
                 access=PUBLIC),
        ApiRoute("/api/status", status, methods=["GET"], summary="Server status (another user's jobs as counts)",
                 tag="system", access=PUBLIC),
        ApiRoute("/api/system", system, methods=["GET"], summary="CPU, memory, GPU, sd.cpp", tag="system"),
        ApiRoute("/api/config", config, methods=["GET"], summary="The server's configuration", tag="system",
                 access=ADMIN),
        ApiRoute("/api/version", version, methods=["GET"], summary="Versions", tag="system", access=PUBLIC),
        ApiRoute("/api/system/restart", restart, methods=["POST"], summary="Restart the server", tag="system",
                 status=202, errors=(503,), access=ADMIN),
        ApiRoute("/metrics", metrics, methods=["GET"], summary="Prometheus metrics", tag="system",
                 content_type="text/plain", response={"type": "string"}, access=ADMIN),
    ]
