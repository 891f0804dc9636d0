"""Derive the tensor tables of the synthetic test models, checked against sd.cpp.

This is the tool that wrote ``sdrest/testing/tables/*.json``. It is not used at
test time: tests read the JSON tables through :mod:`sdrest.testing.synthetic`.

How a table is derived:

1. A *candidate* list of ``(name, shape)`` is generated procedurally, from the
   architectures as sd.cpp builds them (``src/unet.hpp``, ``src/clip.hpp``,
   ``src/auto_encoder_kl.hpp``, ``src/tae.hpp``, ``src/esrgan.hpp``,
   ``src/control.hpp``, ``src/wan.hpp``, ``src/t5.hpp``) and the names its converter accepts
   (``src/name_conversion.cpp``).
2. The candidate is written as a model file whose data are all zeros (a sparse
   file: only the header is written, so even the 2 GB checkpoint costs nothing).
3. sd.cpp's own CLI loads it (``sd-cli``: txt2img, img2img, upscale, ... as the
   model needs) and its log is parsed for the loader's complaints:
   ``tensor 'X' not in model file``, ``tensor 'X' has wrong shape in model file:
   got [...], expected [...]``, ``unknown tensor 'X | ...' in model file``, and for
   LoRAs ``unused lora tensor |X|`` and ``(n / m) LoRA tensors have been applied``.
4. Each complaint is fixed in the candidate (a missing tensor is added, a wrong
   shape takes the shape sd.cpp expected, an unknown tensor is dropped) and the
   file is checked again, until sd.cpp has nothing to say. Only then is the JSON
   written. A table that needed fixes is reported, so a wrong guess in the
   procedural part never goes unnoticed.

``--verify`` then writes the real (random-valued) models through
:mod:`sdrest.testing.synthetic` and checks that each one produces a finite,
non-constant image in sd-cli, that the LoRA and the ControlNet change the output,
and that the wrong VAE is refused.

Usage::

    python -m sdrest.testing.derive_tables --sd-cli build/dev/sd-cli [--only sd1,taesd] [--verify]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sdrest.testing import synthetic

Shape = tuple[int, ...]
Entry = tuple[str, Shape]

SDCPP_SOURCE = "stable-diffusion.cpp as vendored by stable-diffusion-cpp-python 0.4.7"

# ---------------------------------------------------------------------------------------------
# Procedural candidates
# ---------------------------------------------------------------------------------------------


def _linear(prefix: str, n_in: int, n_out: int, bias: bool = True) -> list[Entry]:
    out: list[Entry] = [(f"{prefix}.weight", (n_out, n_in))]
    if bias:
        out.append((f"{prefix}.bias", (n_out,)))
    return out


def _conv(prefix: str, n_in: int, n_out: int, k: int = 3, bias: bool = True) -> list[Entry]:
    out: list[Entry] = [(f"{prefix}.weight", (n_out, n_in, k, k))]
    if bias:
        out.append((f"{prefix}.bias", (n_out,)))
    return out


def _norm(prefix: str, n: int) -> list[Entry]:
    return [(f"{prefix}.weight", (n,)), (f"{prefix}.bias", (n,))]


# --- SD1 UNet (ldm.modules.diffusionmodules.openaimodel.UNetModel, CompVis names) ------------

SD1_MODEL_CHANNELS = 320
SD1_CHANNEL_MULT = (1, 2, 4, 4)
SD1_ATTENTION_DS = (1, 2, 4)
SD1_CONTEXT_DIM = 768
SD1_TIME_EMBED_DIM = 1280


def _unet_resblock(prefix: str, ch_in: int, ch_out: int, emb: int = SD1_TIME_EMBED_DIM) -> list[Entry]:
    out = _norm(f"{prefix}.in_layers.0", ch_in)
    out += _conv(f"{prefix}.in_layers.2", ch_in, ch_out)
    out += _linear(f"{prefix}.emb_layers.1", emb, ch_out)
    out += _norm(f"{prefix}.out_layers.0", ch_out)
    out += _conv(f"{prefix}.out_layers.3", ch_out, ch_out)
    if ch_in != ch_out:
        out += _conv(f"{prefix}.skip_connection", ch_in, ch_out, k=1)
    return out


def _spatial_transformer(prefix: str, ch: int, context_dim: int = SD1_CONTEXT_DIM) -> list[Entry]:
    out = _norm(f"{prefix}.norm", ch)
    out += _conv(f"{prefix}.proj_in", ch, ch, k=1)  # SD1: use_linear_projection = false
    tb = f"{prefix}.transformer_blocks.0"
    out += _linear(f"{tb}.attn1.to_q", ch, ch, bias=False)
    out += _linear(f"{tb}.attn1.to_k", ch, ch, bias=False)
    out += _linear(f"{tb}.attn1.to_v", ch, ch, bias=False)
    out += _linear(f"{tb}.attn1.to_out.0", ch, ch)
    out += _linear(f"{tb}.ff.net.0.proj", ch, ch * 8)  # GEGLU: 2 * (4 * ch)
    out += _linear(f"{tb}.ff.net.2", ch * 4, ch)
    out += _linear(f"{tb}.attn2.to_q", ch, ch, bias=False)
    out += _linear(f"{tb}.attn2.to_k", context_dim, ch, bias=False)
    out += _linear(f"{tb}.attn2.to_v", context_dim, ch, bias=False)
    out += _linear(f"{tb}.attn2.to_out.0", ch, ch)
    out += _norm(f"{tb}.norm1", ch)
    out += _norm(f"{tb}.norm2", ch)
    out += _norm(f"{tb}.norm3", ch)
    out += _conv(f"{prefix}.proj_out", ch, ch, k=1)
    return out


def _unet_encoder_half(prefix: str, zero_convs: bool) -> tuple[list[Entry], list[int], int]:
    """time_embed + input_blocks (+ ControlNet zero_convs); returns entries, skip channels, ch."""
    mc = SD1_MODEL_CHANNELS
    out = _linear(f"{prefix}time_embed.0", mc, SD1_TIME_EMBED_DIM)
    out += _linear(f"{prefix}time_embed.2", SD1_TIME_EMBED_DIM, SD1_TIME_EMBED_DIM)
    out += _conv(f"{prefix}input_blocks.0.0", 4, mc)
    if zero_convs:
        out += _conv(f"{prefix}zero_convs.0.0", mc, mc, k=1)
    chans = [mc]
    ch = mc
    idx = 0
    ds = 1
    for level, mult in enumerate(SD1_CHANNEL_MULT):
        for _ in range(2):  # num_res_blocks
            idx += 1
            out += _unet_resblock(f"{prefix}input_blocks.{idx}.0", ch, mult * mc)
            ch = mult * mc
            if ds in SD1_ATTENTION_DS:
                out += _spatial_transformer(f"{prefix}input_blocks.{idx}.1", ch)
            if zero_convs:
                out += _conv(f"{prefix}zero_convs.{idx}.0", ch, ch, k=1)
            chans.append(ch)
        if level != len(SD1_CHANNEL_MULT) - 1:
            idx += 1
            out += _conv(f"{prefix}input_blocks.{idx}.0.op", ch, ch)
            if zero_convs:
                out += _conv(f"{prefix}zero_convs.{idx}.0", ch, ch, k=1)
            chans.append(ch)
            ds *= 2
    out += _unet_resblock(f"{prefix}middle_block.0", ch, ch)
    out += _spatial_transformer(f"{prefix}middle_block.1", ch)
    out += _unet_resblock(f"{prefix}middle_block.2", ch, ch)
    return out, chans, ch


def sd1_unet(prefix: str = "model.diffusion_model.") -> list[Entry]:
    """The SD1.x UNet, CompVis/LDM names."""
    mc = SD1_MODEL_CHANNELS
    out, chans, ch = _unet_encoder_half(prefix, zero_convs=False)
    idx = 0
    ds = 2 ** (len(SD1_CHANNEL_MULT) - 1)
    for level in reversed(range(len(SD1_CHANNEL_MULT))):
        mult = SD1_CHANNEL_MULT[level]
        for i in range(3):  # num_res_blocks + 1
            skip = chans.pop()
            out += _unet_resblock(f"{prefix}output_blocks.{idx}.0", ch + skip, mult * mc)
            ch = mult * mc
            sub = 1
            if ds in SD1_ATTENTION_DS:
                out += _spatial_transformer(f"{prefix}output_blocks.{idx}.1", ch)
                sub = 2
            if level and i == 2:
                out += _conv(f"{prefix}output_blocks.{idx}.{sub}.conv", ch, ch)
                ds //= 2
            idx += 1
    out += _norm(f"{prefix}out.0", mc)
    out += _conv(f"{prefix}out.2", mc, 4)
    return out


def sd1_clip(prefix: str = "cond_stage_model.transformer.text_model.") -> list[Entry]:
    """OpenAI CLIP ViT-L/14 text model, Hugging Face names (what SD1 checkpoints carry)."""
    d, ff, layers = 768, 3072, 12
    out: list[Entry] = [
        (f"{prefix}embeddings.token_embedding.weight", (49408, d)),
        (f"{prefix}embeddings.position_embedding.weight", (77, d)),
    ]
    for i in range(layers):
        p = f"{prefix}encoder.layers.{i}"
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            out += _linear(f"{p}.self_attn.{proj}", d, d)
        out += _norm(f"{p}.layer_norm1", d)
        out += _linear(f"{p}.mlp.fc1", d, ff)
        out += _linear(f"{p}.mlp.fc2", ff, d)
        out += _norm(f"{p}.layer_norm2", d)
    out += _norm(f"{prefix}final_layer_norm", d)
    return out


def _vae_resnet(prefix: str, ch_in: int, ch_out: int) -> list[Entry]:
    out = _norm(f"{prefix}.norm1", ch_in)
    out += _conv(f"{prefix}.conv1", ch_in, ch_out)
    out += _norm(f"{prefix}.norm2", ch_out)
    out += _conv(f"{prefix}.conv2", ch_out, ch_out)
    if ch_in != ch_out:
        out += _conv(f"{prefix}.nin_shortcut", ch_in, ch_out, k=1)
    return out


def _vae_attn(prefix: str, ch: int) -> list[Entry]:
    out = _norm(f"{prefix}.norm", ch)
    for n in ("q", "k", "v", "proj_out"):
        out += _conv(f"{prefix}.{n}", ch, ch, k=1)  # LDM checkpoints: 1x1 convs
    return out


def autoencoder_kl(prefix: str, z_channels: int = 4, use_quant: bool = True) -> list[Entry]:
    """ldm.models.autoencoder.AutoencoderKL (ch 128, mult 1,2,4,4), LDM names.

    ``z_channels=4, use_quant=True`` is the SD1/SD2/SDXL VAE; ``16, False`` the SD3/Flux one.
    """
    ch, mult, nres = 128, (1, 2, 4, 4), 2
    out = _conv(f"{prefix}encoder.conv_in", 3, ch)
    block_in = ch
    for level, m in enumerate(mult):
        block_out = ch * m
        for b in range(nres):
            out += _vae_resnet(f"{prefix}encoder.down.{level}.block.{b}", block_in, block_out)
            block_in = block_out
        if level != len(mult) - 1:
            out += _conv(f"{prefix}encoder.down.{level}.downsample.conv", block_in, block_in)
    out += _vae_resnet(f"{prefix}encoder.mid.block_1", block_in, block_in)
    out += _vae_attn(f"{prefix}encoder.mid.attn_1", block_in)
    out += _vae_resnet(f"{prefix}encoder.mid.block_2", block_in, block_in)
    out += _norm(f"{prefix}encoder.norm_out", block_in)
    out += _conv(f"{prefix}encoder.conv_out", block_in, 2 * z_channels)
    if use_quant:
        out += _conv(f"{prefix}quant_conv", 2 * z_channels, 2 * z_channels, k=1)
        out += _conv(f"{prefix}post_quant_conv", z_channels, z_channels, k=1)
    block_in = ch * mult[-1]
    out += _conv(f"{prefix}decoder.conv_in", z_channels, block_in)
    out += _vae_resnet(f"{prefix}decoder.mid.block_1", block_in, block_in)
    out += _vae_attn(f"{prefix}decoder.mid.attn_1", block_in)
    out += _vae_resnet(f"{prefix}decoder.mid.block_2", block_in, block_in)
    for level in reversed(range(len(mult))):
        block_out = ch * mult[level]
        for b in range(nres + 1):
            out += _vae_resnet(f"{prefix}decoder.up.{level}.block.{b}", block_in, block_out)
            block_in = block_out
        if level != 0:
            out += _conv(f"{prefix}decoder.up.{level}.upsample.conv", block_in, block_in)
    out += _norm(f"{prefix}decoder.norm_out", block_in)
    out += _conv(f"{prefix}decoder.conv_out", block_in, 3)
    return out


def sd1_checkpoint_candidate() -> list[Entry]:
    """Full SD1.x checkpoint: UNet + CLIP text model + VAE, original (CompVis) names."""
    return sd1_unet() + sd1_clip() + autoencoder_kl("first_stage_model.")


def sd1_vae_candidate() -> list[Entry]:
    """Standalone SD1 VAE, as ``vae-ft-mse-840000-ema-pruned``: LDM names, no prefix."""
    return autoencoder_kl("")


def flux_vae_candidate() -> list[Entry]:
    """Standalone 16-channel VAE, as Flux's ``ae.safetensors``: no quant convs, no prefix."""
    return autoencoder_kl("", z_channels=16, use_quant=False)


