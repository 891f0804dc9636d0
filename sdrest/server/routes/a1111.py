"""AUTOMATIC1111's API (``/sdapi/v1``), through sdrest's queue.

Every generation and upscale is a job like any other: queued as the caller's, visible in ``/api/queue/status``,
cancellable, persisted, counted in the metrics. The call waits for its job and answers in A1111's shape; a client
that leaves cancels it. ``progress``, ``interrupt`` and ``skip`` speak of the caller's running job, ``options``
are the caller's own (:mod:`sdrest.server.a1111.session`). Errors come as A1111's FastAPI gives them
(:mod:`sdrest.server.a1111.errors`). Every route needs credentials (A1111 clients send HTTP Basic: a user name and
password, or ``apikey:<key>``); ``cmd-flags`` (the server's settings) is for admins.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import psutil
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sdrest import a1111_names
from sdrest.auth.service import Principal
from sdrest.jobs.store import CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, SUCCEEDED, Job
from sdrest.server.a1111 import answers, catalog, pnginfo, translate
from sdrest.server.a1111.errors import a1111_error, field_error
from sdrest.server.a1111.session import callers_jobs, dialect_of, owner_key
from sdrest.server.auth import principal_of
from sdrest.server.body import read_json
from sdrest.server.errors import ApiError
from sdrest.server.query import Boolean, schemas
from sdrest.server.requests import Fields, display_name
from sdrest.server.spec import ADMIN, USER, ApiRoute, Schema
from sdrest.server.state import ServerState, state_of
from sdrest.server.submit import submit, wait_or_cancel

PREFIX = "/sdapi/v1"
#: the longest a synchronous call waits for its job (A1111 has no limit; a server stop ends the wait sooner)
WAIT_SECONDS = 86400.0
SKIP_IMAGE = Boolean("skip_current_image", False, "leave current_image out")
#: A1111's name of the task a job kind is, in ``progress``'s ``state.job``
_TASKS = {"txt2img": "scripts_txt2img", "img2img": "scripts_img2img", "inpainting": "scripts_img2img",
          "upscale": "extras"}
_PHASES = {"loading": "Loading the model", "sampling": "Sampling", "decoding": "Decoding",
           "upscaling": "Upscaling"}

# -- schemas (loose: A1111 clients send many optional fields, and the routes accept unknown ones) ------------

_NULLABLE_STRING: Schema = {"type": ["string", "null"]}
_INT: Schema = {"type": "integer"}
_GENERATION_FIELDS: Schema = {
    "prompt": {"type": "string"}, "negative_prompt": {"type": "string"}, "seed": _INT,
    "sampler_name": _NULLABLE_STRING, "sampler_index": _NULLABLE_STRING, "scheduler": _NULLABLE_STRING,
    "batch_size": {"type": "integer", "minimum": 1}, "n_iter": {"type": "integer", "minimum": 1},
    "steps": {"type": "integer", "minimum": 1}, "cfg_scale": {"type": "number"},
    "width": {"type": "integer", "minimum": 64}, "height": {"type": "integer", "minimum": 64},
    "override_settings": {"type": ["object", "null"]}, "send_images": {"type": "boolean"},
    "save_images": {"type": "boolean"}, "script_name": _NULLABLE_STRING,
    "alwayson_scripts": {"type": ["object", "null"]}, "styles": {"type": ["array", "null"]},
}
TXT2IMG_SCHEMA: Schema = {"type": "object", "required": ["prompt"], "additionalProperties": True,
                          "properties": {**_GENERATION_FIELDS, "enable_hr": {"type": "boolean"}}}
IMG2IMG_SCHEMA: Schema = {"type": "object", "required": ["prompt", "init_images"], "additionalProperties": True,
                          "properties": {
                              **_GENERATION_FIELDS,
                              "init_images": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                              "mask": _NULLABLE_STRING, "denoising_strength": {"type": "number", "minimum": 0,
                                                                               "maximum": 1},
                              "resize_mode": {"type": "integer", "minimum": 0, "maximum": 3},
                              "mask_blur": {"type": "integer", "minimum": 0, "maximum": 64},
                              "inpainting_fill": {"type": "integer", "minimum": 0, "maximum": 3},
                              "inpaint_full_res": {"type": ["boolean", "integer"]},
                              "inpaint_full_res_padding": {"type": "integer", "minimum": 0, "maximum": 1024},
                              "inpainting_mask_invert": {"type": ["integer", "boolean"]},
                              "include_init_images": {"type": "boolean"}}}
GENERATION_ANSWER: Schema = {"type": "object", "required": ["images", "parameters", "info"], "properties": {
    "images": {"type": "array", "items": {"type": "string", "contentEncoding": "base64"}},
    "parameters": {"type": "object"}, "info": {"type": "string", "contentMediaType": "application/json"}}}
_EXTRAS_FIELDS: Schema = {
    "resize_mode": {"type": "integer", "minimum": 0, "maximum": 1},
    "upscaling_resize": {"type": "number", "exclusiveMinimum": 0, "maximum": 8},
    "upscaling_resize_w": {"type": "integer", "minimum": 1}, "upscaling_resize_h": {"type": "integer", "minimum": 1},
    "upscaling_crop": {"type": "boolean"}, "upscaler_1": _NULLABLE_STRING, "upscaler_2": _NULLABLE_STRING,
}
EXTRAS_SINGLE_SCHEMA: Schema = {"type": "object", "required": ["image"], "additionalProperties": True,
                                "properties": {**_EXTRAS_FIELDS, "image": {"type": "string"}}}
EXTRAS_BATCH_SCHEMA: Schema = {"type": "object", "required": ["imageList"], "additionalProperties": True,
                               "properties": {**_EXTRAS_FIELDS, "imageList": {"type": "array", "items": {
                                   "type": "object", "required": ["data"],
                                   "properties": {"data": {"type": "string"}, "name": {"type": "string"}}}}}}
PNG_INFO_SCHEMA: Schema = {"type": "object", "required": ["image"], "additionalProperties": True,
                           "properties": {"image": {"type": "string"}}}
PROGRESS_ANSWER: Schema = {"type": "object", "required": ["progress", "eta_relative", "state"], "properties": {
    "progress": {"type": "number", "minimum": 0, "maximum": 1}, "eta_relative": {"type": "number"},
    "state": {"type": "object", "required": ["job_count", "sampling_step", "sampling_steps", "interrupted",
                                             "skipped"]},
    "current_image": _NULLABLE_STRING, "textinfo": _NULLABLE_STRING}}
NULL: Schema = {"type": "null"}
LIST: Schema = {"type": "array", "items": {"type": "object"}}
SD_MODELS: Schema = {"type": "array", "items": {"type": "object", "required": ["title", "model_name", "filename"],
                                                "properties": {"title": {"type": "string"},
                                                               "model_name": {"type": "string"},
                                                               "hash": _NULLABLE_STRING, "sha256": _NULLABLE_STRING,
                                                               "filename": {"type": "string"}}}}


# -- helpers -------------------------------------------------------------------------------------------


async def _wait(request: Request, state: ServerState, job: Job) -> Job:
    """The job once it has ended; a client that leaves cancels it (:func:`~sdrest.server.submit.wait_or_cancel`).
    503 when the server begins to stop first (the job stays in the queue)."""
    done = await wait_or_cancel(request, state, job.id, WAIT_SECONDS)
    if done is None:
        raise ApiError(503, f"the server is stopping (or the job ran past {WAIT_SECONDS:g} s); the job is kept: "
                            f"/api/queue/job/{job.id}", headers={"Retry-After": "5"})
    return done


def _failed(job: Job) -> ApiError:
    return ApiError(500, f"the job failed: {job.error or 'unknown error'}", code="job_failed")


def _entry_title(state: ServerState, ref: str | None) -> tuple[str | None, str | None]:
    """The title and sha256 of the checkpoint ``ref`` names (none: the model a request naming none gets)."""
    registry = state.registry
    if ref:
        hits = catalog.find_checkpoint(ref, registry)
        return (catalog.title(hits[0]), hits[0].hashes.sha256 if hits[0].hashes else None) if len(hits) == 1 \
            else (ref, None)
    fallback = state.config.default_model or state.loaded_model_id()
    candidates = catalog.find_checkpoint(fallback, registry) if fallback else catalog.checkpoints(registry)
    if len(candidates) == 1:
        entry = candidates[0]
        return catalog.title(entry), entry.hashes.sha256 if entry.hashes else None
    return None, None


# -- generation ------------------------------------------------------------------------------------------


def _generation_endpoint(kind: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state, principal = state_of(request), principal_of(request)
        body = await read_json(request)
        dialect = dialect_of(state)
        owner = owner_key(principal)
        generation = await anyio.to_thread.run_sync(
            translate.generation, kind, body, state.parser, state.rescan, dialect.options.get(owner),
            state.config.max_batch)
        job = await submit(state, generation.prepared, principal)
        dialect.started(owner)
        done = await _wait(request, state, job)
        if done.status == FAILED:
            raise _failed(done)
        answer = await anyio.to_thread.run_sync(answers.generation_answer, state.outputs_dir, done, generation)
        return JSONResponse(answer)
    endpoint.__name__ = f"a1111_{kind}"
    return endpoint


async def _extras(request: Request, state: ServerState, principal: Principal, body: dict[str, Any],
                  images: list[tuple[Any, str]]) -> list[tuple[str, str]]:
    """Upscale each (value, field) of ``images``: one queued job per image that needs a model; a client that
    leaves, or a stop, cancels the jobs not yet done."""
    plans = []
    for value, name in images:
        plans.append(await anyio.to_thread.run_sync(translate.extras, body, value, name, state.parser, state.rescan,
                                                    state.config.max_pixels))
    jobs: list[Job | None] = []
    try:
        for plan in plans:
            jobs.append(await submit(state, plan.prepared, principal) if plan.prepared is not None else None)
        done: list[Job | None] = []
        for job in jobs:
            done.append(await _wait(request, state, job) if job is not None else None)
    except BaseException:
        for job in jobs:
            if job is not None:
                current = state.queue.get(job.id)
                if current is not None and current.status not in FINISHED:
                    state.queue.cancel(job.id)
        raise
    out = []
    for plan, job in zip(plans, done):
        if job is not None and job.status != SUCCEEDED:
            if job.status == CANCELLED:
                raise ApiError(409, f"the upscale job {job.id} was cancelled", code="job_cancelled")
            raise _failed(job)
        out.append(await anyio.to_thread.run_sync(answers.extras_image, state.outputs_dir, job, plan))
    return out


async def extra_single_image(request: Request) -> Response:
    state, principal = state_of(request), principal_of(request)
    body = await read_json(request)
    ((image, text),) = await _extras(request, state, principal, body, [(body.get("image"), "image")])
    return JSONResponse({"html_info": answers.html_info([text]), "image": image})


async def extra_batch_images(request: Request) -> Response:
    state, principal = state_of(request), principal_of(request)
    body = await read_json(request)
    items = body.get("imageList")
    if not isinstance(items, list) or not items:
        raise field_error("imageList", "required: a list of {data, name}")
    if len(items) > state.config.max_batch:
        raise field_error("imageList", f"at most {state.config.max_batch} images (the server's max_batch)")
    images = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise field_error(f"imageList[{index}]", "expected {data, name}")
        images.append((item.get("data"), f"imageList[{index}].data"))
    done = await _extras(request, state, principal, body, images)
    return JSONResponse({"html_info": answers.html_info([text for _, text in done]),
                         "images": [image for image, _ in done]})


async def png_info(request: Request) -> Response:
    state = state_of(request)
    body = await read_json(request)
    value = body.get("image")
    if value in (None, ""):
        return JSONResponse({"info": "", "items": {}, "parameters": {}})
    image = await anyio.to_thread.run_sync(state.parser.image, value, "image")
    text = pnginfo.generation_text(image) or ""
    return JSONResponse({"info": text, "items": pnginfo.other_texts(image),
                         "parameters": pnginfo.parse_parameters(text) if text else {}})


# -- progress, interrupt, skip -----------------------------------------------------------------------------


def _raw_base64(data_url: str) -> str:
    return data_url.partition(",")[2] if data_url.startswith("data:") else data_url


async def progress(request: Request) -> Response:
    state, principal = state_of(request), principal_of(request)
    skip_image = SKIP_IMAGE.read(request)
    flags = dialect_of(state).read_flags(owner_key(principal))
    running = callers_jobs(state, principal, [RUNNING])
    queued = callers_jobs(state, principal, [QUEUED])
    job = running[0] if running else None
    sampling = job is not None and job.phase in ("sampling", "upscaling") and job.steps > 0
    step, steps = (job.step, job.steps) if sampling and job is not None else (0, 0)
    fraction = 0.0
    if job is not None:
        fraction = 0.99 if job.phase == "decoding" else 0.01 + 0.98 * (step / steps if steps else 0.0)
    eta = 0.0
    if job is not None and job.started_at and fraction > 0.01:
        elapsed = max(0.0, time.time() - job.started_at)
        eta = max(0.0, elapsed / fraction - elapsed)
    preview = state.queue.latest_preview(job.id) if job is not None and not skip_image else None
    if job is not None:
        textinfo: str | None = _PHASES.get(job.phase or "", job.phase)
    elif queued:
        textinfo = f"Waiting in the queue (position {queued[0].position})" if queued[0].position else "Queued"
    else:
        textinfo = None
    current = job or (queued[0] if queued else None)
    body = {
        "progress": round(fraction, 4), "eta_relative": round(eta, 3),
        "state": {"skipped": flags.skipped, "interrupted": flags.interrupted, "stopping_generation": False,
                  "job": _TASKS.get(current.kind, current.kind) if current else "",
                  "job_id": current.id if current else None,
                  "job_count": len(running) + len(queued), "job_timestamp": answers.job_timestamp(current)
                  if current else "0", "job_no": 0, "sampling_step": step, "sampling_steps": steps},
        "current_image": _raw_base64(preview[1]) if preview else None,
        "textinfo": textinfo,
    }
    return JSONResponse(body)


def _stop_running(state: ServerState, principal: Principal) -> list[str]:
    ids = [job.id for job in callers_jobs(state, principal, [RUNNING])]
    for job_id in ids:
        state.queue.cancel(job_id)
    return ids


async def interrupt(request: Request) -> Response:
    """Stop the caller's running job (A1111 answers the waiting call with what was finished: nothing here)."""
    state, principal = state_of(request), principal_of(request)
    flags = dialect_of(state).flags_of(owner_key(principal))
    flags.interrupted = True
    _stop_running(state, principal)
    return JSONResponse({})


