"""stable-diffusion.cpp's model version detection, ported line by line.

``get_sd_version`` is ``ModelLoader::get_sd_version`` (``src/model.cpp``): the same
tensor-name tests in the same order, on the same view of the tensors
(:func:`sdcpp_tensors` reproduces what ``ModelLoader::init_from_file(path, prefix)``
puts in its tensor map). ``VERSION_NAMES`` is ``model_version_to_str``
(``src/stable-diffusion.cpp``), in enum order; a test checks both against the
native build.
"""

from __future__ import annotations

from collections.abc import Iterable

from sdrest.models.tensors import TensorInfo, TensorTable

__all__ = [
    "DIFFUSION_PREFIX",
    "VERSION_NAMES",
    "get_sd_version",
    "is_dit",
    "is_flux",
    "is_flux2",
    "is_inpaint",
    "is_sd1",
    "is_sd2",
    "is_sdxl",
    "is_unet",
    "is_unused_tensor",
    "is_wan",
    "renamed_diffusion_tensors",
    "sdcpp_tensors",
]

VERSION_NAMES: tuple[str, ...] = (
    "SD 1.x",
    "SD 1.x Inpaint",
    "Instruct-Pix2Pix",
    "SD 1.x Tiny UNet",
    "SD 2.x",
    "SD 2.x Inpaint",
    "SD 2.x Tiny UNet",
    "SDXS (512-DS)",
    "SDXS (09)",
    "SDXL",
    "SDXL Inpaint",
    "SDXL Instruct-Pix2Pix",
    "SDXL (Vega)",
    "SDXL (SSD1B)",
    "SVD",
    "SD3.x",
    "Flux",
    "Flux Fill",
    "Flux Control",
    "Flex.2",
    "Chroma Radiance",
    "Wan 2.x",
    "Wan 2.2 I2V",
    "Wan 2.2 TI2V",
    "Qwen Image",
    "Anima",
    "Flux.2",
    "Flux.2 klein",
    "Z-Image",
    "Ovis Image",
    "Ernie Image",
)
"""sd.cpp's ``model_version_to_str``, indexed by its ``SDVersion`` enum."""

(
    SD1,
    SD1_INPAINT,
    SD1_PIX2PIX,
    SD1_TINY_UNET,
    SD2,
    SD2_INPAINT,
    SD2_TINY_UNET,
    SDXS_512_DS,
    SDXS_09,
    SDXL,
    SDXL_INPAINT,
    SDXL_PIX2PIX,
    SDXL_VEGA,
    SDXL_SSD1B,
    SVD,
    SD3,
    FLUX,
    FLUX_FILL,
    FLUX_CONTROLS,
    FLEX_2,
    CHROMA_RADIANCE,
    WAN2,
    WAN2_2_I2V,
    WAN2_2_TI2V,
    QWEN_IMAGE,
    ANIMA,
    FLUX2,
    FLUX2_KLEIN,
    Z_IMAGE,
    OVIS_IMAGE,
    ERNIE_IMAGE,
) = VERSION_NAMES

DIFFUSION_PREFIX = "model.diffusion_model."
"""The prefix sd.cpp puts before a ``diffusion_model_path`` file's tensor names."""

_UNUSED_TENSORS = (
    "betas",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
    "cond_stage_model.transformer.text_model.embeddings.position_ids",
    "cond_stage_model.1.model.text_model.embeddings.position_ids",
    "cond_stage_model.transformer.vision_model.embeddings.position_ids",
    "cond_stage_model.model.logit_scale",
    "conditioner.embedders.0.transformer.text_model.embeddings.position_ids",
    "conditioner.embedders.0.model.logit_scale",
    "conditioner.embedders.1.model.logit_scale",
    "model.diffusion_model.time_embedding.cond_proj.weight",
    "unet.time_embedding.cond_proj.weight",
    "model_ema.decay",
    "model_ema.num_updates",
    "model_ema.diffusion_model",
    "embedding_manager",
    "denoiser.sigmas",
    "text_encoders.t5xxl.transformer.encoder.embed_tokens.weight",
    "ztsnr",
    "edm_vpred.sigma_min",
    "text_encoders.llm.output.weight",
    "text_encoders.llm.lm_head.",
    "first_stage_model.bn.",
)


def is_unused_tensor(name: str) -> bool:
    """sd.cpp's ``is_unused_tensor``: tensors its safetensors and legacy readers drop."""
    return name.startswith(_UNUSED_TENSORS)


