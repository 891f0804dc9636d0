"""The models dir, from :class:`sdrest.models.Registry`: list, search, inspect, load/unload, refresh, validate;
convert and hash as queued jobs.

Model ids are the registry's stable ids (the relative path without extension, ``checkpoints/sd1``), so the
routes that take one use Starlette's ``path`` converter; requests may also name a model by a unique file name.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from sdrest.jobs.queue import LOAD, UNLOAD, ControlTimeout
from sdrest.models.companions import resolve
from sdrest.models.detect import KINDS
from sdrest.models.registry import FOLDER_KINDS, ModelEntry
from sdrest.server.auth import principal_of
from sdrest.server.body import read_json
from sdrest.server.errors import ApiError, invalid
from sdrest.server.query import Choice, Integer, Text, schemas
from sdrest.server.requests import LOADABLE_KINDS, Fields, Prepared, display_name
from sdrest.server.spec import ADMIN, ApiRoute, limited
from sdrest.server.state import ServerState, state_of
from sdrest.server.submit import submit

#: the API's sort keys -> the registry's (the registry's own names are accepted too)
_SORT_KEYS = {"name": "name", "size": "size", "modified_at": "mtime", "date": "mtime", "type": "kind", "path": "id",
              "id": "id",
              "kind": "kind", "mtime": "mtime", "architecture": "architecture", "parameters": "parameters",
              "quantization": "quantization"}
_OUTPUT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.gguf$")
_PATH_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,200}$")
#: what the document says output_path may be: a file name, or up to 8 parts of a path inside the models dir
_OUTPUT_PATH_PATTERN = r"^([A-Za-z0-9_][A-Za-z0-9._-]{0,200}/){0,7}[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.gguf$"
#: the query of ``GET /api/models``
#: the seed's names for our kinds (its enum has both ESRGAN and UPSCALER)
_KIND_ALIASES = {"upscaler": "esrgan"}
LISTING = (Choice("type", None, "only models of this kind (upscaler: esrgan)", choices=(*KINDS, *_KIND_ALIASES)),
           Text("search", None, "every word in the id, name, kind, architecture or quantization"),
           Text("architecture", None, "only this architecture (as listed), any case"),
           Choice("sort_by", "name", choices=tuple(_SORT_KEYS)),
           Choice("sort_order", "asc", choices=("asc", "desc")),
           Integer("page", 1, minimum=1, maximum=10**6),
           Integer("limit", 50, "models per page", minimum=1, maximum=1000))


#: most model ids one batch or hash request may name
MAX_REFS = 100


def _refs(value: Any, field: str = "models") -> list[str]:
    """A list of 1 to :data:`MAX_REFS` model names; 422 naming the field (or the item) otherwise."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_REFS:
        raise invalid(field, f"expected a list of model ids (1 to {MAX_REFS})")
    for index, ref in enumerate(value):
        if not isinstance(ref, str) or not ref:
            raise invalid(f"{field}[{index}]", "expected a model id")
    return value


def _entry(state: ServerState, model_id: str, field: str = "model_id") -> ModelEntry:
    """The entry an id (or relative path, or unique file name) names; 404 when none, 422 when ambiguous."""
    try:
        return state.parser.lookup(model_id)
    except KeyError as exc:
        reason = str(exc.args[0]) if exc.args else model_id
        if "ambiguous" in reason:
            raise invalid(field, f"{reason}; name it by id") from None
        raise ApiError(404, f"no model {model_id!r}", field=field) from None


def _loaded_paths(state: ServerState) -> set[str]:
    return {p for item in state.loaded_models() for p in item["files"].values()}