async def skip(request: Request) -> Response:
    """Skip the caller's running job: sd.cpp makes a batch in one call, so the job ends as with interrupt (the
    caller's next queued job then starts)."""
    state, principal = state_of(request), principal_of(request)
    flags = dialect_of(state).flags_of(owner_key(principal))
    flags.skipped = True
    _stop_running(state, principal)
    return JSONResponse(None)


# -- options ----------------------------------------------------------------------------------------------


async def get_options(request: Request) -> Response:
    state, principal = state_of(request), principal_of(request)
    options = dialect_of(state).options.get(owner_key(principal))
    title, sha256 = _entry_title(state, options.get("sd_model_checkpoint"))
    return JSONResponse({**options, "sd_model_checkpoint": title, "sd_checkpoint_hash": sha256})


def _checked_options(state: ServerState, body: dict[str, Any]) -> dict[str, Any]:
    """The options of a ``POST options`` body, the ones that mean something here checked (and names made
    canonical); blocking (the models dir may be rescanned)."""
    out = dict(body)
    f = Fields(body)
    registry = state.registry
    checkpoint = body.get("sd_model_checkpoint")
    if checkpoint is not None:
        if not isinstance(checkpoint, str) or not checkpoint.strip():
            raise field_error("sd_model_checkpoint", "expected a model title or name")
        hits = catalog.find_checkpoint(checkpoint, registry)
        if not hits:
            state.rescan()
            hits = catalog.find_checkpoint(checkpoint, registry)
        if len(hits) != 1:
            reason = "is ambiguous" if hits else "names no checkpoint in the models dir"
            raise field_error("sd_model_checkpoint", f"{checkpoint!r} {reason}: see GET {PREFIX}/sd-models")
        out["sd_model_checkpoint"] = catalog.title(hits[0])
    vae = body.get("sd_vae")
    if vae is not None:
        if not isinstance(vae, str):
            raise field_error("sd_vae", "expected a VAE name, Automatic or None")
        if vae.strip().lower() not in ("", "automatic", "none"):
            hits = catalog.find_named(vae, [e for e in registry.entries() if e.kind in ("vae", "taesd")])
            if len(hits) != 1:
                raise field_error("sd_vae", f"{vae!r} names no single VAE: see GET {PREFIX}/sd-vae")
            out["sd_vae"] = hits[0].name
    if "CLIP_stop_at_last_layers" in body:
        out["CLIP_stop_at_last_layers"] = f.integer("CLIP_stop_at_last_layers", 1, 1, 12)
    if "show_progress_every_n_steps" in body:
        out["show_progress_every_n_steps"] = f.integer("show_progress_every_n_steps", 10, -1, 1000)
    if "live_previews_enable" in body:
        out["live_previews_enable"] = f.boolean("live_previews_enable", True)
    out.pop("sd_checkpoint_hash", None)  # derived, never stored
    return out


