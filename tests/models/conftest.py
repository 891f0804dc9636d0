"""Fixtures for the model tests: a models dir in the seed's layout, made of header-only files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdrest.testing.signatures import SIGNATURES, bare, gguf_types
from sdrest.testing.headers import write_gguf, write_safetensors

CLIP_L = [
    ("text_model.embeddings.token_embedding.weight", (49408, 768)),
    ("text_model.encoder.layers.0.mlp.fc1.weight", (3072, 768)),
]
CLIP_G = [
    ("text_model.embeddings.token_embedding.weight", (49408, 1280)),
    ("text_model.encoder.layers.0.mlp.fc1.weight", (5120, 1280)),
]
T5 = [("shared.weight", (32128, 4096)), ("encoder.block.0.layer.0.SelfAttention.q.weight", (4096, 4096))]
UMT5 = [("token_embd.weight", (256384, 4096)), ("enc.blk.0.attn_q.weight", (4096, 4096))]
VAE16 = [("decoder.conv_in.weight", (512, 16, 3, 3)), ("decoder.mid.block_1.conv1.weight", (512, 512, 3, 3))]
VAE4 = [("decoder.conv_in.weight", (512, 4, 3, 3)), ("decoder.mid.block_1.conv1.weight", (512, 512, 3, 3))]
WAN_VAE = [("decoder.conv1.weight", (384, 16, 3, 3, 3)), ("decoder.head.2.weight", (3, 96, 3, 3, 3))]
LORA_SD1 = [
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", (4, 768)),
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", (320, 4)),
]


def qwen3(hidden: int) -> list:
    """A Qwen3 LLM text encoder of this hidden size."""
    return [
        ("model.embed_tokens.weight", (151936, hidden)),
        ("model.layers.0.self_attn.q_proj.weight", (hidden, hidden)),
        ("model.layers.0.self_attn.q_norm.weight", (128,)),
    ]


def build_models_dir(root: Path) -> Path:
    """A models dir with the seed's folders, a few flat files, templates, and one misplaced file."""

    def st(rel: str, specs: list) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_safetensors(root / rel, specs)

    def gg(rel: str, specs: list, **kw: object) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_gguf(root / rel, specs, **kw)  # type: ignore[arg-type]

    st("checkpoints/v1-5-pruned-emaonly.safetensors", SIGNATURES["SD 1.x"])
    st("checkpoints/sd_xl_base_1.0.safetensors", SIGNATURES["SDXL"])
    gg("diffusion_models/flux1-dev-q8_0.gguf", gguf_types(bare(SIGNATURES["Flux"])))
    st("diffusion_models/qwen-image.safetensors", bare(SIGNATURES["Qwen Image"]))
    gg("diffusion_models/z_image_turbo-q4_0.gguf", gguf_types(bare(SIGNATURES["Z-Image"])))
    st("vae/ae.safetensors", VAE16)
    st("vae/sdxl_vae.safetensors", VAE4)
    st("vae/qwen_image_vae.safetensors", WAN_VAE)
    st("lora/marblesh.safetensors", LORA_SD1)
    st("text_encoders/clip/clip_l.safetensors", CLIP_L)
    st("text_encoders/clip/clip_g.safetensors", CLIP_G)
    st("text_encoders/t5xxl/t5xxl_fp16.safetensors", T5)
    gg("text_encoders/t5xxl/umt5-xxl-encoder-Q8_0.gguf", UMT5, metadata={"general.architecture": "t5encoder"})
    st("text_encoders/llm/qwen_3_06b_base.safetensors", qwen3(1024))
    st("text_encoders/llm/qwen_3_4b.safetensors", qwen3(2560))
    st("vae/oops_a_lora.safetensors", LORA_SD1)  # misplaced: the header decides
    st("flat-flux-vae.safetensors", VAE16)  # flat, no folder hint
    (root / "presets").mkdir()
    (root / "presets" / "portrait.json").write_text('{"steps": 30, "cfg_scale": 6.5}')
    (root / "presets" / "fast.yaml").write_text("steps: 8\nsampler: euler\n")
    (root / "prompts").mkdir()
    (root / "prompts" / "cat.txt").write_text("a lovely cat")
    (root / "neg_prompts").mkdir()
    (root / "neg_prompts" / "default.txt").write_text("blurry, low quality")
    (root / "README.txt").write_text("not a model")
    return root


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A fresh models dir (see :func:`build_models_dir`)."""
    return build_models_dir(tmp_path / "models")
