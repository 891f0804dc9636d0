"""The models dir: list, search, inspect, load/unload, refresh, validate; convert and hash as queued jobs."""

from __future__ import annotations

import re
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from sdrest.server.catalog import TYPES, ModelEntry
from sdrest.server.errors import ApiError, invalid
from sdrest.server.requests import Fields, Prepared, read_json
from sdrest.server.spec import ApiRoute
from sdrest.server.state import ServerState, state_of
from sdrest.server.submit import submit

_SORT_KEYS = ("name", "size", "modified_at", "type", "path")
_OUTPUT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.gguf$")


def _entry(state: ServerState, model_id: str) -> ModelEntry:
    entry = state.catalog.get(model_id)
    if entry is None:
        hits = [e for e in state.catalog.list() if model_id in (e.relative_path, e.path.name, e.name)]
        entry = hits[0] if hits else None
    if entry is None:
        raise ApiError(404, f"no model {model_id!r}", field="model_id")
    return entry


def _loaded_paths(state: ServerState) -> set[str]:
    return {p for item in state.jobs.loaded_models() for p in item["files"].values()}


def _describe(state: ServerState, entry: ModelEntry, loaded: set[str]) -> dict[str, Any]:
    return dict(entry.to_dict(), loaded=str(entry.path) in loaded)