def taesd_candidate() -> list[Entry]:
    """madebyollin/taesd (SD1), ``encoder.layers.N`` / ``decoder.layers.N`` (N: nn.Sequential index)."""
    c = 64

    def block(p: str) -> list[Entry]:  # TAEBlock(64, 64): three 3x3 convs, no skip conv
        return _conv(f"{p}.conv.0", c, c) + _conv(f"{p}.conv.2", c, c) + _conv(f"{p}.conv.4", c, c)

    # encoder: conv(3->64), Block, then 3 x [stride-2 conv (no bias), 3 Blocks], conv(64->4)
    enc = ["conv_in", "block"] + ["down", "block", "block", "block"] * 3 + ["conv_out"]
    # decoder: conv(4->64), ReLU, then 3 x [3 Blocks, Upsample, conv (no bias)], Block, conv(64->3)
    dec = ["conv_in", "relu"] + ["block", "block", "block", "upsample", "up_conv"] * 3 + ["block", "conv_out"]
    out: list[Entry] = []
    for prefix, layers, z_in, z_out in (("encoder.layers", enc, 3, 4), ("decoder.layers", dec, 4, 3)):
        for i, kind in enumerate(layers):
            p = f"{prefix}.{i}"
            if kind == "conv_in":
                out += _conv(p, z_in, c)
            elif kind == "block":
                out += block(p)
            elif kind in ("down", "up_conv"):
                out += _conv(p, c, c, bias=False)
            elif kind == "conv_out":
                out += _conv(p, c, z_out)
    return out