async def set_options(request: Request) -> Response:
    state, principal = state_of(request), principal_of(request)
    body = await read_json(request)
    changes = await anyio.to_thread.run_sync(_checked_options, state, body)
    store = dialect_of(state).options
    try:
        await anyio.to_thread.run_sync(store.set, owner_key(principal), changes)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    return JSONResponse(None)


async def cmd_flags(request: Request) -> Response:
    """The server's settings under A1111's flag names (folders as names in the models dir, never server paths)."""
    cfg = state_of(request).config
    return JSONResponse({
        "api": True, "nowebui": False, "listen": cfg.host not in ("127.0.0.1", "localhost", "::1"), "port": cfg.port,
        "ckpt": cfg.default_model, "ckpt_dir": "checkpoints", "vae_dir": "vae", "lora_dir": "lora",
        "esrgan_models_path": "esrgan", "embeddings_dir": "embeddings", "device_id": cfg.devices,
        "api_auth": None, "gradio_auth": None, "sdrest_auth": cfg.auth, "lowvram": False, "medvram": False,
        "no_half": False, "precision": "autocast"})


# -- lists -------------------------------------------------------------------------------------------------


async def sd_models(request: Request) -> Response:
    return JSONResponse([catalog.checkpoint_item(e) for e in catalog.checkpoints(state_of(request).registry)])