async def list_models(request: Request) -> JSONResponse:
    state = state_of(request)
    q = request.query_params
    kind = q.get("type") or None
    if kind is not None and kind not in TYPES:
        raise invalid("type", f"unknown type {kind!r}; expected one of: {', '.join(TYPES)}")
    sort_by = q.get("sort_by", "name")
    if sort_by not in _SORT_KEYS:
        raise invalid("sort_by", f"expected one of: {', '.join(_SORT_KEYS)}")
    order = q.get("sort_order", "asc")
    if order not in ("asc", "desc"):
        raise invalid("sort_order", "expected asc or desc")
    f = Fields({k: int(v) if v.isdigit() else v for k, v in q.items() if k in ("page", "limit")})
    page = f.integer("page", 1, 1, 10**6) or 1
    limit = f.integer("limit", 50, 1, 1000) or 50
    entries = state.catalog.list(kind)
    search = (q.get("search") or "").lower()
    if search:
        entries = [e for e in entries if search in e.relative_path.lower()]
    loaded = _loaded_paths(state)
    items = [_describe(state, e, loaded) for e in entries]
    key = {"modified_at": "modified_at"}.get(sort_by, sort_by)
    items.sort(key=lambda item: (item[key] if key != "name" else str(item[key]).lower()), reverse=order == "desc")
    total = len(items)
    start = (page - 1) * limit
    return JSONResponse({"models": items[start:start + limit], "total": total, "page": page, "limit": limit,
                         "pages": max(1, -(-total // limit))})


async def get_model(request: Request) -> JSONResponse:
    state = state_of(request)
    entry = _entry(state, request.path_params["model_id"])
    return JSONResponse(_describe(state, entry, _loaded_paths(state)))


def _context_files(entry: ModelEntry) -> dict[str, str]:
    if entry.type == "checkpoint":
        return {"model": str(entry.path)}
    if entry.type == "diffusion_model":
        return {"diffusion_model": str(entry.path)}
    raise invalid("model_id", f"a {entry.type} cannot be loaded alone; load a checkpoint or an esrgan model")


async def _load(state: ServerState, entry: ModelEntry) -> dict[str, Any]:
    from sdrest.errors import NativeError

    models = state.jobs.models
    try:
        if entry.type == "esrgan":
            await anyio.to_thread.run_sync(models.upscaler, str(entry.path))
        else:
            files = _context_files(entry)
            await anyio.to_thread.run_sync(models.diffusion, files)
    except (NativeError, ValueError, OSError) as exc:
        raise ApiError(422, f"cannot load {entry.name}: {exc}", field="model_id", code="load_failed") from None
    return {"id": entry.id, "name": entry.name, "loaded": True}


async def load_model(request: Request) -> JSONResponse:
    state = state_of(request)
    return JSONResponse(await _load(state, _entry(state, request.path_params["model_id"])))


async def unload_model(request: Request) -> JSONResponse:
    state = state_of(request)
    entry = _entry(state, request.path_params["model_id"])
    done = await anyio.to_thread.run_sync(state.jobs.models.unload, str(entry.path))
    if not done:
        raise ApiError(409, f"{entry.name} is not loaded", field="model_id", code="not_loaded")
    return JSONResponse({"id": entry.id, "name": entry.name, "loaded": False})


async def model_types(request: Request) -> JSONResponse:
    state = state_of(request)
    return JSONResponse({"types": [{"type": t, "count": len(state.catalog.list(t))} for t in TYPES]})


async def directories(request: Request) -> JSONResponse:
    state = state_of(request)
    return JSONResponse({"models_dir": str(state.config.models_dir) if state.config.models_dir else None,
                         "directories": state.catalog.directories()})


async def stats(request: Request) -> JSONResponse:
    state = state_of(request)
    entries = state.catalog.list()
    by_type: dict[str, dict[str, int]] = {}
    for e in entries:
        slot = by_type.setdefault(e.type, {"count": 0, "size": 0})
        slot["count"] += 1
        slot["size"] += e.size
    return JSONResponse({"total": len(entries), "total_size": sum(e.size for e in entries), "by_type": by_type,
                         "loaded": state.jobs.loaded_models(), "scanned_at": state.catalog.scanned_at,
                         "scan_seconds": round(state.catalog.scan_seconds, 4),
                         "loads": state.jobs.metrics.counter("model_loads_total", kind="diffusion")})


async def refresh(request: Request) -> JSONResponse:
    state = state_of(request)
    count = await anyio.to_thread.run_sync(state.catalog.refresh)
    return JSONResponse({"models": count, "scan_seconds": round(state.catalog.scan_seconds, 4)})


async def batch(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await read_json(request)
    operation = body.get("operation")
    if operation not in ("load", "unload"):
        raise invalid("operation", "expected load or unload")
    refs = body.get("models")
    if not isinstance(refs, list) or not refs or len(refs) > 100:
        raise invalid("models", "expected a list of model ids (1 to 100)")
    results = []
    for ref in refs:
        try:
            entry = _entry(state, str(ref))
            if operation == "load":
                await _load(state, entry)
                ok = True
            else:
                ok = await anyio.to_thread.run_sync(state.jobs.models.unload, str(entry.path))
            results.append({"model": ref, "success": bool(ok)})
        except ApiError as exc:
            results.append({"model": ref, "success": False, "error": exc.message})
    return JSONResponse({"operation": operation, "results": results})


def _validate_file(entry: ModelEntry) -> dict[str, Any]:
    problems = []
    try:
        with entry.path.open("rb") as f:
            head = f.read(8)
        if entry.size == 0:
            problems.append("the file is empty")
        suffix = entry.path.suffix.lower()
        if suffix == ".gguf" and head[:4] != b"GGUF":
            problems.append("not a GGUF file (bad magic)")
        if suffix in (".safetensors", ".sft") and len(head) == 8 and int.from_bytes(head, "little") >= entry.size:
            problems.append("the safetensors header length exceeds the file")
        if suffix in (".ckpt", ".pt", ".pth") and head[:2] != b"PK" and head[:1] != b"\x80":
            problems.append("neither a zip nor a pickle")
    except OSError as exc:
        problems.append(f"unreadable: {exc.strerror}")
    return {"id": entry.id, "name": entry.name, "type": entry.type, "valid": not problems, "problems": problems,
            **entry.extra}


async def validate(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await read_json(request)
    ref = body.get("model") or body.get("model_id") or body.get("model_name")
    if not isinstance(ref, str):
        raise invalid("model", "required")
    entry = _entry(state, ref)
    return JSONResponse(await anyio.to_thread.run_sync(_validate_file, entry))


async def convert(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await read_json(request)
    f = Fields(body)
    ref = f.string("model_name") or f.string("model")
    if not ref:
        raise invalid("model_name", "required")
    entry, _others = state.catalog.find(ref, ("checkpoint", "diffusion_model", "vae", "text_encoder", "lora",
                                             "controlnet", "taesd", "esrgan"))
    if entry is None:
        raise invalid("model_name", f"no model {ref!r}")
    qtype = f.choice("quantization_type", state.parser.weight_types)
    if qtype is None:
        raise invalid("quantization_type", "required")
    name = f.string("output_path") or f"{entry.path.stem}.{qtype}.gguf"
    if "/" in name or "\\" in name:
        raise invalid("output_path", "a file name in the model's own folder, not a path")
    if not _OUTPUT_NAME.match(name):
        raise invalid("output_path", "expected NAME.gguf (letters, digits, . _ -)")
    dst = entry.path.parent / name
    if dst.exists():
        raise ApiError(409, f"{name} already exists", field="output_path", code="exists")
    params = {"model_name": entry.name, "model": entry.id, "quantization_type": qtype,
              "output_name": (entry.path.parent / name).relative_to(state.config.models_dir).as_posix()
              if state.config.models_dir else name, "_src": str(entry.path), "_dst": str(dst)}
    job = await submit(state, Prepared("convert", params, {}))
    return JSONResponse({"job_id": job.id, "status": job.status, "output_path": params["output_name"],
                         "status_url": f"/api/queue/job/{job.id}"}, status_code=202)


async def hash_models(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await read_json(request)
    refs = body.get("models", body.get("model"))
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not refs or len(refs) > 100:
        raise invalid("models", "expected a list of model ids (1 to 100)")
    entries = [_entry(state, str(r)) for r in refs]
    params = {"models": [e.name for e in entries], "_paths": [str(e.path) for e in entries]}
    job = await submit(state, Prepared("hash", params, {}))
    return JSONResponse({"job_id": job.id, "status": job.status, "status_url": f"/api/queue/job/{job.id}"},
                        status_code=202)


def routes() -> list[ApiRoute]:
    """The models routes (the fixed paths before ``{model_id}``)."""
    listing = {"type": {"type": "string"}, "search": {"type": "string"}, "sort_by": {"type": "string"},
               "sort_order": {"type": "string"}, "page": {"type": "integer"}, "limit": {"type": "integer"}}
    obj = {"type": "object"}
    return [
        ApiRoute("/api/models", list_models, methods=["GET"], summary="List models", tag="models", query=listing,
                 errors=(422,)),
        ApiRoute("/api/models/types", model_types, methods=["GET"], summary="Model types", tag="models"),
        ApiRoute("/api/models/directories", directories, methods=["GET"], summary="Model folders", tag="models"),
        ApiRoute("/api/models/stats", stats, methods=["GET"], summary="Model statistics", tag="models"),
        ApiRoute("/api/models/refresh", refresh, methods=["POST"], summary="Rescan the models dir", tag="models"),
        ApiRoute("/api/models/batch", batch, methods=["POST"], summary="Load or unload several models",
                 tag="models", request={"type": "object", "required": ["operation", "models"], "properties": {
                     "operation": {"type": "string", "enum": ["load", "unload"]},
                     "models": {"type": "array", "items": {"type": "string"}}}}, errors=(422,)),
        ApiRoute("/api/models/validate", validate, methods=["POST"], summary="Check a model file", tag="models",
                 request={"type": "object", "properties": {"model": {"type": "string"}}}, errors=(404, 422)),
        ApiRoute("/api/models/convert", convert, methods=["POST"], summary="Quantize a model (a queued job)",
                 tag="models", status=202, errors=(409, 422, 429),
                 request={"type": "object", "required": ["model_name", "quantization_type"], "properties": {
                     "model_name": {"type": "string"}, "quantization_type": {"type": "string"},
                     "output_path": {"type": "string"}}}),
        ApiRoute("/api/models/hash", hash_models, methods=["POST"], summary="Hash models (a queued job)",
                 tag="models", status=202, errors=(404, 422, 429),
                 request={"type": "object", "properties": {"models": {"type": "array", "items": {"type": "string"}}}}),
        ApiRoute("/api/models/{model_id}", get_model, methods=["GET"], summary="One model", tag="models",
                 errors=(404,), response=obj),
        ApiRoute("/api/models/{model_id}/load", load_model, methods=["POST"], summary="Load a model", tag="models",
                 errors=(404, 422)),
        ApiRoute("/api/models/{model_id}/unload", unload_model, methods=["POST"], summary="Unload a model",
                 tag="models", errors=(404, 409)),
    ]
