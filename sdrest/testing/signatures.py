"""For every version stable-diffusion.cpp detects: a small set of tensors that makes it say so.

Shapes are outermost-first (PyTorch order). Each signature is a full checkpoint
(names with sd.cpp's prefixes); for DiT models :func:`bare` gives the standalone
form ComfyUI / city96 files use (no ``model.diffusion_model.``). With
:mod:`sdrest.testing.headers` they make header-only test files for detection.
"""

from __future__ import annotations

__all__ = ["DM", "SIGNATURES", "UNET_FAMILY", "bare", "gguf_shapes", "gguf_types"]

Shape = tuple[int, ...]
Specs = list[tuple[str, Shape]]

DM = "model.diffusion_model."
"""sd.cpp's diffusion-model tensor prefix."""
CLIP_L_TOKENS: tuple[str, Shape] = (
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
    (49408, 768),
)
OPENCLIP_H_TOKENS: tuple[str, Shape] = ("cond_stage_model.model.token_embedding.weight", (49408, 1024))
SDXL_TE: Specs = [
    ("conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight", (49408, 768)),
    ("conditioner.embedders.1.model.token_embedding.weight", (49408, 1280)),
]
VAE4: Specs = [
    ("first_stage_model.decoder.conv_in.weight", (512, 4, 3, 3)),
    ("first_stage_model.decoder.mid.block_1.conv1.weight", (512, 512, 3, 3)),
]


def _unet(in_channels: int, *, middle: bool = True, out71: bool = True, attn1024: bool = False) -> Specs:
    t: Specs = [
        (f"{DM}input_blocks.0.0.weight", (320, in_channels, 3, 3)),
        (f"{DM}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", (320, 768)),
    ]
    if middle:
        t.append((f"{DM}middle_block.1.proj_in.weight", (1280, 1280, 1, 1)))
    if out71:
        t.append((f"{DM}output_blocks.7.1.transformer_blocks.0.attn1.to_k.weight", (640, 1024 if attn1024 else 640)))
    t.append((f"{DM}out.2.weight", (4, 320, 3, 3)))
    return t


def _xl(in_channels: int, *, middle: bool = True, out311: bool = True) -> Specs:
    t: Specs = [
        (f"{DM}input_blocks.0.0.weight", (320, in_channels, 3, 3)),
        (f"{DM}input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", (640, 2048)),
    ]
    if middle:
        t.append((f"{DM}middle_block.1.proj_in.weight", (1280, 1280)))
    if out311:
        t.append((f"{DM}output_blocks.3.1.transformer_blocks.1.attn1.to_k.weight", (1280, 1280)))
    return t + SDXL_TE + VAE4


def _flux(img_in: int) -> Specs:
    return [
        (f"{DM}img_in.weight", (3072, img_in)),
        (f"{DM}double_blocks.0.img_attn.qkv.weight", (9216, 3072)),
        (f"{DM}single_blocks.0.linear1.weight", (21504, 3072)),
        (f"{DM}final_layer.linear.weight", (64, 3072)),
    ]


def _wan(dim: int, in_ch: int, *, img_emb: bool = False) -> Specs:
    t: Specs = [
        (f"{DM}patch_embedding.weight", (dim, in_ch, 1, 2, 2)),
        (f"{DM}blocks.0.cross_attn.norm_k.weight", (dim,)),
        (f"{DM}blocks.0.self_attn.q.weight", (dim, dim)),
    ]
    if img_emb:
        t.append((f"{DM}img_emb.proj.1.weight", (dim, 1280)))
    return t