async def sd_vae(request: Request) -> Response:
    return JSONResponse(catalog.vae_items(state_of(request).registry))


async def samplers(request: Request) -> Response:
    return JSONResponse([{"name": s.name, "aliases": list(s.aliases) or [s.sdcpp],
                          "options": {"scheduler": s.scheduler} if s.scheduler else {}}
                         for s in a1111_names.samplers(state_of(request).parser.samplers)])


async def schedulers(request: Request) -> Response:
    return JSONResponse([{"name": s.name, "label": s.label, "aliases": list(s.aliases) or None,
                          "default_rho": s.default_rho, "need_inner_model": False}
                         for s in a1111_names.schedulers(state_of(request).parser.schedulers)])


async def upscalers(request: Request) -> Response:
    return JSONResponse(catalog.upscaler_items(state_of(request).registry))


async def loras(request: Request) -> Response:
    return JSONResponse([catalog.lora_item(e) for e in state_of(request).registry.entries() if e.kind == "lora"])


async def embeddings(request: Request) -> Response:
    """The embeddings in the models dir, all under ``skipped``: the workers do not load textual inversions."""
    skipped = {display_name(e): {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None,
                                              "shape": int(e.info.details.get("width") or 0),
                                              "vectors": int(e.info.details.get("vectors") or 0)}
               for e in state_of(request).registry.entries() if e.kind == "embedding"}
    return JSONResponse({"loaded": {}, "skipped": skipped})


