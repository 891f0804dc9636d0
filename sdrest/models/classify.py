"""What a tensor table is, when it is not (only) what sd.cpp's version detection knows.

Kinds: LoRA, ControlNet, VAE, TAESD, ESRGAN, textual-inversion embedding, text
encoder (CLIP-L/G/H, T5/UMT5, LLM, vision towers), PhotoMaker; plus which
components a checkpoint already contains. Each test names the tensors it looks
at; families come from the shapes that tell them (latent channels, cross
attention width, hidden size).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sdrest.models import sdversion as V
from sdrest.models.architectures import FAMILIES, TEXT_ENCODER_FITS, VAE_FAMILIES
from sdrest.models.tensors import TensorInfo, TensorTable

__all__ = ["Classification", "classify_adapter", "classify_component", "contained_roles", "unet_family"]


@dataclass(slots=True)
class Classification:
    """A kind, the family label, the versions the file fits, and the facts that told."""

    kind: str
    architecture: str | None = None
    fits: tuple[str, ...] = ()
    text_encoder_type: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


_LORA_SUFFIXES = (
    ".lora_down.weight",
    ".lora_up.weight",
    ".lora_mid.weight",
    ".lora.down.weight",
    ".lora.up.weight",
    ".lora.mid.weight",
    "_lora.down.weight",
    "_lora.up.weight",
    ".lora_A.weight",
    ".lora_B.weight",
    ".lora_A.default.weight",
    ".lora_B.default.weight",
    ".hada_w1_a",
    ".hada_w1_b",
    ".hada_w2_a",
    ".hada_w2_b",
    ".hada_t1",
    ".hada_t2",
    ".lokr_w1",
    ".lokr_w2",
    ".lokr_w1_a",
    ".lokr_w1_b",
    ".lokr_w2_a",
    ".lokr_w2_b",
)
_LORA_SIDE = (".alpha", ".scale", ".dora_scale", ".diff", ".diff_b", ".lora_linear")


def _strip(name: str, prefixes: tuple[str, ...]) -> str:
    for p in prefixes:
        if name.startswith(p):
            return name[len(p) :]
    return name


def _find(t: TensorTable, suffix: str) -> TensorInfo | None:
    for name, info in t.tensors.items():
        if name.endswith(suffix):
            return info
    return None


def _any(names: list[str], *needles: str) -> bool:
    return any(n in name for name in names for n in needles)


def _width(info: TensorInfo | None, dim: int) -> int | None:
    if info is None or len(info.shape) <= dim:
        return None
    return info.shape[dim]


def _context_family(width: int | None) -> str | None:
    return {768: V.SD1, 1024: V.SD2, 2048: V.SDXL}.get(width or 0)


def unet_family(t: TensorTable) -> str | None:
    """SD 1.x / SD 2.x / SDXL for a UNet (or its LoRA / ControlNet), from its cross-attention width."""
    for name, info in t.tensors.items():
        if "attn2.to_k" in name and name.endswith(("to_k.weight", "to_k.lora_down.weight", "to_k.lora_A.weight")):
            fam = _context_family(_width(info, 1))
            if fam:
                return fam
        if re.search(r"attn2_to_k\.(lora_down|lora_A)\.weight$", name):
            fam = _context_family(_width(info, 1))
            if fam:
                return fam
    return None


def _fits(family: str | None) -> tuple[str, ...]:
    return FAMILIES.get(family or "", ())


# ---------------------------------------------------------------------------------------------


def _lora(t: TensorTable, names: list[str]) -> Classification | None:
    core = sum(1 for n in names if n.endswith(_LORA_SUFFIXES))
    side = sum(1 for n in names if n.endswith(_LORA_SIDE))
    if core == 0 or (core + side) * 2 < len(names):
        return None
    fam = _lora_family(t, names)
    c = Classification("lora", fam, _fits(fam))
    ranks = {
        info.shape[0]
        for name, info in t.tensors.items()
        if name.endswith((".lora_down.weight", ".lora_A.weight", ".lora.down.weight")) and info.shape
    }
    if ranks:
        c.details["rank"] = max(ranks)
    if any(n.endswith(".hada_w1_a") for n in names):
        c.details["type"] = "loha"
    elif any(".lokr_w" in n for n in names):
        c.details["type"] = "lokr"
    if fam is None:
        c.warnings.append("could not tell which base model this LoRA is for")
    return c


def _lora_family(t: TensorTable, names: list[str]) -> str | None:
    def has(*needles: str) -> bool:
        return _any(names, *needles)

    if has("double_stream_modulation", "single_stream_modulation"):
        return V.FLUX2
    if has("double_blocks", "single_blocks", "single_transformer_blocks"):
        return V.FLUX
    if has("joint_blocks", "context_block"):
        return V.SD3
    if has("img_mod", "img_mlp", "txt_mlp"):
        return V.QWEN_IMAGE
    if re.search(r"blocks[._]\d+[._](cross_attn|self_attn|ffn)", " ".join(names[:200])):
        return V.WAN2
    if has("adaLN_modulation", "cap_embedder") and has("layers"):
        return V.Z_IMAGE
    if has("lora_te2_", "te2.", "text_encoder_2", "lora_te2."):
        return V.SDXL
    fam = unet_family(t)
    if fam:
        return fam
    if has("input_blocks", "down_blocks", "lora_unet_", "lora_te_", "lora_te1_"):
        # a UNet LoRA whose cross-attention was not trained: SDXL has no attention at level 0
        if has("input_blocks_7_1", "input_blocks.7.1", "down_blocks_2_attentions", "down_blocks.2.attentions"):
            return V.SDXL
        if has("lora_te_"):
            return V.SD1
    return None


def _embedding(t: TensorTable, names: list[str]) -> Classification | None:
    if len(names) > 8:
        return None
    keys = {n.split(".")[-1] if n.startswith(("string_to_param", "string_to_token")) else n for n in names}
    known = {"*", "emb_params", "clip_l", "clip_g"}
    if not keys or not keys <= known | {"string_to_param", "string_to_token"}:
        return None
    if "clip_l" in t and "clip_g" in t:
        vectors = t.tensors["clip_l"].shape[0] if t.tensors["clip_l"].shape else 1
        return Classification("embedding", V.SDXL, FAMILIES[V.SDXL], details={"vectors": vectors})
    info = t.get("emb_params") or t.get("*") or t.get("clip_l") or t.get("clip_g")
    if info is None or len(info.shape) not in (1, 2):
        return None
    width = info.shape[-1]
    fam = {768: V.SD1, 1024: V.SD2}.get(width)
    return Classification(
        "embedding",
        fam,
        _fits(fam),
        details={"vectors": info.shape[0] if len(info.shape) == 2 else 1, "width": width},
    )


def _photomaker(names: list[str]) -> Classification | None:
    if not any(n.startswith(("id_encoder.", "pmid.")) or "fuse_module." in n for n in names):
        return None
    version = 2 if _any(names, "qformer_perceiver") else 1
    return Classification("photomaker", V.SDXL, FAMILIES[V.SDXL], details={"version": version})


_CONTROL_PREFIXES = ("control_model.", "controlnet.")


def _controlnet(t: TensorTable, names: list[str]) -> Classification | None:
    stripped = [_strip(n, _CONTROL_PREFIXES) for n in names]
    if any(
        n.startswith(("controlnet_blocks.", "controlnet_single_blocks.", "controlnet_x_embedder")) for n in stripped
    ):
        fam = V.FLUX if _any(stripped, "double_blocks", "transformer_blocks", "controlnet_x_embedder") else None
        c = Classification("controlnet", fam, _fits(fam))
        c.warnings.append("a DiT ControlNet: sd.cpp's ControlNet loader takes only SD 1.x / 2.x / SDXL UNet ones")
        return c
    if not any(
        n.startswith(("input_hint_block.", "zero_convs.", "middle_block_out.", "controlnet_cond_embedding."))
        for n in stripped
    ):
        return None
    fam = unet_family(t)
    return Classification("controlnet", fam, _fits(fam))


def _vae(t: TensorTable, names: list[str]) -> Classification | None:
    prefixes = ("first_stage_model.", "vae.")
    base = {_strip(n, prefixes): n for n in names}
    conv_in = base.get("decoder.conv_in.weight")
    if conv_in is not None and (any(n.startswith(("decoder.up.", "decoder.up_blocks.", "decoder.mid")) for n in base)):
        info = t.tensors[conv_in]
        z = info.shape[1] if len(info.shape) == 4 else None
        key = {4: "kl4", 16: "kl16", 32: "kl32"}.get(z or 0)
        return _vae_result("vae", key, z)
    conv1 = base.get("decoder.conv1.weight")
    if conv1 is not None and any(n.startswith(("decoder.head.", "decoder.upsamples.")) for n in base):
        info = t.tensors[conv1]
        z = info.shape[1] if len(info.shape) >= 2 else None
        key = {16: "wan16", 48: "wan48"}.get(z or 0)
        return _vae_result("vae", key, z)
    return None


def _vae_result(kind: str, key: str | None, z: int | None) -> Classification:
    if key is None:
        c = Classification(kind, details={"latent_channels": z})
        c.warnings.append(f"unknown latent layout ({z} channels)")
        return c
    label, fits = VAE_FAMILIES[key]
    return Classification(kind, label, fits, details={"latent_channels": z})


def _taesd(t: TensorTable, names: list[str]) -> Classification | None:
    names_set = set(names)
    first = t.get("decoder.layers.1.weight")
    if first is not None or any(n.startswith(("decoder.layers.", "encoder.layers.")) for n in names):
        if first is None:
            last = max(
                (n for n in names if re.fullmatch(r"encoder\.layers\.\d+\.weight", n)),
                key=lambda n: int(n.split(".")[2]),
                default=None,
            )
            z = t.tensors[last].shape[0] if last else None
        else:
            z = first.shape[1] if len(first.shape) == 4 else None
        return _vae_result("taesd", {4: "kl4", 16: "kl16", 32: "kl32"}.get(z or 0), z)
    if "decoder.1.weight" in names_set and any(re.match(r"decoder\.\d+\.conv\.", n) for n in names):
        info = t.tensors["decoder.1.weight"]
        z = info.shape[1] if len(info.shape) == 4 else None
        return _vae_result("taesd", {16: "wan16", 48: "wan48"}.get(z or 0), z)
    return None


def _esrgan(names: list[str]) -> Classification | None:
    names_set = set(names)
    if "model.0.weight" in names_set and any(n.startswith("model.1.sub.") for n in names):
        blocks = 0
        max_model = 0
        for n in names:
            m = re.match(r"model\.1\.sub\.(\d+)\.RDB", n)
            if m:
                blocks = max(blocks, int(m.group(1)) + 1)
            m = re.match(r"model\.(\d+)\.", n)
            if m:
                max_model = max(max_model, int(m.group(1)))
        scale = 1 if max_model <= 4 else 2 if max_model <= 7 else 4
        return Classification("esrgan", "ESRGAN", details={"scale": scale, "blocks": blocks, "layout": "esrgan"})
    if "conv_first.weight" in names_set and any(n.startswith("body.") for n in names):
        blocks = max((int(m.group(1)) + 1 for n in names if (m := re.match(r"body\.(\d+)\.", n))), default=0)
        scale = 4 if "conv_up2.weight" in names_set else 2 if "conv_up1.weight" in names_set else 1
        return Classification("esrgan", "ESRGAN", details={"scale": scale, "blocks": blocks, "layout": "real-esrgan"})
    return None


_TE_PREFIXES = ("transformer.", "model.", "text_encoder.", "te.", "clip_l.", "clip_g.", "cond_stage_model.")


def _text_encoder(t: TensorTable, names: list[str]) -> Classification | None:
    arch = str(t.metadata.get("general.architecture", "")).lower()
    # T5 / UMT5 (HF names, or llama.cpp's "enc.blk." in GGUF)
    if _any(names, "encoder.block.0.layer.0.SelfAttention.", "enc.blk.0.attn_q") or arch in ("t5", "t5encoder"):
        emb = _find(t, "shared.weight") or _find(t, "token_embd.weight") or _find(t, "encoder.embed_tokens.weight")
        vocab = emb.shape[0] if emb is not None and emb.shape else None
        variant = "umt5" if vocab and vocab > 200000 else "t5"
        if (
            vocab is None
            and _any(names, "relative_attention_bias")
            and _any(names, "block.1.layer.0.SelfAttention.relative")
        ):
            variant = "umt5"  # UMT5 has a relative attention bias in every block
        return _te("t5xxl", variant, details={"vocab": vocab, "width": _width(emb, 1)})
    # LLM vision towers (llama.cpp mmproj, or a Qwen2.5-VL "visual" part alone)
    if (_any(names, "v.blk.0.") and arch in ("clip", "")) or (
        _any(names, "visual.blocks.0.") and not _any(names, "layers.0.self_attn", "blk.0.attn_q")
    ):
        return _te("llm_vision", "qwen2.5-vl")
    # LLMs (HF names, or llama.cpp's "blk." in GGUF)
    if _any(names, "layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight") and not _any(names, "enc.blk."):
        emb = _find(t, "embed_tokens.weight") or _find(t, "token_embd.weight")
        hidden = _width(emb, 1)
        if arch:
            fam = {
                "qwen2vl": "qwen2.5-vl",
                "qwen25vl": "qwen2.5-vl",
                "qwen2": "qwen2.5-vl",
                "qwen3": "qwen3",
                "llama": "mistral",
                "mistral": "mistral",
                "mistral3": "mistral",
            }.get(arch)
        else:
            fam = None
        if fam is None:
            if _any(names, "self_attn.q_norm.weight", "attn_q_norm.weight"):
                fam = "qwen3"
            elif _any(names, "self_attn.q_proj.bias", "attn_q.bias"):
                fam = "qwen2.5-vl"
            else:
                fam = "mistral"
        c = _te("llm", fam, details={"hidden_size": hidden, "vision": _any(names, "visual.blocks.")})
        if arch:
            c.details["gguf_architecture"] = arch
        return c
    # CLIP text models (HF or OpenCLIP names) and vision towers
    text_emb = _find(t, "text_model.embeddings.token_embedding.weight")
    if text_emb is None:
        text_emb = next(
            (
                i
                for n, i in t.tensors.items()
                if n.endswith("token_embedding.weight") and "transformer.resblocks" not in n
            ),
            None,
        )
        if text_emb is None or not _any(names, "transformer.resblocks.", "encoder.layers."):
            text_emb = None
    if text_emb is not None and len(text_emb.shape) == 2:
        width = text_emb.shape[1]
        te_type = {768: "clip_l", 1280: "clip_g", 1024: "clip_h"}.get(width)
        if te_type is None:
            c = Classification("text_encoder", details={"width": width})
            c.warnings.append(f"a CLIP text model of unknown width {width}")
            return c
        return _te(te_type, None, details={"width": width, "vision": _any(names, "vision_model.", "visual.")})
    if _any(names, "vision_model.encoder.layers.", "visual.transformer.resblocks."):
        patch = _find(t, "vision_model.embeddings.patch_embedding.weight") or _find(t, "visual.conv1.weight")
        return _te("clip_vision", None, details={"width": _width(patch, 0)})
    return None


def _te(te_type: str, variant: str | None, details: dict[str, Any] | None = None) -> Classification:
    key = f"{te_type}:{variant}" if variant else te_type
    fits = TEXT_ENCODER_FITS.get(key, TEXT_ENCODER_FITS.get(te_type, ()))
    label = {
        "clip_l": "CLIP-L",
        "clip_g": "CLIP-G",
        "clip_h": "CLIP-H",
        "clip_vision": "CLIP vision",
        "t5xxl": "UMT5-XXL" if variant == "umt5" else "T5-XXL",
        "llm": {"qwen2.5-vl": "Qwen2.5-VL", "qwen3": "Qwen3", "mistral": "Mistral"}.get(variant or "", "LLM"),
        "llm_vision": "Qwen2.5-VL vision",
    }[te_type]
    c = Classification("text_encoder", label, fits, text_encoder_type=te_type, details=dict(details or {}))
    if variant:
        c.details["variant"] = variant
    return c


def classify_adapter(t: TensorTable) -> Classification | None:
    """PhotoMaker, LoRA, embedding or ControlNet: files whose names can look like a model's."""
    names = list(t.tensors)
    if not names:
        return None
    c = _photomaker(names)  # before LoRA: PhotoMaker files carry LoRA weights too
    if c is not None:
        return c
    for test in (_lora, _embedding, _controlnet):
        c = test(t, names)
        if c is not None:
            return c
    return None


