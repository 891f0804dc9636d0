"""What each architecture needs next to its diffusion model, and which files fit which model.

The companion table follows the seed README's architecture table and sd.cpp's
own docs (``docs/*.md``): which VAE, which text encoders (``clip_l``, ``clip_g``,
``t5xxl``, ``llm``), and whether a ``clip_vision`` or ``llm_vision`` model is
used. Roles are named after sd.cpp's context parameters (``vae_path``,
``clip_l_path``, ``t5xxl_path``, ``llm_path``...).
"""

from __future__ import annotations

from dataclasses import dataclass

from sdrest.models import sdversion as V

__all__ = [
    "FAMILIES",
    "LLM_FAMILY_FOR",
    "ROLES",
    "TEXT_ENCODER_FITS",
    "VAE_FAMILIES",
    "Requirement",
    "family_of",
    "requirements",
]

ROLES = ("vae", "taesd", "clip_l", "clip_g", "t5xxl", "llm", "llm_vision", "clip_vision", "high_noise_diffusion_model")
"""Companion roles, named after stable-diffusion.cpp's context parameters (``<role>_path``)."""

FAMILIES: dict[str, tuple[str, ...]] = {
    V.SD1: (V.SD1, V.SD1_INPAINT, V.SD1_PIX2PIX, V.SD1_TINY_UNET, V.SDXS_512_DS),
    V.SD2: (V.SD2, V.SD2_INPAINT, V.SD2_TINY_UNET, V.SDXS_09),
    V.SDXL: (V.SDXL, V.SDXL_INPAINT, V.SDXL_PIX2PIX, V.SDXL_VEGA, V.SDXL_SSD1B),
    V.SVD: (V.SVD,),
    V.SD3: (V.SD3,),
    V.FLUX: (V.FLUX, V.FLUX_FILL, V.FLUX_CONTROLS, V.FLEX_2, V.CHROMA_RADIANCE),
    V.WAN2: (V.WAN2, V.WAN2_2_I2V, V.WAN2_2_TI2V),
    V.QWEN_IMAGE: (V.QWEN_IMAGE,),
    V.ANIMA: (V.ANIMA,),
    V.FLUX2: (V.FLUX2, V.FLUX2_KLEIN),
    V.Z_IMAGE: (V.Z_IMAGE,),
    V.OVIS_IMAGE: (V.OVIS_IMAGE,),
    V.ERNIE_IMAGE: (V.ERNIE_IMAGE,),
}
"""Base family (a version name) -> every sd.cpp version of that family: what a LoRA for it fits."""


def family_of(version: str) -> str:
    """The base family of an sd.cpp version name (``"SDXL (SSD1B)"`` -> ``"SDXL"``)."""
    for family, members in FAMILIES.items():
        if version in members:
            return family
    return version


# latent layout -> (label, versions it serves)
VAE_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "kl4": ("SD / SDXL", FAMILIES[V.SD1] + FAMILIES[V.SD2] + FAMILIES[V.SDXL] + (V.SVD,)),
    "kl16": (
        "Flux / SD3",
        (V.SD3, V.FLUX, V.FLUX_FILL, V.FLUX_CONTROLS, V.FLEX_2, V.Z_IMAGE, V.OVIS_IMAGE),
    ),
    "kl32": ("Flux.2", (V.FLUX2, V.FLUX2_KLEIN, V.ERNIE_IMAGE)),
    "wan16": ("Wan 2.1 / Qwen Image", (V.WAN2, V.WAN2_2_I2V, V.QWEN_IMAGE, V.ANIMA)),
    "wan48": ("Wan 2.2", (V.WAN2_2_TI2V,)),
}
"""VAE (and TAESD) latent layouts: a readable family label and the versions each fits."""

_CLIP_L_USERS = FAMILIES[V.SD1] + FAMILIES[V.SDXL] + (V.SD3, V.FLUX, V.FLUX_FILL, V.FLUX_CONTROLS, V.FLEX_2)

TEXT_ENCODER_FITS: dict[str, tuple[str, ...]] = {
    "clip_l": _CLIP_L_USERS,
    "clip_h": FAMILIES[V.SD2],
    "clip_g": FAMILIES[V.SDXL] + (V.SD3,),
    "t5xxl:t5": (V.SD3, V.FLUX, V.FLUX_FILL, V.FLUX_CONTROLS, V.FLEX_2, V.CHROMA_RADIANCE),
    "t5xxl:umt5": FAMILIES[V.WAN2],
    "llm:qwen2.5-vl": (V.QWEN_IMAGE,),
    "llm:qwen3": (V.Z_IMAGE, V.FLUX2_KLEIN, V.ANIMA, V.OVIS_IMAGE),
    "llm:mistral": (V.FLUX2, V.ERNIE_IMAGE),
    "llm_vision:qwen2.5-vl": (V.QWEN_IMAGE,),
    "clip_vision": FAMILIES[V.WAN2] + (V.SVD,),
}
"""``text_encoder_type[:variant]`` -> the versions that encoder serves."""