def _describe(entry: ModelEntry, loaded: set[str]) -> dict[str, Any]:
    """An entry as the API lists it (paths relative to the models dir, never absolute)."""
    info = entry.info
    return {"id": entry.id, "name": display_name(entry), "filename": entry.name, "type": entry.kind,
            "folder": entry.folder, "path": entry.rel_path, "size": entry.size, "size_mb": round(entry.size / 2**20, 2),
            "modified_at": entry.mtime_ns / 1e9, "format": info.format, "architecture": entry.architecture,
            "quantization": info.quantization, "parameters": info.parameters, "load_as": info.load_as,
            "mismatch": entry.mismatch, "error": info.error,
            "hashes": entry.hashes.to_dict() if entry.hashes else None, "loaded": entry.path in loaded}


def _companions(state: ServerState, entry: ModelEntry) -> dict[str, Any] | None:
    """What :func:`sdrest.models.resolve` picks for a loadable model (by id; no server paths)."""
    if entry.kind not in LOADABLE_KINDS or entry.architecture is None:
        return None
    found = resolve(state.registry, entry.id).to_dict()
    found.pop("sd_params", None)
    return found


def _missing(state: ServerState, entry: ModelEntry) -> list[str]:
    """The companion roles a loadable model lacks in the models dir (empty for the others)."""
    if entry.kind not in LOADABLE_KINDS or entry.architecture is None or entry.info.error is not None:
        return []
    return list(resolve(state.registry, entry.id).missing)