async def refresh(request: Request) -> Response:
    """Rescan the models dir (only new and changed files are read), as A1111's refresh-* do for their folder."""
    await anyio.to_thread.run_sync(state_of(request).rescan)
    return JSONResponse(None)


async def memory(request: Request) -> Response:
    mem = await anyio.to_thread.run_sync(psutil.virtual_memory)
    return JSONResponse({"ram": {"free": mem.available, "used": mem.total - mem.available, "total": mem.total},
                         "cuda": {"error": "the workers own the devices: see /api/system"}})


async def scripts(request: Request) -> Response:
    return JSONResponse({"txt2img": [], "img2img": []})


async def script_info(request: Request) -> Response:
    return JSONResponse([])


async def empty_list(request: Request) -> Response:
    """What A1111 lists and sdrest has none of (hypernetworks, face restorers, styles...): an empty list."""
    return JSONResponse([])


# -- the routes -------------------------------------------------------------------------------------------


def routes() -> list[ApiRoute]:
    """The ``/sdapi/v1`` routes."""
    def route(path: str, endpoint: Callable[[Request], Awaitable[Response]], method: str, summary: str, *,
              request: Schema | None = None, response: Schema | None = None, errors: tuple[int, ...] = (),
              access: str = USER, query: dict[str, Schema] | None = None) -> ApiRoute:
        return ApiRoute(f"{PREFIX}/{path}", endpoint, methods=[method], summary=summary, tag="a1111",
                        request=request, response=response, errors=errors, access=access, query=query,
                        error_format=a1111_error)

    # 409: an upscale job cancelled meanwhile; 429: queue full or the caller's limits; 500: the job failed;
    # 503: the server began to stop while the call waited
    waits = (409, 415, 422, 429, 500, 503)
    return [
        route("txt2img", _generation_endpoint("txt2img"), "POST", "Text to image (A1111)", request=TXT2IMG_SCHEMA,
              response=GENERATION_ANSWER, errors=waits),
        route("img2img", _generation_endpoint("img2img"), "POST", "Image to image and inpainting (A1111)",
              request=IMG2IMG_SCHEMA, response=GENERATION_ANSWER, errors=waits),
        route("extra-single-image", extra_single_image, "POST", "Upscale one image (A1111 extras)",
              request=EXTRAS_SINGLE_SCHEMA, errors=waits,
              response={"type": "object", "required": ["image", "html_info"],
                        "properties": {"image": {"type": "string"}, "html_info": {"type": "string"}}}),
        route("extra-batch-images", extra_batch_images, "POST", "Upscale several images (A1111 extras)",
              request=EXTRAS_BATCH_SCHEMA, errors=waits,
              response={"type": "object", "required": ["images", "html_info"], "properties": {
                  "images": {"type": "array", "items": {"type": "string"}}, "html_info": {"type": "string"}}}),
        route("png-info", png_info, "POST", "The generation text an image carries (A1111)", request=PNG_INFO_SCHEMA,
              response={"type": "object", "required": ["info"], "properties": {
                  "info": {"type": "string"}, "items": {"type": "object"}, "parameters": {"type": "object"}}}),
        route("progress", progress, "GET", "The caller's running job (A1111)", response=PROGRESS_ANSWER,
              query=schemas((SKIP_IMAGE,))),
        route("interrupt", interrupt, "POST", "Stop the caller's running job (A1111)", response={"type": "object"}),
        route("skip", skip, "POST", "Skip the caller's running job (A1111)", response=NULL),
        route("options", get_options, "GET", "The caller's options (A1111)", response={"type": "object"}),
        route("options", set_options, "POST", "Set the caller's options (A1111)", response=NULL,
              request={"type": "object", "additionalProperties": True, "properties": {
                  "sd_model_checkpoint": _NULLABLE_STRING, "sd_vae": _NULLABLE_STRING,
                  "CLIP_stop_at_last_layers": {"type": "integer", "minimum": 1, "maximum": 12}}}),
        route("cmd-flags", cmd_flags, "GET", "The server's settings as A1111 flags", access=ADMIN,
              response={"type": "object"}),
        route("sd-models", sd_models, "GET", "Checkpoints (A1111)", response=SD_MODELS),
        route("sd-vae", sd_vae, "GET", "VAEs and TAESDs (A1111)", response=LIST),
        route("samplers", samplers, "GET", "Samplers by A1111's names", response=LIST),
        route("schedulers", schedulers, "GET", "Schedulers by A1111's names", response=LIST),
        route("upscalers", upscalers, "GET", "Upscalers (A1111)", response=LIST),
        route("loras", loras, "GET", "LoRAs (A1111)", response=LIST),
        route("embeddings", embeddings, "GET", "Embeddings (A1111; none loaded)", response={"type": "object"}),
        route("refresh-checkpoints", refresh, "POST", "Rescan the models dir", response=NULL),
        route("refresh-vae", refresh, "POST", "Rescan the models dir", response=NULL),
        route("refresh-loras", refresh, "POST", "Rescan the models dir", response=NULL),
        route("memory", memory, "GET", "Memory (A1111)", response={"type": "object"}),
        route("scripts", scripts, "GET", "Scripts (none)", response={"type": "object"}),
        route("script-info", script_info, "GET", "Scripts' arguments (none)", response=LIST),
        *(route(path, empty_list, "GET", f"{what} (A1111; none here)", response=LIST)
          for path, what in (("hypernetworks", "Hypernetworks"), ("face-restorers", "Face restorers"),
                             ("realesrgan-models", "RealESRGAN models (ESRGAN models: upscalers)"),
                             ("prompt-styles", "Prompt styles"), ("latent-upscale-modes", "Latent upscale modes"),
                             ("extensions", "Extensions"))),
    ]


__all__ = ["PREFIX", "routes"]