def sdcpp_tensors(table: TensorTable, prefix: str = "") -> dict[str, TensorInfo]:
    """The tensor map ``ModelLoader::init_from_file(path, prefix)`` builds: names, order, filters.

    safetensors and legacy torch files drop sd.cpp's unused tensors (and safetensors its
    ``U8`` ones); every name that does not start with ``prefix`` gets it; a diffusers folder
    ignores ``prefix`` (its parts get fixed prefixes when read).
    """
    out: dict[str, TensorInfo] = {}
    filtered = table.format in ("safetensors", "torch_legacy")
    if table.format == "diffusers":
        prefix = ""
    for name, info in table.tensors.items():
        if name in table.sdcpp_skipped:
            continue
        if filtered and is_unused_tensor(name):
            continue
        key = name if name.startswith(prefix) else prefix + name
        out[key] = info
    return out


_RENAMED_PREFIXES = ("diffusion_model.", "transformer.")


def renamed_diffusion_tensors(table: TensorTable) -> dict[str, TensorInfo] | None:
    """The model_path tensor map after sd.cpp's prefix renaming, for files whose diffusion tensors
    are named ``diffusion_model.*`` or ``transformer.*``; None for any other file.

    ``convert_tensor_name`` maps these prefixes to ``model.diffusion_model.`` (its ``prefix_map``,
    applied whatever the version) before the loader's final ``get_sd_version``.
    """
    view = sdcpp_tensors(table, "")
    if not any(n.startswith(_RENAMED_PREFIXES) for n in view):
        return None
    out: dict[str, TensorInfo] = {}
    for name, info in view.items():
        for p in _RENAMED_PREFIXES:
            if name.startswith(p):
                name = DIFFUSION_PREFIX + name[len(p) :]
                break
        out[name] = info
    return out


def get_sd_version(tensors: Iterable[tuple[str, TensorInfo]] | dict[str, TensorInfo]) -> str | None:
    """The version sd.cpp detects for this tensor map (its name for it), or None.

    ``tensors`` is (name, tensor) in sd.cpp's order, e.g. ``sdcpp_tensors(table, prefix)``.
    """
    items = tensors.items() if isinstance(tensors, dict) else tensors
    token_embedding_ne: tuple[int, ...] = (1, 1, 1, 1, 1)
    input_block_ne: tuple[int, ...] = (1, 1, 1, 1, 1)
    has_multiple_encoders = False
    is_unet_ = False
    is_xl = False
    is_flux_ = False
    is_flux2_ = False
    has_single_block_47 = False
    is_wan_ = False
    patch_embedding_channels = 0
    has_img_emb = False
    has_middle_block_1 = False
    has_output_block_311 = False
    has_output_block_71 = False
    has_attn_1024 = False

    for name, t in items:
        if "model.diffusion_model.double_blocks." in name:
            is_flux_ = True
        if "model.diffusion_model.nerf_final_layer_conv." in name:
            return CHROMA_RADIANCE
        if "model.diffusion_model.joint_blocks." in name:
            return SD3
        if "model.diffusion_model.transformer_blocks.0.img_mod.1.weight" in name:
            return QWEN_IMAGE
        if "llm_adapter.blocks.0.cross_attn.q_proj.weight" in name:
            return ANIMA
        if "model.diffusion_model.double_stream_modulation_img.lin.weight" in name:
            is_flux2_ = True
        if "single_blocks.47.linear1.weight" in name:
            has_single_block_47 = True
        if "model.diffusion_model.double_blocks.0.img_mlp.gate_proj.weight" in name:
            return OVIS_IMAGE
        if "model.diffusion_model.cap_embedder.0.weight" in name:
            return Z_IMAGE
        if "model.diffusion_model.layers.0.adaLN_sa_ln.weight" in name:
            return ERNIE_IMAGE
        if "model.diffusion_model.blocks.0.cross_attn.norm_k.weight" in name:
            is_wan_ = True
        if "model.diffusion_model.patch_embedding.weight" in name:
            patch_embedding_channels = t.ne[3]
        if "model.diffusion_model.img_emb" in name:
            has_img_emb = True
        if "model.diffusion_model.input_blocks." in name or "unet.down_blocks." in name:
            is_unet_ = True
            if has_multiple_encoders:
                is_xl = True
        if "conditioner.embedders.1" in name or "cond_stage_model.1" in name or "te.1" in name:
            has_multiple_encoders = True
            if is_unet_:
                is_xl = True
        if "model.diffusion_model.input_blocks.8.0.time_mixer.mix_factor" in name:
            return SVD
        if "model.diffusion_model.middle_block.1." in name or "unet.mid_block.resnets.1." in name:
            has_middle_block_1 = True
        if (
            "model.diffusion_model.output_blocks.3.1.transformer_blocks.1" in name
            or "unet.up_blocks.1.attentions.0.transformer_blocks.1" in name
        ):
            has_output_block_311 = True
        if "model.diffusion_model.output_blocks.7.1" in name or "unet.up_blocks.2.attentions.1" in name:
            has_output_block_71 = True
            if "model.diffusion_model.output_blocks.7.1.transformer_blocks.0.attn1.to_k.weight" in name:
                if t.ne[0] == 1024:
                    has_attn_1024 = True
        if name in _TOKEN_EMBEDDING_NAMES:
            token_embedding_ne = t.ne
        if name in _INPUT_BLOCK_NAMES:
            input_block_ne = t.ne

    if is_wan_:
        if patch_embedding_channels == 184320 and not has_img_emb:
            return WAN2_2_I2V
        if patch_embedding_channels == 147456 and not has_img_emb:
            return WAN2_2_TI2V
        return WAN2
    is_inpaint_ = input_block_ne[2] == 9
    is_ip2p = input_block_ne[2] == 8
    if is_xl:
        if is_inpaint_:
            return SDXL_INPAINT
        if is_ip2p:
            return SDXL_PIX2PIX
        if not has_middle_block_1:
            if not has_output_block_311:
                return SDXL_VEGA
            return SDXL_SSD1B
        return SDXL
    if is_flux_ and not is_flux2_:
        if input_block_ne[0] == 384:
            return FLUX_FILL
        if input_block_ne[0] == 128:
            return FLUX_CONTROLS
        if input_block_ne[0] == 196:
            return FLEX_2
        return FLUX
    if is_flux2_:
        return FLUX2 if has_single_block_47 else FLUX2_KLEIN
    if token_embedding_ne[0] == 768:
        if is_inpaint_:
            return SD1_INPAINT
        if is_ip2p:
            return SD1_PIX2PIX
        if not has_middle_block_1:
            if not has_output_block_71:
                return SDXS_512_DS
            return SD1_TINY_UNET
        return SD1
    if token_embedding_ne[0] == 1024:
        if is_inpaint_:
            return SD2_INPAINT
        if not has_middle_block_1:
            return SDXS_09 if has_attn_1024 else SD2_TINY_UNET
        return SD2
    return None


