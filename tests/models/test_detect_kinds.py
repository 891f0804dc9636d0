"""detect() on every non-diffusion kind, and what it says about checkpoints besides the version.

Each file here is also checked against sd.cpp's version detection (the native
oracle): a LoRA, VAE or text encoder must not be taken for a diffusion model by
our port where sd.cpp would not, nor the reverse.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sdrest import _native
from sdrest.models import ModelInfo, detect
from sdrest.models import sdversion as V
from sdrest.models.reader import read_tensors
from sdrest.testing.signatures import DM, SIGNATURES, bare, gguf_shapes, gguf_types
from sdrest.testing.headers import write_gguf, write_safetensors, write_torch_zip


def _parity(path: Path) -> None:
    table = read_tensors(path)
    for prefix in ("", DM):
        assert V.get_sd_version(V.sdcpp_tensors(table, prefix)) == _native.detect_model_version(str(path), prefix)


def _detect(tmp_path: Path, specs: list, *, fmt: str = "safetensors", **kw: object) -> ModelInfo:
    path = tmp_path / f"m.{fmt}"
    if fmt == "gguf":
        write_gguf(path, specs, **kw)  # type: ignore[arg-type]
    elif fmt == "ckpt":
        write_torch_zip(path, specs, **kw)  # type: ignore[arg-type]
    else:
        write_safetensors(path, specs, **kw)  # type: ignore[arg-type]
    info = detect(path)
    assert info.error is None, info.error
    _parity(path)
    return info


def _lora(names: list[str], rank: int = 4, width: int = 768) -> list:
    out = []
    for n in names:
        out += [(f"{n}.lora_down.weight", (rank, width)), (f"{n}.lora_up.weight", (width, rank)), (f"{n}.alpha", ())]
    return out


LORAS = {
    "sd1-kohya": (
        _lora(
            [
                "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k",
                "lora_te_text_model_encoder_layers_0_mlp_fc1",
            ]
        ),
        "SD 1.x",
    ),
    "sdxl-kohya": (
        _lora(["lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"], width=2048)
        + _lora(["lora_te2_text_model_encoder_layers_0_mlp_fc1"], width=1280),
        "SDXL",
    ),
    "sd2": (_lora(["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"], width=1024), "SD 2.x"),
    "flux-kohya": (
        _lora(["lora_unet_double_blocks_0_img_attn_proj", "lora_unet_single_blocks_3_linear1"], width=3072),
        "Flux",
    ),
    "flux-diffusers": (
        [
            ("transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight", (16, 3072)),
            ("transformer.single_transformer_blocks.0.attn.to_q.lora_B.weight", (3072, 16)),
        ],
        "Flux",
    ),
    "flux-comfy": (
        [
            ("diffusion_model.double_blocks.0.img_attn.proj.lora_A.weight", (16, 3072)),
            ("diffusion_model.double_blocks.0.img_attn.proj.lora_B.weight", (3072, 16)),
        ],
        "Flux",
    ),
    "sd3": (_lora(["transformer.joint_blocks.0.x_block.attn.qkv"], width=1536), "SD3.x"),
    "wan": (
        [
            ("diffusion_model.blocks.0.cross_attn.q.lora_A.weight", (32, 5120)),
            ("diffusion_model.blocks.0.cross_attn.q.lora_B.weight", (5120, 32)),
        ],
        "Wan 2.x",
    ),
    "qwen": (
        [
            ("transformer_blocks.0.img_mlp.net.0.proj.lora_A.weight", (16, 3072)),
            ("transformer_blocks.0.img_mlp.net.0.proj.lora_B.weight", (12288, 16)),
        ],
        "Qwen Image",
    ),
}


@pytest.mark.parametrize("case", list(LORAS))
def test_lora_family(tmp_path: Path, case: str) -> None:
    specs, family = LORAS[case]
    info = _detect(tmp_path, specs)
    assert info.kind == "lora"
    assert info.architecture == family
    assert family in info.fits
    assert info.load_as is None


def test_lora_rank(tmp_path: Path) -> None:
    info = _detect(tmp_path, LORAS["sd1-kohya"][0])
    assert info.details["rank"] == 4


@pytest.mark.parametrize(("width", "family"), [(768, "SD 1.x"), (1024, "SD 2.x"), (2048, "SDXL")])
@pytest.mark.parametrize("prefix", ["control_model.", ""])
def test_controlnet(tmp_path: Path, width: int, family: str, prefix: str) -> None:
    specs = [
        (f"{prefix}input_hint_block.0.weight", (16, 3, 3, 3)),
        (f"{prefix}zero_convs.0.0.weight", (320, 320, 1, 1)),
        (f"{prefix}input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", (640, width)),
        (f"{prefix}middle_block_out.0.weight", (1280, 1280, 1, 1)),
    ]
    info = _detect(tmp_path, specs)
    assert (info.kind, info.architecture) == ("controlnet", family)


VAES = {
    "sd": (
        [
            ("decoder.conv_in.weight", (512, 4, 3, 3)),
            ("decoder.up.0.block.0.conv1.weight", (128, 256, 3, 3)),
            ("encoder.conv_out.weight", (8, 512, 3, 3)),
        ],
        "SD / SDXL",
        "SDXL",
    ),
    "sd-in-ckpt-names": (
        [
            ("first_stage_model.decoder.conv_in.weight", (512, 4, 3, 3)),
            ("first_stage_model.decoder.mid.block_1.conv1.weight", (512, 512, 3, 3)),
        ],
        "SD / SDXL",
        "SD 1.x",
    ),
    "flux": (
        [("decoder.conv_in.weight", (512, 16, 3, 3)), ("decoder.mid.block_1.conv1.weight", (512, 512, 3, 3))],
        "Flux / SD3",
        "Flux",
    ),
    "flux2": (
        [("decoder.conv_in.weight", (512, 32, 3, 3)), ("decoder.mid.block_1.conv1.weight", (512, 512, 3, 3))],
        "Flux.2",
        "Flux.2",
    ),
    "diffusers": (
        [("decoder.conv_in.weight", (512, 4, 3, 3)), ("decoder.up_blocks.0.resnets.0.conv1.weight", (512, 512, 3, 3))],
        "SD / SDXL",
        "SD 2.x",
    ),
    "wan21": (
        [
            ("decoder.conv1.weight", (384, 16, 3, 3, 3)),
            ("decoder.head.2.weight", (3, 96, 3, 3, 3)),
            ("encoder.conv1.weight", (96, 3, 3, 3, 3)),
        ],
        "Wan 2.1 / Qwen Image",
        "Qwen Image",
    ),
    "wan22": (
        [("decoder.conv1.weight", (1024, 48, 3, 3, 3)), ("decoder.head.2.weight", (12, 256, 3, 3, 3))],
        "Wan 2.2",
        "Wan 2.2 TI2V",
    ),
}


@pytest.mark.parametrize("case", list(VAES))
def test_vae_family(tmp_path: Path, case: str) -> None:
    specs, label, fits = VAES[case]
    info = _detect(tmp_path, specs)
    assert (info.kind, info.architecture) == ("vae", label)
    assert fits in info.fits


@pytest.mark.parametrize(("z", "label"), [(4, "SD / SDXL"), (16, "Flux / SD3")])
def test_taesd(tmp_path: Path, z: int, label: str) -> None:
    specs = [
        ("decoder.layers.1.weight", (64, z, 3, 3)),
        ("decoder.layers.3.conv.0.weight", (64, 64, 3, 3)),
        ("encoder.layers.0.weight", (64, 3, 3, 3)),
        ("encoder.layers.14.weight", (z, 64, 3, 3)),
    ]
    info = _detect(tmp_path, specs)
    assert (info.kind, info.architecture) == ("taesd", label)


def test_tiny_video_autoencoder(tmp_path: Path) -> None:
    specs = [
        ("decoder.1.weight", (256, 16, 3, 3)),
        ("decoder.3.conv.0.weight", (256, 512, 3, 3)),
        ("encoder.0.weight", (64, 3, 3, 3)),
    ]
    info = _detect(tmp_path, specs)
    assert (info.kind, info.architecture) == ("taesd", "Wan 2.1 / Qwen Image")


def test_esrgan_old_layout(tmp_path: Path) -> None:
    specs = [("model.0.weight", (64, 3, 3, 3))]
    specs += [(f"model.1.sub.{i}.RDB1.conv1.0.weight", (32, 64, 3, 3)) for i in range(6)]
    specs += [
        ("model.1.sub.6.weight", (64, 64, 3, 3)),
        ("model.3.weight", (64, 64, 3, 3)),
        ("model.6.weight", (64, 64, 3, 3)),
        ("model.10.weight", (3, 64, 3, 3)),
    ]
    info = _detect(tmp_path, specs, fmt="ckpt")
    assert (info.kind, info.architecture) == ("esrgan", "ESRGAN")
    assert info.details["scale"] == 4 and info.details["blocks"] == 6


@pytest.mark.parametrize(
    ("ups", "scale"), [(("conv_up1.weight", "conv_up2.weight"), 4), (("conv_up1.weight",), 2), ((), 1)]
)
def test_real_esrgan_layout(tmp_path: Path, ups: tuple[str, ...], scale: int) -> None:
    specs = [
        ("conv_first.weight", (64, 3, 3, 3)),
        ("body.0.rdb1.conv1.weight", (32, 64, 3, 3)),
        ("body.22.rdb1.conv1.weight", (32, 64, 3, 3)),
        ("conv_last.weight", (3, 64, 3, 3)),
    ]
    specs += [(u, (64, 64, 3, 3)) for u in ups]
    info = _detect(tmp_path, specs, fmt="ckpt", wrap="params_ema")
    assert (info.kind, info.details["scale"], info.details["blocks"]) == ("esrgan", scale, 23)


@pytest.mark.parametrize(
    ("specs", "family"),
    [
        ([("emb_params", (8, 768))], "SD 1.x"),
        ([("emb_params", (2, 1024))], "SD 2.x"),
        ([("clip_l", (4, 768)), ("clip_g", (4, 1280))], "SDXL"),
    ],
)
def test_embedding(tmp_path: Path, specs: list, family: str) -> None:
    info = _detect(tmp_path, specs)
    assert (info.kind, info.architecture) == ("embedding", family)


def test_a1111_embedding_pt(tmp_path: Path) -> None:
    info = _detect(tmp_path, [("*", (3, 768))], fmt="ckpt", wrap="string_to_param")
    assert (info.kind, info.architecture, info.details["vectors"]) == ("embedding", "SD 1.x", 3)


TEXT_ENCODERS = {
    "clip_l": (
        [
            ("text_model.embeddings.token_embedding.weight", (49408, 768)),
            ("text_model.encoder.layers.0.mlp.fc1.weight", (3072, 768)),
        ],
        {},
        "clip_l",
        None,
        "Flux",
    ),
    "clip_g": (
        [
            ("text_model.embeddings.token_embedding.weight", (49408, 1280)),
            ("text_model.encoder.layers.0.mlp.fc1.weight", (5120, 1280)),
        ],
        {},
        "clip_g",
        None,
        "SDXL",
    ),
    "t5xxl": (
        [("shared.weight", (32128, 4096)), ("encoder.block.0.layer.0.SelfAttention.q.weight", (4096, 4096))],
        {},
        "t5xxl",
        "t5",
        "SD3.x",
    ),
    "umt5-gguf": (
        [("token_embd.weight", (256384, 4096)), ("enc.blk.0.attn_q.weight", (4096, 4096))],
        {"general.architecture": "t5encoder"},
        "t5xxl",
        "umt5",
        "Wan 2.2 I2V",
    ),
    "qwen25vl-gguf": (
        [("token_embd.weight", (152064, 3584)), ("blk.0.attn_q.weight", (3584, 3584)), ("blk.0.attn_q.bias", (3584,))],
        {"general.architecture": "qwen2vl"},
        "llm",
        "qwen2.5-vl",
        "Qwen Image",
    ),
    "qwen3": (
        [
            ("model.embed_tokens.weight", (151936, 2560)),
            ("model.layers.0.self_attn.q_proj.weight", (4096, 2560)),
            ("model.layers.0.self_attn.q_norm.weight", (128,)),
        ],
        {},
        "llm",
        "qwen3",
        "Z-Image",
    ),
    "mistral": (
        [("model.embed_tokens.weight", (131072, 5120)), ("model.layers.0.self_attn.q_proj.weight", (4096, 5120))],
        {},
        "llm",
        "mistral",
        "Flux.2",
    ),
    "mmproj": (
        [("v.blk.0.attn_q.weight", (1280, 1280)), ("mm.0.weight", (5120, 5120))],
        {"general.architecture": "clip"},
        "llm_vision",
        "qwen2.5-vl",
        "Qwen Image",
    ),
    "clip_vision_h": (
        [
            ("vision_model.embeddings.patch_embedding.weight", (1280, 3, 14, 14)),
            ("vision_model.encoder.layers.0.mlp.fc1.weight", (5120, 1280)),
        ],
        {},
        "clip_vision",
        None,
        "Wan 2.x",
    ),
}


@pytest.mark.parametrize("case", list(TEXT_ENCODERS))
def test_text_encoder(tmp_path: Path, case: str) -> None:
    specs, meta, te_type, variant, fits = TEXT_ENCODERS[case]
    fmt = "gguf" if meta else "safetensors"
    info = _detect(tmp_path, specs, fmt=fmt, metadata=meta or None)
    assert info.kind == "text_encoder"
    assert info.text_encoder_type == te_type
    assert info.details.get("variant") == variant
    assert fits in info.fits


def test_bare_clip_l_is_a_text_encoder_although_sdcpp_says_sd1(tmp_path: Path) -> None:
    """sd.cpp's detection sees a bare CLIP-L's token embedding and names an SD 1.x version: not a model."""
    path = tmp_path / "clip_l.safetensors"
    write_safetensors(path, TEXT_ENCODERS["clip_l"][0])
    assert _native.detect_model_version(str(path), "") == "SDXS (512-DS)"
    info = detect(path)
    assert info.kind == "text_encoder" and info.load_as is None


@pytest.mark.parametrize(
    ("names", "version"),
    [(["id_encoder.fuse_module.mlp1.fc1.weight"], 1), (["id_encoder.qformer_perceiver.token_proj.0.weight"], 2)],
)
def test_photomaker(tmp_path: Path, names: list[str], version: int) -> None:
    specs = [(n, (64, 64)) for n in names] + [("lora_weights.down_blocks.0.lora.down.weight", (64, 64))]
    info = _detect(tmp_path, specs)
    assert (info.kind, info.architecture, info.details["version"]) == ("photomaker", "SDXL", version)


# --- checkpoints: companions, contents, quantization ------------------------------------------


def _roles(info: ModelInfo) -> dict[str, tuple[bool, bool]]:
    return {c.role: (c.required, c.contained) for c in info.companions}


def test_sd1_checkpoint_contains_everything(tmp_path: Path) -> None:
    info = _detect(tmp_path, SIGNATURES["SD 1.x"])
    assert info.kind == "checkpoint"
    assert _roles(info) == {"vae": (True, True), "clip_l": (True, True)}
    assert info.missing_companions == []


def test_flux_needs_vae_clip_l_t5(tmp_path: Path) -> None:
    info = _detect(tmp_path, gguf_types(bare(SIGNATURES["Flux"])), fmt="gguf")
    assert info.missing_companions == ["vae", "clip_l", "t5xxl"]
    assert info.quantization == "q8_0"
    assert info.quantization_histogram == {"q8_0": 4}


def test_chroma_needs_no_clip_l(tmp_path: Path) -> None:
    specs = bare(SIGNATURES["Flux"]) + [("distilled_guidance_layer.in_proj.weight", (5120, 64))]
    info = _detect(tmp_path, specs)
    assert info.architecture == "Flux" and info.details["chroma"] is True
    assert info.missing_companions == ["vae", "t5xxl"]


def test_sd3_with_included_text_encoders(tmp_path: Path) -> None:
    specs = SIGNATURES["SD3.x"] + [
        ("text_encoders.clip_l.transformer.text_model.embeddings.token_embedding.weight", (49408, 768)),
        ("text_encoders.clip_g.transformer.text_model.embeddings.token_embedding.weight", (49408, 1280)),
        ("text_encoders.t5xxl.transformer.shared.weight", (32128, 4096)),
        ("first_stage_model.decoder.conv_in.weight", (512, 16, 3, 3)),
    ]
    info = _detect(tmp_path, specs)
    assert info.kind == "checkpoint"
    assert info.missing_companions == []


def test_wan21_i2v_needs_clip_vision(tmp_path: Path) -> None:
    specs = bare(SIGNATURES["Wan 2.2 I2V"]) + [("img_emb.proj.1.weight", (5120, 1280))]
    info = _detect(tmp_path, specs)
    assert info.architecture == "Wan 2.x"  # img_emb: sd.cpp's I2V 2.2 check says no
    assert info.missing_companions == ["vae", "t5xxl", "clip_vision"]


def test_qwen_image_llm_vision_is_optional(tmp_path: Path) -> None:
    info = _detect(tmp_path, bare(SIGNATURES["Qwen Image"]))
    assert _roles(info) == {"vae": (True, False), "llm": (True, False), "llm_vision": (False, False)}


def test_quantization_is_dominant_weight_type(tmp_path: Path) -> None:
    specs = [
        ("double_blocks.0.img_attn.qkv.weight", (9216, 3072), "q4_K"),
        ("double_blocks.0.img_attn.norm.query_norm.scale", (128,), "f32"),
        ("double_blocks.0.img_attn.proj.bias", (3072,), "f32"),
        ("img_in.weight", (3072, 64), "f16"),
        ("final_layer.linear.weight", (64, 3072), "bf16"),
    ]
    info = _detect(tmp_path, specs, fmt="gguf")
    assert info.quantization == "q4_K"
    assert info.quantization_histogram == {"f32": 2, "q4_K": 1, "f16": 1, "bf16": 1}
    assert info.parameters == 9216 * 3072 + 128 + 3072 + 3072 * 64 + 64 * 3072


def test_fp8_safetensors(tmp_path: Path) -> None:
    specs = [(n, s, "f8_e4m3") for n, s in bare(SIGNATURES["Flux"])]
    info = _detect(tmp_path, specs)
    assert info.quantization == "f8_e4m3"


def test_metadata_is_reported(tmp_path: Path) -> None:
    info = _detect(tmp_path, LORAS["sd1-kohya"][0], metadata={"ss_base_model_version": "sd_v1"})
    assert info.metadata == {"ss_base_model_version": "sd_v1"}
    g = _detect(
        tmp_path,
        gguf_types(gguf_shapes(bare(SIGNATURES["Flux"]))),
        fmt="gguf",
        metadata={"general.name": "flux", "tokenizer.ggml.tokens": ["a", "b"]},
    )
    assert g.metadata["general.name"] == "flux"
    assert "tokenizer.ggml.tokens" not in g.metadata


def test_header_only_reads(tmp_path: Path) -> None:
    """A 2 GB sparse file: bytes read stay within the header."""
    path = tmp_path / "big.safetensors"
    write_safetensors(path, bare(SIGNATURES["Flux"]), size=2 << 30)
    info = detect(path)
    assert info.size == 2 << 30
    assert info.bytes_read == info.header_bytes
    gpath = tmp_path / "big.gguf"
    write_gguf(gpath, gguf_types(bare(SIGNATURES["Flux"])), size=2 << 30)
    ginfo = detect(gpath)
    assert ginfo.bytes_read <= 2 * ginfo.header_bytes + 4096


def test_to_dict_roundtrip(tmp_path: Path) -> None:
    info = _detect(tmp_path, SIGNATURES["SDXL"])
    again = ModelInfo.from_dict(info.to_dict())
    assert again == info