ESRGAN_NUM_BLOCK = 1  # sd.cpp counts body.N; it fixes num_feat=64, num_grow_ch=32


def esrgan_candidate() -> list[Entry]:
    """BasicSR RRDBNet x4 (Real-ESRGAN names), with the fewest RRDB blocks sd.cpp takes."""
    nf, gc = 64, 32
    out = _conv("conv_first", 3, nf)
    for b in range(ESRGAN_NUM_BLOCK):
        for r in (1, 2, 3):
            for k in range(1, 6):
                n_in = nf + (k - 1) * gc
                n_out = nf if k == 5 else gc
                out += _conv(f"body.{b}.rdb{r}.conv{k}", n_in, n_out)
    out += _conv("conv_body", nf, nf)
    out += _conv("conv_up1", nf, nf)
    out += _conv("conv_up2", nf, nf)
    out += _conv("conv_hr", nf, nf)
    out += _conv("conv_last", nf, 3)
    return out


def sd1_controlnet_candidate() -> list[Entry]:
    """SD1.x ControlNet (cldm), ``control_model.`` names as in ControlNet 1.x files."""
    p = "control_model."
    out, _, ch = _unet_encoder_half(p, zero_convs=True)
    hint = [(3, 16), (16, 16), (16, 32), (32, 32), (32, 96), (96, 96), (96, 256), (256, SD1_MODEL_CHANNELS)]
    for j, (a, b) in enumerate(hint):
        out += _conv(f"{p}input_hint_block.{2 * j}", a, b)
    out += _conv(f"{p}middle_block_out.0", ch, ch, k=1)
    return out


# --- Wan2.1 T2V 1.3B, its umt5-xxl text encoder and the Wan2.1 VAE (src/wan.hpp, src/t5.hpp) ---
#
# sd.cpp reads only the number of blocks from a Wan file (30: Wan2.1 1.3B, 40: 14B) and fixes
# everything else; the umt5-xxl and the Wan VAE are fixed completely. So the video set is full
# size; the two big files are GGUF with ggml Q4_0 linear weights (see wan_dtype / umt5_dtype).

WAN_DIM, WAN_FFN, WAN_LAYERS, WAN_FREQ, WAN_TEXT, WAN_IN, WAN_OUT = 1536, 8960, 30, 256, 4096, 16, 16
UMT5_DIM, UMT5_FF, UMT5_LAYERS, UMT5_HEADS, UMT5_VOCAB = 4096, 10240, 24, 64, 256384


def wan_candidate() -> list[Entry]:
    """Wan2.1 T2V 1.3B (original Wan names, no prefix), as ``Wan`` builds it with t2v blocks,
    qk_norm and cross_attn_norm. The Conv3d patch embedding is 4-d, ``(out*in, kt, kh, kw)``."""
    d = WAN_DIM
    out: list[Entry] = [("patch_embedding.weight", (d * WAN_IN, 1, 2, 2)), ("patch_embedding.bias", (d,))]
    out += _linear("text_embedding.0", WAN_TEXT, d) + _linear("text_embedding.2", d, d)
    out += _linear("time_embedding.0", WAN_FREQ, d) + _linear("time_embedding.2", d, d)
    out += _linear("time_projection.1", d, 6 * d)
    for i in range(WAN_LAYERS):
        p = f"blocks.{i}"
        out.append((f"{p}.modulation", (1, 6, d)))
        for attn in ("self_attn", "cross_attn"):
            for proj in ("q", "k", "v", "o"):
                out += _linear(f"{p}.{attn}.{proj}", d, d)
            out += [(f"{p}.{attn}.norm_q.weight", (d,)), (f"{p}.{attn}.norm_k.weight", (d,))]
        out += _norm(f"{p}.norm3", d)
        out += _linear(f"{p}.ffn.0", d, WAN_FFN) + _linear(f"{p}.ffn.2", WAN_FFN, d)
    out.append(("head.modulation", (1, 2, d)))
    out += _linear("head.head", d, WAN_OUT * 4)  # out_dim * prod(patch_size)
    return out


def umt5_candidate() -> list[Entry]:
    """google/umt5-xxl encoder, Hugging Face names (``shared``, ``encoder.block.N.layer.M``);
    umt5 has a relative attention bias in every layer."""
    d, ff = UMT5_DIM, UMT5_FF
    out: list[Entry] = [("shared.weight", (UMT5_VOCAB, d))]
    for i in range(UMT5_LAYERS):
        p = f"encoder.block.{i}.layer"
        for proj in ("q", "k", "v", "o"):
            out.append((f"{p}.0.SelfAttention.{proj}.weight", (d, d)))
        out.append((f"{p}.0.SelfAttention.relative_attention_bias.weight", (32, UMT5_HEADS)))
        out.append((f"{p}.0.layer_norm.weight", (d,)))
        out += [(f"{p}.1.DenseReluDense.wi_0.weight", (ff, d)), (f"{p}.1.DenseReluDense.wi_1.weight", (ff, d))]
        out.append((f"{p}.1.DenseReluDense.wo.weight", (d, ff)))
        out.append((f"{p}.1.layer_norm.weight", (d,)))
    out.append(("encoder.final_layer_norm.weight", (d,)))
    return out


def _conv3d(prefix: str, n_in: int, n_out: int, k: tuple[int, int, int] = (3, 3, 3)) -> list[Entry]:
    return [(f"{prefix}.weight", (n_out, n_in, *k)), (f"{prefix}.bias", (n_out,))]


