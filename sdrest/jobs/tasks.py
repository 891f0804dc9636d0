"""What each job kind does, given its stored parameters. Runs on a worker thread.

Parameters arrive as the server prepared them: plain JSON, every path already
resolved and checked, input images as files in the job's input folder. Keys that
start with ``_`` are internal (paths) and never shown by the API.
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from sdrest.generation_fields import library_keywords
from sdrest.jobs.infotext_files import add_file_hashes
from sdrest.jobs.models import ModelCache
from sdrest.jobs.outputs import a1111_parameters, save_png
from sdrest.models.hashing import Hashes
from sdrest.models.registry import Registry

GENERATION_KINDS = ("txt2img", "img2img", "inpainting", "controlnet", "video")
KINDS = (*GENERATION_KINDS, "upscale", "convert", "hash")


@dataclass
class TaskContext:
    """What a task may use: the worker's models, folders, and the channels back to the server."""

    job_id: str
    models: ModelCache
    output_dir: Path
    input_dir: Path
    cancel: threading.Event
    progress: Callable[[int, int, float, str], None]
    preview: Callable[[int, str], None]
    registry: Registry | None = None
    """The models dir's registry: model hashes come from it (streamed, cached with the file's size and mtime)."""


@dataclass
class TaskResult:
    """Output file names (in ``output_dir``) and a JSON result."""

    outputs: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)


def _input_image(ctx: TaskContext, name: str | None) -> Image.Image | None:
    if not name:
        return None
    with Image.open(ctx.input_dir / name) as img:
        img.load()
        return img.copy()


def _on_progress(ctx: TaskContext) -> Callable[[Any], None]:
    def progress(p: Any) -> None:
        ctx.progress(p.step, p.steps, p.seconds_per_step, p.phase)
    return progress