_TOKEN_EMBEDDING_NAMES = frozenset(
    {
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
        "cond_stage_model.model.token_embedding.weight",
        "text_model.embeddings.token_embedding.weight",
        "te.text_model.embeddings.token_embedding.weight",
        "conditioner.embedders.0.model.token_embedding.weight",
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
    }
)
_INPUT_BLOCK_NAMES = frozenset(
    {
        "model.diffusion_model.input_blocks.0.0.weight",
        "model.diffusion_model.img_in.weight",
        "unet.conv_in.weight",
    }
)


def is_sd1(v: str | None) -> bool:
    """sd.cpp's ``sd_version_is_sd1``."""
    return v in (SD1, SD1_INPAINT, SD1_PIX2PIX, SD1_TINY_UNET, SDXS_512_DS)


def is_sd2(v: str | None) -> bool:
    """sd.cpp's ``sd_version_is_sd2``."""
    return v in (SD2, SD2_INPAINT, SD2_TINY_UNET, SDXS_09)


def is_sdxl(v: str | None) -> bool:
    """sd.cpp's ``sd_version_is_sdxl``."""
    return v in (SDXL, SDXL_INPAINT, SDXL_PIX2PIX, SDXL_SSD1B, SDXL_VEGA)


def is_unet(v: str | None) -> bool:
    """sd.cpp's ``sd_version_is_unet``: SD 1.x, SD 2.x and SDXL variants."""
    return is_sd1(v) or is_sd2(v) or is_sdxl(v)


def is_flux(v: str | None) -> bool:
    """sd.cpp's ``sd_version_is_flux``."""
    return v in (FLUX, FLUX_FILL, FLUX_CONTROLS, FLEX_2, OVIS_IMAGE, CHROMA_RADIANCE)


def is_flux2(v: str | None) -> bool:
    """sd.cpp's ``sd_version_is_flux2``."""
    return v in (FLUX2, FLUX2_KLEIN)


def is_wan(v: str | None) -> bool:
    """sd.cpp's ``sd_version_is_wan``."""
    return v in (WAN2, WAN2_2_I2V, WAN2_2_TI2V)


def is_dit(v: str | None) -> bool:
    """sd.cpp's ``sd_version_is_dit``: every transformer (non-UNet) architecture."""
    return is_flux(v) or is_flux2(v) or is_wan(v) or v in (SD3, QWEN_IMAGE, ANIMA, Z_IMAGE, ERNIE_IMAGE)


def is_inpaint(v: str | None) -> bool:
    """sd.cpp's ``sd_version_is_inpaint``."""
    return v in (SD1_INPAINT, SD2_INPAINT, SDXL_INPAINT, FLUX_FILL, FLEX_2)
