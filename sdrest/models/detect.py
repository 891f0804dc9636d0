"""``detect(path) -> ModelInfo``: what a model file is, from its header alone.

The diffusion architecture is stable-diffusion.cpp's own verdict, reproduced in
pure Python (:mod:`sdrest.models.sdversion`) on the tensor map sd.cpp would
build: first as ``model_path`` (no prefix), then as ``diffusion_model_path``
(prefix ``model.diffusion_model.``). Other kinds come from
:mod:`sdrest.models.classify`. No tensor data is read, nothing is imported from
the file, and no native code is needed.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sdrest.models import sdversion as V
from sdrest.models.architectures import FAMILIES, Requirement, family_of, requirements
from sdrest.models.classify import (
    Classification,
    classify_adapter,
    classify_component,
    contained_roles,
    unet_family,
)
from sdrest.models.ggml_types import is_quantized
from sdrest.models.gguf import ArraySummary
from sdrest.models.reader import read_tensors
from sdrest.models.tensors import FormatError, TensorTable

__all__ = ["KINDS", "Companion", "ModelInfo", "detect", "detect_table"]

KINDS = (
    "checkpoint",
    "diffusion_model",
    "vae",
    "taesd",
    "lora",
    "controlnet",
    "esrgan",
    "embedding",
    "text_encoder",
    "photomaker",
    "unknown",
)
"""Every value of :attr:`ModelInfo.kind`."""


@dataclass(frozen=True, slots=True)
class Companion:
    """A file a model needs next to it: its role (sd.cpp's ``<role>_path``), what can fill it,
    whether it is required, and whether the model file already contains it."""

    role: str
    accepts: str
    required: bool
    contained: bool


@dataclass(slots=True)
class ModelInfo:
    """What a model file is, read from its header.

    ``architecture``: for diffusion models and checkpoints, sd.cpp's name for the version
    its loader detects (``"SDXL"``, ``"Flux"``, ``"Wan 2.2 I2V"``...; None where sd.cpp
    detects none); for LoRAs, ControlNets, embeddings, PhotoMaker: the base family they
    fit (a version name); for VAEs / TAESD: a latent-family label (``"Flux / SD3"``); for
    text encoders: the encoder (``"T5-XXL"``, ``"Qwen3"``). ``fits`` lists the sd.cpp
    versions the file works with. ``load_as`` is ``"model"`` (sd.cpp's ``model_path``) or
    ``"diffusion_model"`` (``diffusion_model_path``). ``quantization`` is the dominant
    stored type (ggml's names, or ``f8_e4m3`` / ``f8_e5m2`` for fp8 safetensors) and
    ``quantization_histogram`` the tensor count per type. ``error`` is set when the file
    could not be read; ``warnings`` lists what still deserves a look.
    """

    path: str
    format: str | None
    size: int
    kind: str = "unknown"
    architecture: str | None = None
    load_as: str | None = None
    quantization: str | None = None
    quantization_histogram: dict[str, int] = field(default_factory=dict)
    parameters: int = 0
    tensor_count: int = 0
    companions: list[Companion] = field(default_factory=list)
    text_encoder_type: str | None = None
    fits: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    header_bytes: int = 0
    bytes_read: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def missing_companions(self) -> list[str]:
        """Roles of required companions the file does not contain itself."""
        return [c.role for c in self.companions if c.required and not c.contained]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        d = asdict(self)
        d["metadata"] = _jsonable(self.metadata)
        d["details"] = _jsonable(self.details)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelInfo:
        """The inverse of :meth:`to_dict` (for caches)."""
        d = dict(d)
        d["companions"] = [Companion(**c) for c in d.get("companions", [])]
        return cls(**d)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, ArraySummary):
        return value.to_json()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def detect(path: str | os.PathLike[str]) -> ModelInfo:
    """Read the header of a model file (or diffusers folder) and tell what it is.

    Never raises for a bad file: a file that cannot be read gives ``kind="unknown"``
    with ``error`` saying why (without quoting the file: see :func:`read_error`). Raises :class:`FileNotFoundError` only when there is no
    such path.
    """
    p = Path(path)
    st = p.stat()  # FileNotFoundError for a missing path, as open() would
    size = st.st_size if not p.is_dir() else _folder_size(p)
    try:
        table = read_tensors(p)
    except (FormatError, OSError, RecursionError, MemoryError) as exc:
        return ModelInfo(path=str(p), format=None, size=size, error=read_error(exc))
    return detect_table(table, path=str(p), size=size)


def read_error(exc: BaseException) -> str:
    """Why a header could not be read, in words that never quote the file.

    The readers' :class:`FormatError` messages are written that way; an :class:`OSError` is
    reduced to its reason (its text would carry the path), the rest to what went wrong.
    """
    if isinstance(exc, FormatError):
        return str(exc) or "unreadable header"
    if isinstance(exc, OSError):
        return f"cannot read the file: {exc.strerror or type(exc).__name__}"
    if isinstance(exc, RecursionError):
        return "the header nests too deeply to read"
    if isinstance(exc, MemoryError):
        return "the header is too large to read"
    return type(exc).__name__


def _folder_size(p: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(p):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, f)).st_size
    return total


def _metadata(table: TensorTable) -> dict[str, Any]:
    if table.format != "gguf":
        return dict(table.metadata)
    return {k: v for k, v in table.metadata.items() if not k.startswith("tokenizer.")}


def _quantization(table: TensorTable) -> tuple[str | None, dict[str, int]]:
    hist: dict[str, int] = {}
    weight: dict[str, int] = {}
    for t in table:
        hist[t.dtype] = hist.get(t.dtype, 0) + 1
        if len(t.shape) >= 2:
            weight[t.dtype] = weight.get(t.dtype, 0) + t.n_elements
    pool = weight or {k: v for k, v in hist.items()}
    if not pool:
        return None, hist
    # the quantized type wins over the f32/f16 of the few tensors kept unquantized
    quant = {k: v for k, v in pool.items() if is_quantized(k)}
    src = quant or pool
    return max(sorted(src), key=lambda k: src[k]), dict(sorted(hist.items(), key=lambda kv: -kv[1]))


def detect_table(table: TensorTable, *, path: str = "", size: int = 0) -> ModelInfo:
    """:func:`detect` on a tensor table already read."""
    names = list(table.tensors)
    quant, hist = _quantization(table)
    info = ModelInfo(
        path=path,
        format=table.format,
        size=size,
        quantization=quant,
        quantization_histogram=hist,
        parameters=sum(t.n_elements for t in table),
        tensor_count=len(table),
        metadata=_metadata(table),
        header_bytes=table.header_size,
        bytes_read=table.bytes_read,
        warnings=list(table.warnings),
    )
    if table.problems:
        info.warnings.extend(f"sd.cpp will refuse this file: {p}" for p in table.problems[:5])
    if not names:
        info.error = "the file holds no tensors"
        return info

    adapter = classify_adapter(table)
    if adapter is not None:
        return _component(info, adapter)
    if any(n.startswith((V.DIFFUSION_PREFIX, "unet.")) for n in names):
        # names carry sd.cpp's prefix: it loads this as model_path
        return _diffusion(info, table, V.get_sd_version(V.sdcpp_tensors(table, "")), "model", names)
    renamed = V.renamed_diffusion_tensors(table)
    if renamed is not None:
        version = V.get_sd_version(renamed)
        if version is not None:
            # "diffusion_model." / "transformer." names: sd.cpp renames them to its own prefix on the
            # model_path route only (as diffusion_model_path they would become model.diffusion_model.diffusion_model.)
            info.warnings.append(
                "tensor names use a diffusion_model./transformer. prefix: load as model_path, "
                "sd.cpp renames them (as diffusion_model_path they would not be found)"
            )
            return _diffusion(info, table, version, "model", names)
    as_diffusion = V.get_sd_version(V.sdcpp_tensors(table, V.DIFFUSION_PREFIX))
    if as_diffusion is not None:
        return _diffusion(info, table, as_diffusion, "diffusion_model", names)
    component = classify_component(table)
    if component is not None:
        return _component(info, component)
    if _looks_like_unet(names):
        info.kind = "diffusion_model"
        info.load_as = "diffusion_model"
        fam = unet_family(table)
        info.details["family"] = fam
        info.warnings.append(
            "a UNet without text encoder: sd.cpp cannot detect its version on its own "
            f"({fam or 'unknown family'}); use a full checkpoint"
        )
        return info
    info.warnings.append("not a model kind sdrest knows")
    return info


def _looks_like_unet(names: list[str]) -> bool:
    """A UNet's own names (LDM or diffusers layout), without sd.cpp's prefixes."""
    ldm = any(n.startswith("input_blocks.") for n in names) and any(
        n.startswith(("middle_block.", "output_blocks.", "out.")) for n in names
    )
    diffusers = any(n.startswith("down_blocks.") for n in names) and any(
        n.startswith(("mid_block.", "up_blocks.")) for n in names
    )
    return ldm or diffusers


def _component(info: ModelInfo, c: Classification) -> ModelInfo:
    info.kind = c.kind
    info.architecture = c.architecture
    info.fits = list(c.fits)
    info.text_encoder_type = c.text_encoder_type
    info.details.update(c.details)
    info.warnings.extend(c.warnings)
    return info


def _diffusion(info: ModelInfo, table: TensorTable, version: str | None, load_as: str, names: list[str]) -> ModelInfo:
    roles = contained_roles(names)
    info.kind = "checkpoint" if roles & {"vae", "clip_l", "clip_g", "t5xxl", "llm"} else "diffusion_model"
    info.load_as = load_as
    info.architecture = version
    if version is None:
        fam = unet_family(table)
        info.details["family"] = fam
        info.warnings.append("sd.cpp does not recognise this model's version; it will not load")
        return info
    info.fits = [version]
    info.details["family"] = family_of(version)
    chroma = any("distilled_guidance_layer.in_proj.weight" in n for n in names)
    img_emb = any(".img_emb." in n or n.startswith("img_emb.") for n in names)
    if chroma:
        info.details["chroma"] = True
    reqs: tuple[Requirement, ...] = requirements(version, chroma=chroma, clip_vision=img_emb)
    info.companions = [Companion(r.role, r.accepts, r.required, r.role in roles) for r in reqs]
    if version in FAMILIES[V.WAN2]:
        desc = _wan_desc(table, img_emb)
        if desc:
            info.details["variant"] = desc
    return info


def _wan_desc(table: TensorTable, img_emb: bool) -> str | None:
    dim = None
    for name, t in table.tensors.items():
        if name.endswith("patch_embedding.weight") and t.shape:
            dim = t.shape[0]
            break
    size = {1536: "1.3B", 3072: "5B", 5120: "14B"}.get(dim or 0)
    if size is None:
        return None
    return f"{size} {'I2V/FLF2V' if img_emb else 'T2V/I2V'}"
