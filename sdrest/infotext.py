"""A1111's ``parameters`` text ("infotext"): how an image was made, in the form its tools read.

    a lovely cat <lora:film-grain:0.6>
    Negative prompt: blurry
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.0, Seed: 42, Size: 512x512, Model hash: 6ce0161689, Model: v1-5, VAE hash: 735e4c3a44, VAE: vae-ft-mse.safetensors, Lora hashes: "film-grain: 2d1b3a5c7e9f"

:func:`infotext` writes it from friendly parameters (the keys of
``GenerationResult.parameters``, which the server's job parameters share) the way A1111 does, so its tools
(PNG Info, civitai's upload) read it: A1111's sampler and schedule names (:mod:`sdrest.a1111_names`), the LoRAs
as ``<lora:name:weight>`` tags in the prompt, and the files' hashes where the caller knows them (``model_hash``,
``vae_hash``, each LoRA's ``hash``: see :func:`sdrest.jobs.infotext_files.add_file_hashes`).
:func:`parse_infotext` reads it back. Used by the library, the CLI and the server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sdrest.a1111_names import sampler_label, scheduler_label

__all__ = ["infotext", "parse_infotext"]

# (infotext key, parameter key), in A1111's order; a missing or None parameter is left out.
_FIELDS = (
    ("Steps", "steps"),
    ("Sampler", "sampler"),
    ("Schedule type", "scheduler"),
    ("CFG scale", "cfg_scale"),
    ("Image CFG scale", "img_cfg_scale"),
    ("Distilled CFG Scale", "guidance"),
    ("Eta", "eta"),
    ("Shift", "flow_shift"),
)
_AFTER_SIZE = (
    ("Model hash", "model_hash"),
    ("Model", "model_name"),
    ("VAE hash", "vae_hash"),
    ("VAE", "vae_name"),
    ("Denoising strength", "strength"),
    ("Clip skip", "clip_skip"),
    ("RNG", "rng"),
    ("Sampler RNG", "sampler_rng"),
    ("Control strength", "control_strength"),
    ("Video frames", "video_frames"),
    ("Postprocess upscaler", "upscaler"),
)


def _quote(value: Any) -> str:
    """A value as A1111 writes it: quoted (JSON-style) when it holds a comma, colon or quote."""
    text = str(value)
    if any(c in text for c in ',:"\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def _weight(value: Any) -> str:
    """A LoRA weight as A1111 writes it in a tag (``0.8``, ``1``)."""
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return "1"


def _alias(name: str) -> str:
    """A LoRA's name as A1111 writes it in ``Lora hashes`` (its separators removed)."""
    return name.replace(":", "").replace(",", "")


def _prompt_with_loras(prompt: str, loras: list[Mapping[str, Any]]) -> str:
    """The prompt with a ``<lora:name:weight>`` tag for each LoRA it does not already name, as A1111 keeps them."""
    tags = [f"<lora:{lo['name']}:{_weight(lo.get('multiplier', 1.0))}>" for lo in loras if lo.get("name")]
    missing = [tag for tag in tags if tag not in prompt]
    return " ".join([prompt, *missing]) if prompt else " ".join(missing)


def infotext(params: Mapping[str, Any], seed: int | None = None) -> str:
    """The ``parameters`` text of one image made with ``params`` (``seed``: that image's seed)."""
    loras = [lo for lo in params.get("loras") or [] if isinstance(lo, Mapping)]
    params = dict(params)
    if params.get("sampler"):
        params["sampler"] = sampler_label(str(params["sampler"]))
    if params.get("scheduler"):
        params["scheduler"] = scheduler_label(str(params["scheduler"]))
    lines = [_prompt_with_loras(str(params.get("prompt", "") or ""), loras)]
    negative = params.get("negative_prompt")
    if negative:
        lines.append(f"Negative prompt: {negative}")
    fields: list[tuple[str, Any]] = [(k, params.get(p)) for k, p in _FIELDS]
    fields.append(("Seed", seed if seed is not None else params.get("seed")))
    if params.get("width") is not None and params.get("height") is not None:
        fields.append(("Size", f"{params.get('width')}x{params.get('height')}"))
    fields.extend((k, params.get(p)) for k, p in _AFTER_SIZE)
    hires = params.get("hires")
    if isinstance(hires, Mapping) and hires.get("enabled", True):
        fields.extend([("Hires upscaler", hires.get("upscaler")), ("Hires upscale", hires.get("scale")),
                       ("Hires steps", hires.get("steps") or None),
                       ("Hires denoising strength", hires.get("denoising_strength"))])
        if hires.get("target_width") or hires.get("target_height"):
            fields.append(("Hires resize", f"{hires.get('target_width')}x{hires.get('target_height')}"))
    sigmas = params.get("sigmas")
    if sigmas:
        fields.append(("Sigmas", "[" + ", ".join(f"{s:g}" for s in sigmas) + "]"))
    cache = params.get("cache")
    if isinstance(cache, Mapping) and cache.get("mode"):
        fields.append(("Cache", cache.get("mode")))
    hashed = [f"{_alias(str(lo['name']))}: {lo['hash']}" for lo in loras if lo.get("name") and lo.get("hash")]
    if hashed:
        fields.append(("Lora hashes", ", ".join(hashed)))
    if params.get("version"):
        fields.append(("Version", params["version"]))
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in fields if v is not None and v != ""))
    return "\n".join(lines)


_FIELD = re.compile(r'\s*([\w ()\-]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parse_infotext(text: str) -> dict[str, str]:
    """Read back ``parameters`` text: ``prompt``, ``negative_prompt`` and the ``Key: value`` fields (as strings)."""
    lines = text.split("\n")
    last = lines[-1] if len(lines) > 1 else ""
    body = lines[:-1] if len(lines) > 1 else lines
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for line in body:
        if line.startswith("Negative prompt: "):
            in_negative = True
            line = line[len("Negative prompt: "):]
        (negative_lines if in_negative else prompt_lines).append(line)
    out = {"prompt": "\n".join(prompt_lines)}
    if in_negative:
        out["negative_prompt"] = "\n".join(negative_lines)
    for key, value in _FIELD.findall(last):
        value = value.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value[1:-1])
        out[key.strip()] = value
    return out