def _wan_vae_res(prefix: str, n_in: int, n_out: int) -> list[Entry]:
    out = [(f"{prefix}.residual.0.gamma", (n_in, 1, 1, 1))] + _conv3d(f"{prefix}.residual.2", n_in, n_out)
    out += [(f"{prefix}.residual.3.gamma", (n_out, 1, 1, 1))] + _conv3d(f"{prefix}.residual.6", n_out, n_out)
    if n_in != n_out:
        out += _conv3d(f"{prefix}.shortcut", n_in, n_out, (1, 1, 1))
    return out


def _wan_vae_attn(prefix: str, n: int) -> list[Entry]:
    return [(f"{prefix}.norm.gamma", (n, 1, 1))] + _conv(f"{prefix}.to_qkv", n, 3 * n, k=1) + _conv(
        f"{prefix}.proj", n, n, k=1)


def _wan_vae_resample(prefix: str, n: int, mode: str) -> list[Entry]:
    if mode.startswith("up"):
        out = _conv(f"{prefix}.resample.1", n, n // 2)
        if mode == "upsample3d":
            out += _conv3d(f"{prefix}.time_conv", n, 2 * n, (3, 1, 1))
    else:
        out = _conv(f"{prefix}.resample.1", n, n)
        if mode == "downsample3d":
            out += _conv3d(f"{prefix}.time_conv", n, n, (3, 1, 1))
    return out


def wan_vae_candidate() -> list[Entry]:
    """The Wan2.1 VAE (``Wan2.1_VAE.pth`` names): base width 96, mult 1,2,4,4, z 16, causal 3-d
    convs (5-d weights), RMS norms ``gamma`` shaped (C,1,1,1) (attention: (C,1,1))."""
    dim, z, mult, nres = 96, 16, (1, 2, 4, 4), 2
    dims = [dim] + [dim * m for m in mult]
    out = _conv3d("encoder.conv1", 3, dims[0])
    idx = 0
    for i in range(len(mult)):
        n_in, n_out = dims[i], dims[i + 1]
        for _ in range(nres):
            out += _wan_vae_res(f"encoder.downsamples.{idx}", n_in, n_out)
            idx += 1
            n_in = n_out
        if i != len(mult) - 1:
            out += _wan_vae_resample(f"encoder.downsamples.{idx}", n_out, ("downsample2d", "downsample3d",
                                                                           "downsample3d")[i])
            idx += 1
    top = dims[-1]
    out += _wan_vae_res("encoder.middle.0", top, top) + _wan_vae_attn("encoder.middle.1", top)
    out += _wan_vae_res("encoder.middle.2", top, top)
    out += [("encoder.head.0.gamma", (top, 1, 1, 1))] + _conv3d("encoder.head.2", top, 2 * z)
    out += _conv3d("conv1", 2 * z, 2 * z, (1, 1, 1))
    out += _conv3d("conv2", z, z, (1, 1, 1))
    ddims = [dim * mult[-1]] + [dim * m for m in reversed(mult)]
    out += _conv3d("decoder.conv1", z, ddims[0])
    out += _wan_vae_res("decoder.middle.0", ddims[0], ddims[0]) + _wan_vae_attn("decoder.middle.1", ddims[0])
    out += _wan_vae_res("decoder.middle.2", ddims[0], ddims[0])
    idx = 0
    for i in range(len(mult)):
        n_in, n_out = ddims[i], ddims[i + 1]
        if i in (1, 2, 3):
            n_in //= 2
        for _ in range(nres + 1):
            out += _wan_vae_res(f"decoder.upsamples.{idx}", n_in, n_out)
            idx += 1
            n_in = n_out
        if i != len(mult) - 1:
            out += _wan_vae_resample(f"decoder.upsamples.{idx}", n_out, ("upsample3d", "upsample3d",
                                                                         "upsample2d")[i])
            idx += 1
    out += [("decoder.head.0.gamma", (ddims[-1], 1, 1, 1))] + _conv3d("decoder.head.2", ddims[-1], 3)
    return out


def _quant_linear_dtype(name: str, shape: Shape) -> str:
    """GGUF dtypes: 2-d weights whose rows are whole Q4_0 blocks are Q4_0 (sd.cpp's Linear and
    Embedding take the file's type); the Conv3d patch embedding is F16 (sd.cpp fixes it);
    everything else (norms, biases, modulations, the tiny relative attention bias) F32."""
    if len(shape) == 2 and shape[1] % 32 == 0 and "relative_attention_bias" not in name:
        return "Q4_0"
    if len(shape) == 4:
        return "F16"
    return "F32"


LORA_RANK = 4


def sd1_lora_candidate(base: Sequence[Entry]) -> list[Entry]:
    """A kohya-style SD1 LoRA: attention projections of three UNet transformer blocks
    (one of them also the 1x1 conv ``proj_in``) and the first CLIP layer."""
    shapes = dict(base)
    targets: list[tuple[str, str]] = []  # (kohya name, model tensor name)
    unet_blocks = {  # diffusers (kohya) block -> LDM block
        "down_blocks_0_attentions_0": "input_blocks.1.1",
        "mid_block_attentions_0": "middle_block.1",
        "up_blocks_3_attentions_2": "output_blocks.11.1",
    }
    for kohya, ldm in unet_blocks.items():
        for attn in ("attn1", "attn2"):
            for proj in ("to_q", "to_k", "to_v", "to_out_0"):
                ldm_proj = proj.replace("to_out_0", "to_out.0")
                targets.append(
                    (
                        f"lora_unet_{kohya}_transformer_blocks_0_{attn}_{proj}",
                        f"model.diffusion_model.{ldm}.transformer_blocks.0.{attn}.{ldm_proj}.weight",
                    )
                )
    targets.append(
        ("lora_unet_down_blocks_0_attentions_0_proj_in", "model.diffusion_model.input_blocks.1.1.proj_in.weight")
    )
    te = "cond_stage_model.transformer.text_model.encoder.layers.0"
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        targets.append((f"lora_te_text_model_encoder_layers_0_self_attn_{proj}", f"{te}.self_attn.{proj}.weight"))
    targets.append(("lora_te_text_model_encoder_layers_0_mlp_fc1", f"{te}.mlp.fc1.weight"))
    out: list[Entry] = []
    for kohya, target in targets:
        shape = shapes[target]
        n_out, n_in, kernel = shape[0], shape[1], shape[2:]
        out.append((f"{kohya}.alpha", ()))
        out.append((f"{kohya}.lora_down.weight", (LORA_RANK, n_in, *kernel)))
        out.append((f"{kohya}.lora_up.weight", (n_out, LORA_RANK, *((1,) * len(kernel)))))
    return out


# ---------------------------------------------------------------------------------------------
# sd-cli runs and log parsing
# ---------------------------------------------------------------------------------------------

RE_MISSING = re.compile(r"tensor '([^']+)' not in model file")
RE_SHAPE = re.compile(r"tensor '([^']+)' has wrong shape in model file: got \[([^\]]*)\], expected \[([^\]]*)\]")
RE_UNKNOWN = re.compile(r"unknown tensor '(\S+) \|")
RE_LORA_UNUSED = re.compile(r"unused lora tensor \|([^|]+)\|")
RE_LORA_APPLIED = re.compile(r"\((\d+) / (\d+)\) LoRA tensors have been applied")
RE_SAMPLING = re.compile(r"sampling completed, taking ([0-9.]+)s")


@dataclass
class Complaints:
    """What sd.cpp's loader said about a model file (names are sd.cpp's, after conversion)."""

    missing: list[str] = field(default_factory=list)
    wrong_shape: list[tuple[str, Shape, Shape]] = field(default_factory=list)  # name, got, expected (torch order)
    unknown: list[str] = field(default_factory=list)
    lora_unused: list[str] = field(default_factory=list)
    lora_applied: tuple[int, int] | None = None

    def __bool__(self) -> bool:
        lora_short = self.lora_applied is not None and self.lora_applied[0] != self.lora_applied[1]
        return bool(self.missing or self.wrong_shape or self.unknown or self.lora_unused or lora_short)


def _ne_to_shape(text: str) -> Shape:
    """sd.cpp prints ggml ``ne`` (innermost first, padded with 1s): reverse, drop padding."""
    ne = [int(x) for x in text.split(",") if x.strip()]
    while len(ne) > 1 and ne[-1] == 1:
        ne.pop()
    return tuple(reversed(ne))


def parse_log(log: str) -> Complaints:
    """Collect the loader's complaints from an sd-cli log."""
    c = Complaints()
    c.missing = RE_MISSING.findall(log)
    c.wrong_shape = [(n, _ne_to_shape(g), _ne_to_shape(e)) for n, g, e in RE_SHAPE.findall(log)]
    c.unknown = RE_UNKNOWN.findall(log)
    c.lora_unused = RE_LORA_UNUSED.findall(log)
    m = RE_LORA_APPLIED.search(log)
    if m:
        c.lora_applied = (int(m.group(1)), int(m.group(2)))
    return c


@dataclass
class RunResult:
    """One sd-cli run."""

    argv: list[str]
    returncode: int
    log: str
    seconds: float

    @property
    def sampling_seconds(self) -> float | None:
        m = RE_SAMPLING.search(self.log)
        return float(m.group(1)) if m else None


def run_sd_cli(sd_cli: Path, args: Sequence[str], timeout: float = 900) -> RunResult:
    """Run sd-cli with ``args``; return its exit status and combined log."""
    argv = [str(sd_cli), *args]
    t0 = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    return RunResult(argv, proc.returncode, proc.stdout.decode("utf-8", "replace"), time.monotonic() - t0)


# --- tiny PNG codec (sd-cli reads and writes PNG; no Pillow needed here) ----------------------


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an 8-bit RGB image (H, W, 3) as PNG."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(png)


def read_png(path: Path) -> np.ndarray:
    """Read an 8-bit, non-interlaced grey/RGB/RGBA PNG into (H, W, C) uint8."""
    data = path.read_bytes()
    pos = 8
    idat = b""
    w = h = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or interlace:
                raise ValueError(f"{path}: unsupported PNG (depth {depth}, interlace {interlace})")
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = w * channels
    out = np.zeros((h, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, dtype=np.int32)
        for x in range(stride):
            a = cur[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if ftype == 0:
                p = 0
            elif ftype == 1:
                p = a
            elif ftype == 2:
                p = b
            elif ftype == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + p) & 0xFF
        out[y] = cur
        prev = cur
    return out.reshape(h, w, channels).astype(np.uint8)


def sample_image(size: int = 64, seed: int = 7) -> np.ndarray:
    """A deterministic RGB test picture: gradients, a disc and a little noise."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    disc = ((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.08).astype(float)
    noise = np.random.default_rng(seed).random((size, size))
    rgb = np.stack([x, y, 0.5 * disc + 0.3 * noise], axis=-1)
    return (rgb * 255).clip(0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Models: candidate, file naming, checks
# ---------------------------------------------------------------------------------------------

COMMON = ["-t", "2", "-W", "64", "-H", "64", "--steps", "1", "--seed", "42", "-p", "a cat"]


@dataclass
class Context:
    """Shared state of one derivation run."""

    sd_cli: Path
    work: Path
    files: dict[str, Path] = field(default_factory=dict)  # table name -> candidate file checked last

    @property
    def init_png(self) -> Path:
        p = self.work / "init.png"
        if not p.exists():
            write_png(p, sample_image())
        return p


@dataclass
class ModelDef:
    """How to build, name and check one table."""

    table: str
    description: str
    fmt: str  # "safetensors" | "pth"
    candidate: Callable[[Context], list[Entry]]
    checks: Callable[[Context, Path], list[list[str]]]  # sd-cli argument lists
    to_file_name: Callable[[str], str | None] = lambda n: n  # sd.cpp name -> file name
    requires: tuple[str, ...] = ()
    expect_failure: str | None = None  # regex the log must match (the run must fail)
    require: str | None = None  # regex every successful check's log must match (the file was used)
    container: str | None = None  # pth: state dict nested under this key
    extra: dict[str, object] = field(default_factory=dict)
    dtype: Callable[[str, Shape], str] = lambda name, shape: synthetic.DEFAULT_DTYPE  # per-tensor dtype


def _strip(prefix_internal: str, prefix_file: str) -> Callable[[str], str | None]:
    def conv(name: str) -> str | None:
        if name.startswith(prefix_internal):
            return prefix_file + name[len(prefix_internal) :]
        return None

    return conv


def _load_table_entries(table: str) -> list[Entry]:
    spec = synthetic.load_table(table)
    return [(t.name, t.shape) for t in spec.tensors]


def _sd1_checks(ctx: Context, f: Path) -> list[list[str]]:
    return [
        ["-m", str(f), *COMMON, "-o", str(ctx.work / "sd1_txt2img.png")],
        ["-m", str(f), *COMMON, "-i", str(ctx.init_png), "--strength", "0.5", "-o", str(ctx.work / "sd1_img2img.png")],
    ]


def _needs_sd1(ctx: Context) -> Path:
    return ctx.files["sd1"]


MODELS: dict[str, ModelDef] = {}


def _register(m: ModelDef) -> None:
    MODELS[m.table] = m


_register(
    ModelDef(
        table="sd1",
        require=r"Version: SD 1\.x",
        description="SD1.x checkpoint (UNet + CLIP ViT-L/14 text + VAE), original CompVis names",
        fmt="safetensors",
        candidate=lambda ctx: sd1_checkpoint_candidate(),
        checks=_sd1_checks,
    )
)
_register(
    ModelDef(
        table="sd1_vae",
        require=r"loading vae from",
        description="standalone SD1 VAE (as vae-ft-mse-840000-ema-pruned), LDM names without prefix",
        fmt="safetensors",
        candidate=lambda ctx: sd1_vae_candidate(),
        checks=lambda ctx, f: [
            [
                "-m", str(_needs_sd1(ctx)), "--vae", str(f), *COMMON, "-i", str(ctx.init_png),
                "--strength", "0.5", "-o", str(ctx.work / "vae_img2img.png"),
            ]
        ],
        to_file_name=_strip("first_stage_model.", ""),
        requires=("sd1",),
    )
)
_register(
    ModelDef(
        table="flux_vae",
        description=(
            "standalone 16-channel VAE (Flux ae.safetensors layout: no quant convs). It is the 'wrong "
            "companion' for SD1: sd.cpp refuses it with a shape error on decoder.conv_in"
        ),
        fmt="safetensors",
        candidate=lambda ctx: flux_vae_candidate(),
        checks=lambda ctx, f: [["-m", str(_needs_sd1(ctx)), "--vae", str(f), *COMMON, "-o", str(ctx.work / "x.png")]],
        to_file_name=_strip("first_stage_model.", ""),
        requires=("sd1",),
        expect_failure=(
            r"tensor 'first_stage_model\.decoder\.conv_in\.weight' has wrong shape in model file: "
            r"got \[3, 3, 16, 512(, 1)?\], expected \[3, 3, 4, 512(, 1)?\]"
        ),
    )
)
_register(
    ModelDef(
        table="taesd",
        require=r"using TAE for encoding / decoding",
        description="TAESD for SD1 (madebyollin/taesd), encoder.layers / decoder.layers",
        fmt="safetensors",
        candidate=lambda ctx: taesd_candidate(),
        checks=lambda ctx, f: [
            ["-m", str(_needs_sd1(ctx)), "--taesd", str(f), *COMMON, "-o", str(ctx.work / "taesd_txt2img.png")],
            [
                "-m", str(_needs_sd1(ctx)), "--taesd", str(f), *COMMON, "-i", str(ctx.init_png),
                "--strength", "0.5", "-o", str(ctx.work / "taesd_img2img.png"),
            ],
        ],
        to_file_name=_strip("tae.", ""),
        requires=("sd1",),
    )
)
_register(
    ModelDef(
        table="esrgan_x4",
        require=rf"esrgan model loaded with scale=4, num_block={ESRGAN_NUM_BLOCK}\b",
        description=f"ESRGAN x4 (BasicSR RRDBNet, Real-ESRGAN names under params_ema), {ESRGAN_NUM_BLOCK} RRDB block",
        fmt="pth",
        container="params_ema",
        candidate=lambda ctx: esrgan_candidate(),
        checks=lambda ctx, f: [
            ["-M", "upscale", "--upscale-model", str(f), "-i", str(ctx.init_png), "-t", "2",
             "-o", str(ctx.work / "esrgan.png")]
        ],
    )
)
_register(
    ModelDef(
        table="sd1_controlnet",
        require=r"control net model loaded",
        description="SD1.x ControlNet (cldm), control_model.* names",
        fmt="safetensors",
        candidate=lambda ctx: sd1_controlnet_candidate(),
        checks=lambda ctx, f: [
            [
                "-m", str(_needs_sd1(ctx)), "--control-net", str(f), "--control-image", str(ctx.init_png),
                *COMMON, "-o", str(ctx.work / "controlnet.png"),
            ]
        ],
        to_file_name=lambda n: "control_model." + n,
        requires=("sd1",),
    )
)
_register(
    ModelDef(
        table="sd1_lora",
        require=r"\((\d+) / \1\) LoRA tensors have been applied",
        description=f"kohya-style SD1 LoRA, rank {LORA_RANK}, UNet attention + CLIP layer 0",
        fmt="safetensors",
        candidate=lambda ctx: sd1_lora_candidate(_load_table_entries("sd1")),
        checks=lambda ctx, f: [
            [
                "-m", str(_needs_sd1(ctx)), "--lora-model-dir", str(f.parent), *COMMON[:-1],
                f"a cat <lora:{f.stem}:1>", "-o", str(ctx.work / "lora.png"),
            ]
        ],
        to_file_name=lambda n: None,  # kohya names cannot be mapped back automatically
        requires=("sd1",),
        extra={
            "rank": LORA_RANK,
            "alpha": float(LORA_RANK),
            "strength": 1.0,
            "metadata": {  # what kohya's sd-scripts writes (a subset): lets detection see an SD1 LoRA
                "ss_network_module": "networks.lora",
                "ss_network_dim": str(LORA_RANK),
                "ss_network_alpha": str(float(LORA_RANK)),
                "ss_base_model_version": "sd_v1",
                "ss_v2": "False",
            },
        },
    )
)


# The Wan video set: the three files are only checked together; a member not derived yet in
# this run is its table as written (or, with no table yet, its zero-valued procedural candidate).
WAN_SET = {"wan": wan_candidate, "umt5": umt5_candidate, "wan_vae": wan_vae_candidate}
WAN_COMMON = ["-M", "vid_gen", "-t", "2", "-W", "64", "-H", "64", "--video-frames", "1", "--steps", "1",
              "--seed", "42", "-p", "a cat", "--cfg-scale", "1"]


def _wan_file(ctx: Context, table: str) -> Path:
    if table not in ctx.files:
        m = MODELS[table]
        p = ctx.work / "candidates" / synthetic.file_name_for(table, m.fmt)
        p.parent.mkdir(parents=True, exist_ok=True)
        if (synthetic.TABLES_DIR / f"{table}.json").exists():
            synthetic.write_table(p, synthetic.load_table(table), zeros=True)
        else:
            synthetic.write_table(p, _candidate_table(m, WAN_SET[table]()), zeros=True)
        ctx.files[table] = p
    return ctx.files[table]


def _wan_checks(ctx: Context, f: Path) -> list[list[str]]:
    files = {t: (f if f.stem == t else _wan_file(ctx, t)) for t in WAN_SET}
    return [[
        "--diffusion-model", str(files["wan"]), "--t5xxl", str(files["umt5"]), "--vae", str(files["wan_vae"]),
        *WAN_COMMON, "-o", str(ctx.work / "wan_%03d.png"),
    ]]


_register(
    ModelDef(
        table="umt5",
        require=r"loading t5xxl from",
        description="google/umt5-xxl encoder (Wan's text encoder), Hugging Face names, GGUF with Q4_0 linears",
        fmt="gguf",
        candidate=lambda ctx: umt5_candidate(),
        checks=_wan_checks,
        to_file_name=_strip("text_encoders.t5xxl.transformer.", ""),
        dtype=_quant_linear_dtype,
    )
)
_register(
    ModelDef(
        table="wan_vae",
        require=r"loading vae from",
        description="Wan2.1 VAE (causal 3-d convs, width 96, z 16), Wan2.1_VAE.pth names",
        fmt="safetensors",
        candidate=lambda ctx: wan_vae_candidate(),
        checks=_wan_checks,
        to_file_name=_strip("first_stage_model.", ""),
    )
)
_register(
    ModelDef(
        table="wan",
        require=r"Wan2\.1-T2V-1\.3B",
        description="Wan2.1 T2V 1.3B diffusion model, original names, GGUF with Q4_0 linears",
        fmt="gguf",
        candidate=lambda ctx: wan_candidate(),
        checks=_wan_checks,
        to_file_name=_strip("model.diffusion_model.", ""),
        dtype=_quant_linear_dtype,
    )
)


# ---------------------------------------------------------------------------------------------
# The derivation loop
# ---------------------------------------------------------------------------------------------


def _candidate_table(m: ModelDef, entries: Sequence[Entry]) -> synthetic.Table:
    tensors = tuple(synthetic.TensorSpec(n, tuple(s), m.dtype(n, tuple(s))) for n, s in entries)
    return synthetic.Table(name=m.table, fmt=m.fmt, tensors=tensors, container=m.container, extra=dict(m.extra))


def _apply_fixes(m: ModelDef, entries: list[Entry], c: Complaints) -> tuple[list[Entry], list[str]]:
    """Fix the candidate from sd.cpp's complaints. Returns the new list and what was changed."""
    index = {n: i for i, (n, _) in enumerate(entries)}
    notes: list[str] = []
    unfixable: list[str] = []
    for name, got, expected in c.wrong_shape:
        f = m.to_file_name(name)
        if f is None or f not in index:
            unfixable.append(f"wrong shape for {name}")
            continue
        entries[index[f]] = (f, expected)
        notes.append(f"shape {f}: {list(got)} -> {list(expected)}")
    for name in c.missing:
        f = m.to_file_name(name)
        if f is None:
            unfixable.append(f"missing {name}")
            continue
        if f in index:
            unfixable.append(f"missing {name} although the file has {f}")
            continue
        entries.append((f, (1,)))  # placeholder: the next run reports the expected shape
        index[f] = len(entries) - 1
        notes.append(f"added {f}")
    drop = set()
    for name in c.unknown:
        f = name if name in index else m.to_file_name(name)
        if f is None or f not in index:
            unfixable.append(f"unknown {name}")
            continue
        drop.add(f)
        notes.append(f"dropped {f}")
    entries = [e for e in entries if e[0] not in drop]
    unfixable += [f"unused lora tensor {n}" for n in c.lora_unused]
    if c.lora_applied and c.lora_applied[0] != c.lora_applied[1] and not c.lora_unused:
        unfixable.append(f"only {c.lora_applied[0]} / {c.lora_applied[1]} LoRA tensors applied")
    if unfixable:
        raise RuntimeError(f"{m.table}: cannot fix automatically:\n  " + "\n  ".join(unfixable))
    return entries, notes


def derive(m: ModelDef, ctx: Context, max_rounds: int = 40) -> tuple[list[Entry], list[str], list[RunResult]]:
    """Check the candidate of ``m`` against sd-cli until the loader is satisfied."""
    entries = m.candidate(ctx)
    history: list[str] = []
    for round_ in range(max_rounds):
        path = ctx.work / "candidates" / synthetic.file_name_for(m.table, m.fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        synthetic.write_table(path, _candidate_table(m, entries), zeros=True)
        ctx.files[m.table] = path
        runs = [run_sd_cli(ctx.sd_cli, args) for args in m.checks(ctx, path)]
        complaints = Complaints()
        for r in runs:
            c = parse_log(r.log)
            complaints.missing += c.missing
            complaints.wrong_shape += c.wrong_shape
            complaints.unknown += c.unknown
            complaints.lora_unused += c.lora_unused
            complaints.lora_applied = c.lora_applied or complaints.lora_applied
        if m.expect_failure is not None:
            for r in runs:
                if r.returncode == 0 or not re.search(m.expect_failure, r.log):
                    raise RuntimeError(f"{m.table}: expected a load failure matching {m.expect_failure!r}:\n{r.log}")
            # the failure is the point: the only complaint allowed is the expected one
            complaints.wrong_shape = [w for w in complaints.wrong_shape if w[0] != "first_stage_model.decoder.conv_in.weight"]
            if complaints:
                raise RuntimeError(f"{m.table}: unexpected complaints besides the expected failure: {complaints}")
            return entries, history, runs
        if not complaints:
            bad = [r for r in runs if r.returncode != 0]
            if bad:
                raise RuntimeError(f"{m.table}: sd-cli failed without a loader complaint:\n{bad[0].log[-4000:]}")
            unused = [r for r in runs if m.require and not re.search(m.require, r.log)]
            if unused:
                raise RuntimeError(f"{m.table}: the log lacks {m.require!r}:\n{unused[0].log[-4000:]}")
            return entries, history, runs
        complaints.missing = list(dict.fromkeys(complaints.missing))  # several runs say the same
        complaints.unknown = list(dict.fromkeys(complaints.unknown))
        complaints.wrong_shape = list({w[0]: w for w in complaints.wrong_shape}.values())
        complaints.lora_unused = list(dict.fromkeys(complaints.lora_unused))
        entries, notes = _apply_fixes(m, list(entries), complaints)
        history += [f"round {round_}: {n}" for n in notes]
        print(f"  {m.table} round {round_}: {len(notes)} fixes", file=sys.stderr)
    raise RuntimeError(f"{m.table}: still not clean after {max_rounds} rounds")


def write_json(m: ModelDef, entries: Sequence[Entry], runs: Sequence[RunResult], history: Sequence[str]) -> Path:
    """Write ``tables/<table>.json``."""
    doc: dict[str, object] = {
        "table": m.table,
        "description": m.description,
        "format": m.fmt,
        "dtype": synthetic.DEFAULT_DTYPE,
        "derived_from": SDCPP_SOURCE,
        "checked_with": [" ".join(["sd-cli", *_redact(r.argv[1:])]) for r in runs],
        "fixes_needed_by_procedural_candidate": len(history),
    }
    if m.container:
        doc["container"] = m.container
    doc.update(m.extra)
    doc["tensor_count"] = len(entries)
    doc["parameter_count"] = int(sum(int(np.prod(s, dtype=np.int64)) for _, s in entries))
    doc["tensors"] = [[n, list(s)] for n, s in entries]

    def row(n: str, s: Shape) -> list[object]:
        dt = m.dtype(n, tuple(s))
        return [n, list(s)] if dt == synthetic.DEFAULT_DTYPE else [n, list(s), dt]

    path = synthetic.TABLES_DIR / f"{m.table}.json"
    # one tensor per line: diffable
    lines = json.dumps({k: v for k, v in doc.items() if k != "tensors"}, indent=2)[:-2]
    body = ",\n".join("    " + json.dumps(row(n, s)) for n, s in entries)
    path.write_text(lines + ',\n  "tensors": [\n' + body + "\n  ]\n}\n")
    return path


def _redact(args: Sequence[str]) -> list[str]:
    """Replace temp paths with their file names, for the JSON record."""
    return [Path(a).name if os.sep in a else a for a in args]


# ---------------------------------------------------------------------------------------------
# Verification with the real (random-valued) models
# ---------------------------------------------------------------------------------------------


def _with(args: Sequence[str], flag: str, value: str) -> list[str]:
    """``args`` with the value of ``flag`` replaced."""
    out = list(args)
    out[out.index(flag) + 1] = value
    return out


def _image_stats(path: Path) -> dict[str, float]:
    img = read_png(path).astype(np.float64)
    return {
        "h": img.shape[0],
        "w": img.shape[1],
        "mean": float(img.mean()),
        "std": float(img.std()),
        "min": float(img.min()),
        "max": float(img.max()),
        "frac_saturated": float(((img == 0) | (img == 255)).mean()),
    }


def verify(sd_cli: Path, out_dir: Path) -> list[dict[str, object]]:
    """Write the real synthetic models and run each through sd-cli; return a report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    models: dict[str, Path] = {}
    report: list[dict[str, object]] = []
    for name, fn in synthetic.GENERATORS.items():
        t0 = time.monotonic()
        models[name] = fn(out_dir)
        report.append(
            {"generate": name, "path": str(models[name]), "bytes": models[name].stat().st_size,
             "seconds": round(time.monotonic() - t0, 2)}
        )
    init = out_dir / "init.png"
    write_png(init, sample_image())
    init2 = out_dir / "init2.png"
    write_png(init2, 255 - sample_image(seed=8))
    sd1 = str(models["sd1_checkpoint"])
    cases: list[tuple[str, list[str], bool]] = [
        ("txt2img", ["-m", sd1, *COMMON], True),
        ("txt2img_4steps", ["-m", sd1, *_with(COMMON, "--steps", "4")], True),
        ("txt2img_same_seed_again", ["-m", sd1, *COMMON], True),
        ("img2img", ["-m", sd1, *COMMON, "-i", str(init), "--strength", "0.75"], True),
        ("img2img_other_init", ["-m", sd1, *COMMON, "-i", str(init2), "--strength", "0.75"], True),
        ("taesd_img2img", ["-m", sd1, "--taesd", str(models["taesd"]), *COMMON, "-i", str(init),
                           "--strength", "0.75"], True),
        ("lora", ["-m", sd1, "--lora-model-dir", str(models["sd1_lora"].parent), *COMMON[:-1],
                  f"a cat <lora:{models['sd1_lora'].stem}:1>"], True),
        ("controlnet", ["-m", sd1, "--control-net", str(models["sd1_controlnet"]), "--control-image", str(init),
                        *COMMON], True),
        ("taesd", ["-m", sd1, "--taesd", str(models["taesd"]), *COMMON], True),
        ("sd1_vae", ["-m", sd1, "--vae", str(models["sd1_vae"]), *COMMON], True),
        ("upscale", ["-M", "upscale", "--upscale-model", str(models["esrgan"]), "-i", str(init), "-t", "2"], True),
        ("wrong_vae", ["-m", sd1, "--vae", str(models["wrong_vae"]), *COMMON], False),
    ]
    images: dict[str, np.ndarray] = {}
    for name, args, should_pass in cases:
        out = out_dir / f"out_{name}.png"
        out.unlink(missing_ok=True)
        r = run_sd_cli(sd_cli, [*args, "-o", str(out)])
        entry: dict[str, object] = {
            "case": name,
            "cmd": "sd-cli " + " ".join(_redact(args)),
            "rc": r.returncode,
            "seconds": round(r.seconds, 2),
            "sampling_seconds": r.sampling_seconds,
        }
        c = parse_log(r.log)
        if c:
            entry["complaints"] = str(c)
        if should_pass:
            ok = r.returncode == 0 and out.exists()
            if ok:
                entry.update(_image_stats(out))
                images[name] = read_png(out).astype(np.int16)
                ok = entry["std"] > 1.0 and entry["frac_saturated"] < 0.9  # type: ignore[operator]
        else:
            ok = r.returncode != 0 and not out.exists() and bool(c.wrong_shape)
            entry["error"] = "; ".join(line.strip() for line in r.log.splitlines() if "[ERROR]" in line)[:400]
        entry["ok"] = ok
        if not ok:
            entry["log_tail"] = r.log[-3000:]
        report.append(entry)
        print(json.dumps({k: v for k, v in entry.items() if k != "log_tail"}), file=sys.stderr)
    for a, b, want_diff in (
        ("txt2img", "txt2img_same_seed_again", False),
        ("txt2img", "lora", True),
        ("txt2img", "controlnet", True),
        ("txt2img", "txt2img_4steps", True),
        ("img2img", "img2img_other_init", True),
    ):
        if a in images and b in images:
            d = float(np.abs(images[a] - images[b]).mean())
            report.append({"compare": f"{a} vs {b}", "mean_abs_diff": round(d, 3), "ok": (d > 2.0) == want_diff})
    return report


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sd-cli", type=Path, default=None, help="sd.cpp's CLI binary (default: build/dev/bin/sd-cli or build/dev/sd-cli)"
    )
    ap.add_argument("--only", default="", help="comma-separated tables (default: all)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--no-derive", action="store_true", help="skip derivation (with --verify)")
    ap.add_argument("--verify", action="store_true", help="then check the real models in sd-cli")
    ap.add_argument("--verify-dir", type=Path, default=None, help="where --verify writes the models")
    args = ap.parse_args(argv)
    candidates = [args.sd_cli] if args.sd_cli else [Path("build/dev/bin/sd-cli"), Path("build/dev/sd-cli")]
    sd_cli = next((c.resolve() for c in candidates if c.exists()), candidates[-1].resolve())
    if not sd_cli.exists():
        ap.error(f"sd-cli not found: {sd_cli}")
    work = args.work or Path(tempfile.mkdtemp(prefix="sdrest-derive-"))
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(sd_cli=sd_cli, work=work)
    wanted = [t for t in args.only.split(",") if t] or list(MODELS)
    status = 0
    if not args.no_derive:
        done: set[str] = set()

        def ensure(table: str) -> None:
            if table in done:
                return
            m = MODELS[table]
            for dep in m.requires:
                if dep not in ctx.files:
                    if dep in wanted:
                        ensure(dep)
                    else:  # a dependency that is already derived: check it is loadable as written
                        dm = MODELS[dep]
                        p = ctx.work / "candidates" / synthetic.file_name_for(dep, dm.fmt)
                        p.parent.mkdir(parents=True, exist_ok=True)
                        synthetic.write_table(p, synthetic.load_table(dep), zeros=True)
                        ctx.files[dep] = p
            t0 = time.monotonic()
            entries, history, runs = derive(m, ctx)
            path = write_json(m, entries, runs, history)
            done.add(table)
            print(
                f"{table}: {len(entries)} tensors, {len(history)} fixes, "
                f"checked in {time.monotonic() - t0:.1f}s -> {path}",
                file=sys.stderr,
            )
            for h in history:
                print(f"    {h}", file=sys.stderr)

        for table in wanted:
            ensure(table)
    if args.verify:
        vdir = args.verify_dir or (work / "verify")
        report = verify(sd_cli, vdir)
        print(json.dumps(report, indent=1))
        if not all(r.get("ok", True) for r in report):
            status = 1
    if args.work is None and status == 0:
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