LLM_FAMILY_FOR: dict[str, str] = {
    V.QWEN_IMAGE: "qwen2.5-vl",
    V.Z_IMAGE: "qwen3",
    V.FLUX2_KLEIN: "qwen3",
    V.ANIMA: "qwen3",
    V.OVIS_IMAGE: "qwen3",
    V.FLUX2: "mistral",
    V.ERNIE_IMAGE: "mistral",
}
"""The LLM family sd.cpp builds for each version that takes an ``llm`` (``conditioner.hpp``)."""

LLM_HIDDEN_FOR: dict[str, tuple[int, ...]] = {
    V.QWEN_IMAGE: (3584,),
    V.Z_IMAGE: (2560,),
    V.FLUX2_KLEIN: (2560, 4096),
    V.ANIMA: (1024,),
    V.OVIS_IMAGE: (2048,),
    V.FLUX2: (5120,),
    V.ERNIE_IMAGE: (3072,),
}
"""Hidden sizes of the LLMs each version was released with (a preference, not a rule)."""


@dataclass(frozen=True, slots=True)
class Requirement:
    """One companion an architecture needs: its role, whether it is optional, what fits it."""

    role: str
    required: bool = True
    accepts: str = ""
    """``text_encoder_type[:variant]`` (or ``vae`` / ``taesd``) of a file that can fill the role."""


def requirements(version: str, *, chroma: bool = False, clip_vision: bool = False) -> tuple[Requirement, ...]:
    """The companions a model of this sd.cpp version needs (``chroma``: Flux without CLIP-L;
    ``clip_vision``: a Wan 2.1 image-to-video model, which has an ``img_emb``)."""
    vae = Requirement("vae", accepts="vae")
    if version in FAMILIES[V.SD1]:
        if version == V.SDXS_512_DS:
            return (Requirement("vae", accepts="taesd"), Requirement("clip_l", accepts="clip_l"))
        return (vae, Requirement("clip_l", accepts="clip_l"))
    if version in FAMILIES[V.SD2]:
        if version == V.SDXS_09:
            return (Requirement("vae", accepts="taesd"), Requirement("clip_l", accepts="clip_h"))
        return (vae, Requirement("clip_l", accepts="clip_h"))
    if version in FAMILIES[V.SDXL]:
        return (vae, Requirement("clip_l", accepts="clip_l"), Requirement("clip_g", accepts="clip_g"))
    if version == V.SVD:
        return (vae, Requirement("clip_vision", accepts="clip_vision"))
    if version == V.SD3:
        return (
            vae,
            Requirement("clip_l", accepts="clip_l"),
            Requirement("clip_g", accepts="clip_g"),
            Requirement("t5xxl", accepts="t5xxl:t5"),
        )
    if version == V.CHROMA_RADIANCE:
        return (Requirement("t5xxl", accepts="t5xxl:t5"),)
    if version == V.OVIS_IMAGE:
        return (vae, Requirement("llm", accepts="llm:qwen3"))
    if version in FAMILIES[V.FLUX]:
        if chroma:
            return (vae, Requirement("t5xxl", accepts="t5xxl:t5"))
        return (vae, Requirement("clip_l", accepts="clip_l"), Requirement("t5xxl", accepts="t5xxl:t5"))
    if version in FAMILIES[V.WAN2]:
        reqs = [vae, Requirement("t5xxl", accepts="t5xxl:umt5")]
        if clip_vision:
            reqs.append(Requirement("clip_vision", accepts="clip_vision"))
        if version in (V.WAN2, V.WAN2_2_I2V) and not clip_vision:
            reqs.append(Requirement("high_noise_diffusion_model", required=False, accepts="diffusion_model"))
        return tuple(reqs)
    if version == V.QWEN_IMAGE:
        return (
            vae,
            Requirement("llm", accepts="llm:qwen2.5-vl"),
            Requirement("llm_vision", required=False, accepts="llm_vision:qwen2.5-vl"),
        )
    if version in LLM_FAMILY_FOR:
        return (vae, Requirement("llm", accepts=f"llm:{LLM_FAMILY_FOR[version]}"))
    return ()