async def list_models(request: Request) -> JSONResponse:
    state = state_of(request)
    kind, search, architecture, sort_by, order, page, limit = (param.read(request) for param in LISTING)
    kind = _KIND_ALIASES.get(kind, kind) if kind else kind
    found = state.registry.search(search, kind=kind, architecture=architecture, sort=_SORT_KEYS[sort_by],
                                  descending=order == "desc", offset=(page - 1) * limit, limit=limit)
    loaded = _loaded_paths(state)
    # a page at a time: what a loadable model still needs (its companions' roles) costs a registry lookup each
    return JSONResponse({"models": [dict(_describe(e, loaded), missing=_missing(state, e)) for e in found.items],
                         "total": found.total, "page": page,
                         "limit": limit, "pages": max(1, -(-found.total // limit))})


async def get_model(request: Request) -> JSONResponse:
    state = state_of(request)
    entry = _entry(state, request.path_params["model_id"])
    info = entry.info
    return JSONResponse(dict(_describe(entry, _loaded_paths(state)), fits=list(info.fits),
                             tensor_count=info.tensor_count, text_encoder_type=info.text_encoder_type,
                             details=info.details, warnings=list(info.warnings),
                             companions=_companions(state, entry)))


async def _control(state: ServerState, action: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    """A load or unload sent to the workers through the queue; 503 when no worker answers."""
    try:
        return await anyio.to_thread.run_sync(lambda: state.queue.control(action, args))
    except ControlTimeout as exc:
        raise ApiError(503, f"the workers did not answer: {exc}", code="unavailable") from None


async def _load(state: ServerState, entry: ModelEntry) -> dict[str, Any]:
    if entry.kind == "esrgan":
        args: dict[str, Any] = {"kind": "upscaler", "files": {"esrgan": entry.path}}
    else:
        args = {"kind": "diffusion", "files": state.parser.context_files(entry, field="model_id")}
    replies = await _control(state, LOAD, args)
    failed = [r for r in replies if not r.get("ok")]
    if failed:
        raise ApiError(422, f"cannot load {entry.id}: {failed[0].get('error')}", field="model_id",
                       code="load_failed")
    return {"id": entry.id, "name": display_name(entry), "loaded": True, "worker": replies[0]["worker"],
            "seconds": replies[0].get("seconds")}


async def _unload(state: ServerState, entry: ModelEntry) -> bool:
    """Unload ``entry`` from every worker holding it; True if one did."""
    replies = await _control(state, UNLOAD, {"path": entry.path})
    return any(r.get("unloaded") for r in replies)


async def load_model(request: Request) -> JSONResponse:
    state = state_of(request)
    return JSONResponse(await _load(state, _entry(state, request.path_params["model_id"])))


async def unload_model(request: Request) -> JSONResponse:
    state = state_of(request)
    entry = _entry(state, request.path_params["model_id"])
    if not await _unload(state, entry):
        raise ApiError(409, f"{entry.id} is not loaded", field="model_id", code="not_loaded")
    return JSONResponse({"id": entry.id, "name": display_name(entry), "loaded": False})


async def model_types(request: Request) -> JSONResponse:
    state = state_of(request)
    counts: dict[str, int] = {}
    for e in state.registry.entries():
        counts[e.kind] = counts.get(e.kind, 0) + 1
    return JSONResponse({"types": [{"type": t, "count": counts.get(t, 0)} for t in KINDS]})


async def directories(request: Request) -> JSONResponse:
    state = state_of(request)
    root = state.registry.root
    counts: dict[str, int] = {}
    for e in state.registry.entries():
        if e.folder is not None:
            counts[e.folder] = counts.get(e.folder, 0) + 1
    found = []
    if state.config.models_dir is not None:
        for folder, kinds in sorted(FOLDER_KINDS.items()):
            if (root / folder).is_dir():
                found.append({"name": folder, "type": kinds[0], "path": folder, "count": counts.get(folder, 0)})
    return JSONResponse({"models_dir": state.config.models_dir.name if state.config.models_dir else None,
                         "directories": found})


async def stats(request: Request) -> JSONResponse:
    state = state_of(request)
    entries = state.registry.entries()
    by_type: dict[str, dict[str, int]] = {}
    by_architecture: dict[str, int] = {}
    for e in entries:
        slot = by_type.setdefault(e.kind, {"count": 0, "size": 0})
        slot["count"] += 1
        slot["size"] += e.size
        if e.architecture:
            by_architecture[e.architecture] = by_architecture.get(e.architecture, 0) + 1
    scan = state.last_scan
    return JSONResponse({"total": len(entries), "total_size": sum(e.size for e in entries), "by_type": by_type,
                         "by_architecture": by_architecture,
                         "mismatches": sum(1 for e in entries if e.mismatch),
                         "hashed": sum(1 for e in entries if e.hashes is not None),
                         "loaded": [dict(item, files={k: state.relative(v) for k, v in item["files"].items()})
                                    for item in state.loaded_models()], "scanned_at": state.scanned_at,
                         "scan_seconds": round(scan.seconds, 4) if scan else 0.0,
                         "loads": state.queue.metric("model_loads_total", kind="diffusion")})


async def refresh(request: Request) -> JSONResponse:
    state = state_of(request)
    report = await anyio.to_thread.run_sync(state.rescan)
    return JSONResponse({"models": len(state.registry.entries()), "added": report.added, "changed": report.changed,
                         "removed": report.removed, "unchanged": report.unchanged,
                         "scan_seconds": round(report.seconds, 4)})


async def batch(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await read_json(request)
    operation = body.get("operation")
    if operation not in ("load", "unload"):
        raise invalid("operation", "expected load or unload")
    refs = _refs(body.get("models"))
    results = []
    for ref in refs:
        try:
            entry = _entry(state, ref)
            if operation == "load":
                await _load(state, entry)
                ok = True
            else:
                ok = await _unload(state, entry)
            results.append({"model": ref, "success": bool(ok)})
        except ApiError as exc:
            results.append({"model": ref, "success": False, "error": exc.message})
    return JSONResponse({"operation": operation, "results": results})


def _validation(state: ServerState, entry: ModelEntry) -> dict[str, Any]:
    """What the registry's header reading says about a file: valid when it is a model kind sdrest knows."""
    info = entry.info
    problems = [p for p in (info.error, entry.mismatch) if p]
    problems += [w for w in info.warnings if w not in problems]
    companions = _companions(state, entry)
    if companions and companions["missing"]:
        problems.append(f"missing companions: {', '.join(companions['missing'])}")
    return {"id": entry.id, "name": display_name(entry), "type": entry.kind, "architecture": entry.architecture,
            "format": info.format, "quantization": info.quantization, "load_as": info.load_as,
            "valid": info.error is None and entry.kind != "unknown", "problems": problems,
            "companions": companions}


async def validate(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await read_json(request)
    ref = body.get("model") or body.get("model_id") or body.get("model_name")
    if not isinstance(ref, str):
        raise invalid("model", "required")
    await anyio.to_thread.run_sync(state.rescan)  # stats only; a changed file is read again
    try:
        entry = _entry(state, ref, field="model")
    except ApiError as exc:
        if exc.status != 404:
            raise
        try:  # a file the scan left out (not a model, a refused link): say why, never what it holds
            refused = state.registry.find_skipped(ref)
        except KeyError:
            raise exc from None
        path = PurePosixPath(refused.rel_path)
        return JSONResponse({"id": str(path.with_suffix("")), "name": path.stem, "type": "unknown",
                             "architecture": None, "format": None, "quantization": None, "load_as": None,
                             "valid": False, "problems": [refused.reason], "companions": None})
    return JSONResponse(_validation(state, entry))


def _output_path(state: ServerState, src: Path, given: str) -> Path:
    """Where a conversion writes: a file name in the model's own folder, or a path inside the models dir (each
    part plain: letters, digits, . _ -; never ``..``); 422 naming ``output_path`` otherwise."""
    parts = given.replace("\\", "/").split("/")
    if len(parts) > 8 or any(not _PATH_PART.match(part) or part.startswith("..") for part in parts):
        raise invalid("output_path", "a file name in the model's folder, or a path inside the models dir (letters, "
                                     "digits, . _ -)")
    if not _OUTPUT_NAME.match(parts[-1]):
        raise invalid("output_path", "expected NAME.gguf (letters, digits, . _ -)")
    dst = (src.parent / parts[0]) if len(parts) == 1 else state.registry.root.joinpath(*parts)
    root = state.registry.root.resolve()
    if not dst.parent.resolve().is_relative_to(root):
        raise invalid("output_path", "must stay inside the models dir")
    if not dst.parent.is_dir():
        raise invalid("output_path", f"no folder {'/'.join(parts[:-1])} in the models dir")
    return dst


async def convert(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await read_json(request)
    f = Fields(body)
    ref = f.string("model_name") or f.string("model")
    if not ref:
        raise invalid("model_name", "required")
    entry = state.parser.model(ref, "model_name", ("checkpoint", "diffusion_model", "vae", "text_encoder", "lora",
                                                   "controlnet", "taesd", "esrgan"))
    src = Path(entry.path)
    if src.is_dir():
        raise invalid("model_name", f"{entry.id} is a diffusers folder; convert a single-file model")
    qtype = f.choice("quantization_type", state.parser.weight_types)
    if qtype is None:
        raise invalid("quantization_type", "required")
    dst = _output_path(state, src, f.string("output_path") or f"{display_name(entry)}.{qtype}.gguf")
    if dst.exists():
        raise ApiError(409, f"{dst.name} already exists", field="output_path", code="exists")
    params = {"model_name": display_name(entry), "model": entry.id, "quantization_type": qtype,
              "output_name": dst.relative_to(state.registry.root).as_posix(), "_src": entry.path, "_dst": str(dst)}
    job = await submit(state, Prepared("convert", params, {}), principal_of(request))
    return JSONResponse({"job_id": job.id, "status": job.status, "output_path": params["output_name"],
                         "status_url": f"/api/queue/job/{job.id}"}, status_code=202)


async def hash_models(request: Request) -> JSONResponse:
    state = state_of(request)
    body = await read_json(request)
    refs = body.get("models", body.get("model"))
    # stats only: a file changed since the last scan is read again, so the job hashes what was checked
    await anyio.to_thread.run_sync(state.rescan)
    entries = [_entry(state, r, field="models") for r in _refs([refs] if isinstance(refs, str) else refs)]
    for e in entries:
        if Path(e.path).is_dir():
            raise invalid("models", f"{e.id} is a diffusers folder; hash its files")
    params = {"models": list(dict.fromkeys(e.id for e in entries))}
    job = await submit(state, Prepared("hash", params, {}), principal_of(request))
    return JSONResponse({"job_id": job.id, "status": job.status, "status_url": f"/api/queue/job/{job.id}"},
                        status_code=202)


def routes() -> list[ApiRoute]:
    """The models routes: the fixed paths first, then ``{model_id:path}`` (ids contain ``/``) with its suffixed
    routes before the bare one, so ``.../load`` and ``.../unload`` are never read as part of an id."""
    listing = schemas(LISTING)
    obj = {"type": "object"}
    ref: dict[str, Any] = {"type": "string", "minLength": 1, "description": "a model id, relative path or file name"}
    refs = {"type": "array", "minItems": 1, "maxItems": MAX_REFS, "items": ref}
    batch_schema = {"type": "object", "required": ["operation", "models"], "properties": {
        "operation": {"type": "string", "enum": ["load", "unload"]}, "models": refs}}
    validate_schema = {"type": "object", "properties": {"model": ref, "model_id": ref, "model_name": ref},
                       "anyOf": [{"required": [name]} for name in ("model", "model_id", "model_name")]}
    convert_schema = {"type": "object", "required": ["quantization_type"], "properties": {
        "model_name": ref, "model": {**ref, "description": "model_name's other name"},
        "quantization_type": limited({"type": "string"}, enum="quantization_types"),
        "output_path": {"type": "string", "pattern": _OUTPUT_PATH_PATTERN,
                        "description": "a file name in the model's own folder, or a path inside the models dir"}},
                      "anyOf": [{"required": ["model_name"]}, {"required": ["model"]}]}
    hash_schema = {"type": "object", "properties": {"models": {"oneOf": [ref, refs]}, "model": ref},
                   "anyOf": [{"required": ["models"]}, {"required": ["model"]}]}
    return [
        ApiRoute("/api/models", list_models, methods=["GET"], summary="List models", tag="models", query=listing),
        ApiRoute("/api/models/types", model_types, methods=["GET"], summary="Model types", tag="models"),
        ApiRoute("/api/models/directories", directories, methods=["GET"], summary="Model folders", tag="models"),
        ApiRoute("/api/models/stats", stats, methods=["GET"], summary="Model statistics", tag="models"),
        ApiRoute("/api/models/refresh", refresh, methods=["POST"], summary="Rescan the models dir", tag="models", access=ADMIN),
        ApiRoute("/api/models/batch", batch, methods=["POST"], summary="Load or unload several models",
                 tag="models", request=batch_schema, access=ADMIN),
        ApiRoute("/api/models/validate", validate, methods=["POST"], summary="Check a model file", tag="models",
                 request=validate_schema, errors=(404,)),
        ApiRoute("/api/models/convert", convert, methods=["POST"], summary="Quantize a model (a queued job)",
                 tag="models", status=202, errors=(409, 429, 503), request=convert_schema, access=ADMIN),
        ApiRoute("/api/models/hash", hash_models, methods=["POST"], summary="Hash models (a queued job)",
                 tag="models", status=202, errors=(404, 429, 503), request=hash_schema, access=ADMIN),
        ApiRoute("/api/models/{model_id:path}/load", load_model, methods=["POST"], summary="Load a model",
                 tag="models", errors=(404, 422, 503), access=ADMIN),
        ApiRoute("/api/models/{model_id:path}/unload", unload_model, methods=["POST"], summary="Unload a model",
                 tag="models", errors=(404, 409, 422, 503), access=ADMIN),
        ApiRoute("/api/models/{model_id:path}", get_model, methods=["GET"], summary="One model", tag="models",
                 errors=(404, 422), response=obj),
    ]