SIGNATURES: dict[str, Specs] = {
    "SD 1.x": _unet(4) + [CLIP_L_TOKENS] + VAE4,
    "SD 1.x Inpaint": _unet(9) + [CLIP_L_TOKENS] + VAE4,
    "Instruct-Pix2Pix": _unet(8) + [CLIP_L_TOKENS] + VAE4,
    "SD 1.x Tiny UNet": _unet(4, middle=False) + [CLIP_L_TOKENS] + VAE4,
    "SD 2.x": _unet(4) + [OPENCLIP_H_TOKENS] + VAE4,
    "SD 2.x Inpaint": _unet(9) + [OPENCLIP_H_TOKENS] + VAE4,
    "SD 2.x Tiny UNet": _unet(4, middle=False) + [OPENCLIP_H_TOKENS] + VAE4,
    "SDXS (512-DS)": _unet(4, middle=False, out71=False) + [CLIP_L_TOKENS] + VAE4,
    "SDXS (09)": _unet(4, middle=False, attn1024=True) + [OPENCLIP_H_TOKENS] + VAE4,
    "SDXL": _xl(4),
    "SDXL Inpaint": _xl(9),
    "SDXL Instruct-Pix2Pix": _xl(8),
    "SDXL (Vega)": _xl(4, middle=False, out311=False),
    "SDXL (SSD1B)": _xl(4, middle=False),
    "SVD": _unet(8) + [(f"{DM}input_blocks.8.0.time_mixer.mix_factor", (1,))] + VAE4,
    "SD3.x": [
        (f"{DM}x_embedder.proj.weight", (1536, 16, 2, 2)),
        (f"{DM}joint_blocks.0.x_block.attn.qkv.weight", (4608, 1536)),
        (f"{DM}final_layer.linear.weight", (64, 1536)),
    ],
    "Flux": _flux(64),
    "Flux Fill": _flux(384),
    "Flux Control": _flux(128),
    "Flex.2": _flux(196),
    "Chroma Radiance": [
        (f"{DM}img_in_patch.weight", (3072, 3, 16, 16)),
        (f"{DM}double_blocks.0.img_attn.qkv.weight", (9216, 3072)),
        (f"{DM}nerf_final_layer_conv.conv.weight", (3, 64, 3, 3)),
    ],
    "Wan 2.x": _wan(1536, 16),
    "Wan 2.2 I2V": _wan(5120, 36),
    "Wan 2.2 TI2V": _wan(3072, 48),
    "Qwen Image": [
        (f"{DM}img_in.weight", (3072, 64)),
        (f"{DM}transformer_blocks.0.img_mod.1.weight", (18432, 3072)),
        (f"{DM}transformer_blocks.0.attn.to_q.weight", (3072, 3072)),
    ],
    "Anima": [
        (f"{DM}blocks.0.self_attn.q_proj.weight", (2048, 2048)),
        (f"{DM}llm_adapter.blocks.0.cross_attn.q_proj.weight", (1024, 1024)),
    ],
    "Flux.2": [
        (f"{DM}img_in.weight", (6144, 128)),
        (f"{DM}double_stream_modulation_img.lin.weight", (36864, 6144)),
        (f"{DM}double_blocks.0.img_attn.qkv.weight", (18432, 6144)),
        (f"{DM}single_blocks.47.linear1.weight", (55296, 6144)),
    ],
    "Flux.2 klein": [
        (f"{DM}img_in.weight", (3072, 128)),
        (f"{DM}double_stream_modulation_img.lin.weight", (18432, 3072)),
        (f"{DM}double_blocks.0.img_attn.qkv.weight", (9216, 3072)),
        (f"{DM}single_blocks.19.linear1.weight", (27648, 3072)),
    ],
    "Z-Image": [(f"{DM}cap_embedder.0.weight", (2560,)), (f"{DM}layers.0.attention.qkv.weight", (11520, 3840))],
    "Ovis Image": [
        (f"{DM}img_in.weight", (3072, 64)),
        (f"{DM}double_blocks.0.img_mlp.gate_proj.weight", (8192, 3072)),
        (f"{DM}double_blocks.0.img_attn.qkv.weight", (9216, 3072)),
    ],
    "Ernie Image": [
        (f"{DM}layers.0.adaLN_sa_ln.weight", (3072,)),
        (f"{DM}layers.0.self_attention.qkv.weight", (9216, 3072)),
    ],
}

UNET_FAMILY = frozenset(k for k in SIGNATURES if k.startswith(("SD 1", "SD 2", "SDX", "Instruct")) or k == "SVD")


def bare(specs: Specs) -> Specs:
    """The standalone-diffusion-model form: sd.cpp's ``model.diffusion_model.`` prefix removed."""
    return [(n[len(DM) :] if n.startswith(DM) else n, s) for n, s in specs]


def gguf_shapes(specs: Specs) -> Specs:
    """ggml has at most 4 dimensions: fold 5-D shapes the way converters (and sd.cpp) do."""
    out: Specs = []
    for name, shape in specs:
        if len(shape) == 5:
            shape = (shape[0] * shape[1], *shape[2:])
        out.append((name, shape))
    return out


def gguf_types(specs: Specs) -> list[tuple[str, Shape, str]]:
    """Typical GGUF typing: q8_0 for 2-D+ weights whose rows fit its blocks, f16 other weights, f32 vectors."""
    out: list[tuple[str, Shape, str]] = []
    for name, shape in specs:
        if len(shape) >= 2 and shape[-1] % 32 == 0:
            out.append((name, shape, "q8_0"))
        elif len(shape) >= 2:
            out.append((name, shape, "f16"))
        else:
            out.append((name, shape, "f32"))
    return out