def classify_component(t: TensorTable) -> Classification | None:
    """The kind of a file that is not a diffusion model (LoRA, VAE, text encoder...), or None."""
    c = classify_adapter(t)
    if c is not None:
        return c
    names = list(t.tensors)
    if not names:
        return None
    for test in (_vae, _taesd):
        c = test(t, names)
        if c is not None:
            return c
    c = _esrgan(names)
    if c is not None:
        return c
    return _text_encoder(t, names)


def contained_roles(names: list[str]) -> set[str]:
    """Companion roles a checkpoint already holds, from its tensor name prefixes."""
    roles: set[str] = set()
    for n in names:
        if n.startswith(("first_stage_model.", "vae.")):
            roles.add("vae")
        elif n.startswith("tae."):
            roles.add("taesd")
        elif n.startswith(("conditioner.embedders.1.", "cond_stage_model.1.", "text_encoders.clip_g.", "te.1.")):
            roles.add("clip_g")
        elif n.startswith("cond_stage_model.transformer.vision_model."):
            roles.add("clip_vision")
        elif n.startswith(("cond_stage_model.", "conditioner.embedders.0.", "text_encoders.clip_l.", "te.")):
            roles.add("clip_l")
        elif n.startswith("text_encoders.t5xxl."):
            roles.add("t5xxl")
        elif n.startswith("text_encoders.llm.visual."):
            roles.add("llm_vision")
        elif n.startswith("text_encoders.llm."):
            roles.add("llm")
    return roles
