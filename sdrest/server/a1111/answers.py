"""A1111's answers, made from finished jobs.

A generation answers ``{"images": [raw base64 PNG ...], "parameters": the request as A1111 reads it, "info": a
JSON string}``; ``info`` carries ``seed``, ``all_seeds``, ``infotexts`` (each image's ``parameters`` text, as the
worker wrote it into the PNG) and the rest of A1111's fields. An extras call answers ``{"image" or "images",
"html_info"}``. Images are the job's output files, sent as stored, or finished as A1111 does (an inpainting
result laid over the original; an upscale brought to A1111's exact size) with the same ``parameters`` text.
Blocking (files are read): call from a thread.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path
from typing import Any

from PIL import Image

import sdrest
from sdrest.a1111_names import sampler_label, scheduler_label
from sdrest.infotext import parse_infotext
from sdrest.jobs.store import SUCCEEDED, Job
from sdrest.server.a1111.images import encode_png
from sdrest.server.a1111.translate import Extras, Generation

__all__ = ["extras_image", "generation_answer", "html_info", "job_timestamp"]


def job_timestamp(job: Job) -> str:
    """A1111's ``job_timestamp`` of a job (its creation, ``YYYYmmddHHMMSS``)."""
    return time.strftime("%Y%m%d%H%M%S", time.localtime(job.created_at or time.time()))


def _read(path: Path) -> tuple[Image.Image, str | None]:
    with Image.open(path) as image:
        image.load()
        text = image.info.get("parameters")
        return image.copy(), text if isinstance(text, str) else None


def _info(job: Job, generation: Generation, infotexts: list[str]) -> dict[str, Any]:
    params, result = job.params, job.result
    seeds = [int(s) for s in result.get("seeds", [])]
    seed = seeds[0] if seeds else params.get("seed", -1)
    count = max(1, len(seeds))
    written = parse_infotext(infotexts[0]) if infotexts else {}
    sampler = result.get("sampler") or params.get("sampler")
    scheduler = params.get("scheduler")
    extra = {key: written[key] for key in ("Schedule type", "Lora hashes") if key in written}
    if scheduler and "Schedule type" not in extra:
        extra["Schedule type"] = scheduler_label(scheduler)
    return {
        "prompt": generation.prompt, "all_prompts": [generation.prompt] * count,
        "negative_prompt": generation.negative_prompt, "all_negative_prompts": [generation.negative_prompt] * count,
        "seed": seed, "all_seeds": seeds, "subseed": seed, "all_subseeds": seeds, "subseed_strength": 0,
        "width": params.get("width"), "height": params.get("height"),
        "sampler_name": sampler_label(sampler) if sampler else None,
        "cfg_scale": params.get("cfg_scale"), "steps": params.get("steps"), "batch_size": params.get("batch_count", 1),
        "restore_faces": False, "face_restoration_model": None,
        "sd_model_name": params.get("model_name"), "sd_model_hash": result.get("model_hash") or written.get("Model hash"),
        "sd_vae_name": written.get("VAE"), "sd_vae_hash": written.get("VAE hash"),
        "seed_resize_from_w": -1, "seed_resize_from_h": -1, "denoising_strength": params.get("strength"),
        "extra_generation_params": extra, "index_of_first_image": 0, "infotexts": infotexts, "styles": [],
        "job_timestamp": job_timestamp(job), "clip_skip": params.get("clip_skip") or 1,
        "is_using_inpainting_conditioning": False, "version": f"sdrest {sdrest.__version__}",
    }


def generation_answer(outputs_dir: Path, job: Job, generation: Generation) -> dict[str, Any]:
    """The answer to a txt2img or img2img call whose job has ended (a cancelled job, interrupted or skipped,
    answers without images, as A1111 does when nothing was finished)."""
    images: list[str] = []
    infotexts: list[str] = []
    if job.status == SUCCEEDED:
        for name in job.outputs:
            path = outputs_dir / job.id / name
            image, text = _read(path)
            infotexts.append(text or "")
            if not generation.send_images:
                continue
            if generation.plan is not None:
                images.append(encode_png(generation.plan.finish(image), text))
            else:
                images.append(base64.b64encode(path.read_bytes()).decode())
    info = _info(job, generation, infotexts)
    return {"images": images, "parameters": generation.parameters, "info": json.dumps(info)}


def extras_image(outputs_dir: Path, job: Job | None, extras: Extras) -> tuple[str, str]:
    """(raw base64 PNG, its ``parameters`` text) for one extras image: the upscale job's output brought to A1111's
    size (and crop), or the plain resize."""
    if job is None:
        image = extras.resized
        assert image is not None
        text = f"Postprocess upscale to: {image.width}x{image.height}, Postprocess upscaler: {extras.upscaler}"
    else:
        image, written = _read(outputs_dir / job.id / job.outputs[0])
        text = written or ""
    if image.size != extras.target:
        image = image.convert("RGB").resize(extras.target, Image.Resampling.LANCZOS)
    if extras.crop is not None and image.size != extras.crop:
        canvas = Image.new("RGB", extras.crop)
        canvas.paste(image, (extras.crop[0] // 2 - image.width // 2, extras.crop[1] // 2 - image.height // 2))
        image = canvas
    return encode_png(image, text or None), text


def html_info(texts: list[str]) -> str:
    """A1111's ``html_info`` of an extras call: what was done, as HTML paragraphs."""
    return "".join(f"<p>{html.escape(text)}</p>" for text in texts if text)