def run_generation(kind: str, params: dict[str, Any], ctx: TaskContext) -> TaskResult:
    """txt2img, img2img, inpainting, controlnet and video."""
    from sdrest.diffusion import LoRA

    files = dict(params["_context"])
    if params.get("model_hash") is None and ctx.registry is not None and params.get("model"):
        params["model_hash"] = model_short_hash(ctx.registry, params["model"])
    sd = ctx.models.diffusion(files)
    kwargs: dict[str, Any] = {key: params[key] for key in library_keywords(kind) if params.get(key) is not None}
    kwargs["loras"] = [LoRA(lo["_path"], lo.get("multiplier", 1.0)) for lo in params.get("loras", [])]
    kwargs["progress"] = _on_progress(ctx)
    kwargs["cancel"] = ctx.cancel
    if params.get("vae_tiling"):
        kwargs["vae_tiling"] = True
    if params.get("preview"):
        def preview(step: int, frames: list, is_noisy: bool) -> None:
            buffer = io.BytesIO()
            frame = frames[0].copy()
            frame.thumbnail((256, 256))
            frame.save(buffer, format="JPEG", quality=70)
            ctx.preview(step, "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode())
        kwargs["preview"] = preview
        kwargs["preview_interval"] = int(params.get("preview_interval") or 1)
    inputs = params.get("_inputs", {})
    control = _input_image(ctx, inputs.get("control_image"))
    if control is not None:
        kwargs["control_image"] = control
        kwargs["control_strength"] = params["control_strength"]
    prompt = params.get("prompt", "")
    if kind == "video":
        init = _input_image(ctx, inputs.get("image"))
        result = sd.generate_video(prompt, init_image=init, video_frames=params.get("video_frames"), **kwargs)
    elif kind in ("img2img", "inpainting"):
        image = _input_image(ctx, inputs["image"])
        mask = _input_image(ctx, inputs.get("mask"))
        result = sd.img2img(image, prompt, strength=params["strength"], mask=mask, **kwargs)
    else:
        result = sd.txt2img(prompt, **kwargs)
    if params.get("sampler") is None:
        params["sampler"] = sd.default_sampler
    add_file_hashes(params, ctx.registry)
    outputs = []
    for index, (image, seed) in enumerate(zip(result.images, result.seeds)):
        name = f"{index:03d}.png" if kind != "video" else f"frame-{index:04d}.png"
        save_png(image, ctx.output_dir / name, a1111_parameters(params, seed))
        outputs.append(name)
    summary = {"seeds": list(result.seeds), "model_hash": params.get("model_hash"), "sampler": params.get("sampler")}
    requested = int(params.get("batch_count") or 1)
    if kind != "video" and len(outputs) < requested:  # told to skip the rest of the batch (cancel new_latents)
        summary.update(requested=requested, skipped=requested - len(outputs))
    return TaskResult(outputs, summary)


def run_upscale(params: dict[str, Any], ctx: TaskContext) -> TaskResult:
    """An ESRGAN upscale of the input image, by exactly ``upscale_factor`` (default: the model's scale)."""
    upscaler = ctx.models.upscaler(params["_upscaler"])
    image = _input_image(ctx, params["_inputs"]["image"])
    result = upscaler.upscale(image, params.get("upscale_factor"), progress=_on_progress(ctx))
    text = result.info["parameters"]  # factor, model, passes, resize: what was done
    save_png(result, ctx.output_dir / "000.png", text)
    return TaskResult(["000.png"], {"width": result.width, "height": result.height, "parameters": text})


def run_convert(params: dict[str, Any], ctx: TaskContext) -> TaskResult:
    """Quantize a model into a GGUF file in the models dir."""
    from sdrest.conversion import convert

    ctx.models.unload(params["_src"])
    dst = convert(params["_src"], params["_dst"], type=params["quantization_type"], progress=_on_progress(ctx))
    return TaskResult([], {"output_path": params["output_name"], "size": Path(dst).stat().st_size})


def registry_hashes(registry: Registry, model_id: str, **options: Any) -> Hashes:
    """``registry.hashes(model_id)``; a model the registry does not know yet (added since this worker read the
    models dir) makes it rescan once."""
    try:
        registry.find(model_id)
    except KeyError:
        registry.scan()
    return registry.hashes(model_id, **options)


def model_short_hash(registry: Registry, model_id: str) -> str | None:
    """A1111's short hash (``autov2``) of a registry model, or None when the file is gone or unreadable."""
    try:
        return registry_hashes(registry, model_id).autov2
    except (KeyError, OSError):
        return None


def run_hash(params: dict[str, Any], ctx: TaskContext) -> TaskResult:
    """sha256, A1111's short hash (AutoV2) and legacy hash of registry models, by id."""
    from sdrest.errors import Cancelled
    from sdrest.models.hashing import HashCancelled

    if ctx.registry is None:
        raise ValueError("models: no models dir to hash from")
    ids = list(params["models"])
    hashes: dict[str, dict[str, str]] = {}
    for index, model_id in enumerate(ids):
        last = [-1]

        def progress(done: int, total: int, index: int = index, last: list[int] = last) -> None:
            percent = done * 100 // total if total else 100
            if percent != last[0]:  # at most ~100 updates per file, not one per MiB
                last[0] = percent
                ctx.progress(index * 100 + percent, len(ids) * 100, 0.0, "hashing")

        try:
            hashes[model_id] = registry_hashes(ctx.registry, model_id, progress=progress, cancel=ctx.cancel).to_dict()
        except HashCancelled:
            raise Cancelled("cancelled") from None
    return TaskResult([], {"hashes": hashes})


def run_task(kind: str, params: dict[str, Any], ctx: TaskContext) -> TaskResult:
    """Dispatch on ``kind``."""
    if kind in GENERATION_KINDS:
        return run_generation(kind, params, ctx)
    if kind == "upscale":
        return run_upscale(params, ctx)
    if kind == "convert":
        return run_convert(params, ctx)
    if kind == "hash":
        return run_hash(params, ctx)
    raise ValueError(f"kind: unknown job kind {kind!r}")
