"""The options of ``sdrest generate``: sd.cpp's CLI's options, declared once.

Every option of sd.cpp's ``sd-cli`` (``examples/cli/main.cpp`` and ``examples/common/``) is
here under its long name and short flag, with sd-cli's default where that default is
sd-cli's own (seed 42, skip layers ``[7,8,9]`` ...), so a user's sd-cli command line
runs unchanged after replacing ``sd-cli`` with ``sdrest generate``. Each option says where
its value goes:

``ctx:NAME``      a ``StableDiffusion(...)`` keyword
``gen:NAME``      a generation keyword (``txt2img``/``img2img``/``generate_video``)
``tiling:FIELD``  a field of ``vae_tiling`` (used with ``--vae-tiling``)
``hires:FIELD``   a field of ``hires`` (used with ``--hires``)
``cli``           read by the command itself (files, names, outputs)

The argparse parser, the routing of values and the docs' option list all derive from
:data:`OPTIONS`; ``tests/test_generate_cli.py`` checks it against ``sd-cli --help``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["GROUPS", "OPTIONS", "Option", "add_options", "parse_float_list", "parse_layers", "parse_pair",
           "route"]

#: sd.cpp's run modes; ``sdrest generate`` runs the two that generate.
MODES = ("img_gen", "vid_gen", "convert", "upscale", "metadata")
#: Other commands that do what sd-cli's other modes do.
MODE_COMMANDS = {"convert": "sdrest convert", "upscale": "sdrest upscale", "metadata": "sdrest detect"}
#: sd-cli's cache modes (``--cache-mode``).
CACHE_MODES = ("easycache", "ucache", "dbcache", "taylorseer", "cache-dit", "spectrum")


def _c_names(table: str) -> Optional[list[str]]:
    """Names from the C library's own tables, or None where the extension is not built (help still works)."""
    try:
        from sdrest import names
    except ImportError:
        return None
    return list(getattr(names, table)())


def _choice(table: str, what: str) -> Callable[[str], str]:
    """An argparse type that accepts the names of a C enum table (checked when parsed)."""

    def parse(value: str) -> str:
        valid = _c_names(table)
        if valid is not None and value not in valid:
            raise argparse.ArgumentTypeError(f"invalid {what} {value!r} (choose from {', '.join(valid)})")
        return value

    parse.__name__ = what
    return parse


def _fixed_choice(valid: Sequence[str], what: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in valid:
            raise argparse.ArgumentTypeError(f"invalid {what} {value!r} (choose from {', '.join(valid)})")
        return value

    parse.__name__ = what
    return parse


def parse_float_list(value: str) -> list[float]:
    """``--sigmas``: ``"14.6,7.8,3.5,0"`` or ``"[14.6, 7.8]"`` -> floats, as sd-cli reads them."""
    text = value.strip()
    text = text[1:] if text.startswith("[") else text
    text = text[:-1] if text.endswith("]") else text
    out = []
    for item in text.split(","):
        item = item.strip()
        if item:
            try:
                out.append(float(item))
            except ValueError:
                raise argparse.ArgumentTypeError(f"invalid float value {item!r}") from None
    if not out and text:
        raise argparse.ArgumentTypeError(f"could not parse any value from {value!r}")
    return out


def parse_layers(value: str) -> list[int]:
    """``--skip-layers``: ``"[7,8,9]"`` (brackets required, as in sd-cli) -> ints."""
    if not (value.startswith("[") and value.endswith("]")):
        raise argparse.ArgumentTypeError(f"expected a list like [7,8,9], got {value!r}")
    try:
        return [int(t) for t in re.split(r"[, ]+", value[1:-1]) if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers in {value!r}") from None


def parse_pair(kind: type) -> Callable[[str], tuple[Any, Any]]:
    """``--vae-tile-size 32x48`` -> (32, 48); ``32`` -> (32, 32)."""

    def parse(value: str) -> tuple[Any, Any]:
        try:
            if "x" in value:
                x, y = value.split("x", 1)
                return kind(x), kind(y)
            return kind(value), kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected [X]x[Y], got {value!r}") from None

    parse.__name__ = "size"
    return parse


@dataclass(frozen=True)
class Option:
    """One command-line option: its flags, how its value is read, sd-cli's default, where it goes.

    ``kind`` is ``str``, ``int``, ``float``, ``"flag"`` (no value), ``"append"`` (a string,
    repeatable) or a parse function. A flag puts ``set_value`` into its target when given;
    ``default`` (not None) is routed when the option is not given, as sd-cli passes it.
    """

    long: str
    target: str
    help: str
    kind: Any = str
    short: Optional[str] = None
    aliases: tuple[str, ...] = ()
    default: Any = None
    set_value: Any = True
    metavar: Optional[str] = None
    group: str = "generation"

    @property
    def dest(self) -> str:
        """The argparse attribute: the long name with dashes as underscores."""
        return self.long.lstrip("-").replace("-", "_")

    @property
    def flags(self) -> list[str]:
        """Every spelling of the option."""
        return [f for f in (self.short, self.long, *self.aliases) if f]


def _o(long: str, target: str, help: str, kind: Any = str, **kw: Any) -> Option:
    return Option(long, target, help, kind, **kw)


_SAMPLER = _choice("samplers", "sampler")
_SCHEDULER = _choice("schedulers", "scheduler")
_RNG = _choice("rng_table", "rng")

#: Every option, grouped as sd-cli's help groups them.
OPTIONS: tuple[Option, ...] = (
    # -- what sd-cli calls CLI options -------------------------------------------------------------
    _o("--output", "cli", "where to write: a path, a printf pattern (out_%%03d.png) or {seed}/{index} fields "
       "(default: ./output.png); .png, .jpg or .webp; a video as an animated .webp or PNG frames",
       short="-o", default="output.png", metavar="PATH", group="output"),
    _o("--output-begin-idx", "cli", "first index of an image sequence (default: 0)", int, metavar="N", group="output"),
    _o("--mode", "cli", "run mode: img_gen (default) or vid_gen; sd-cli's convert, upscale and metadata modes are "
       "the sdrest convert, upscale and detect commands", _fixed_choice(MODES, "mode"), short="-M",
       default="img_gen", metavar="MODE", group="output"),
    _o("--preview", "cli", "write previews while sampling: none, proj, tae or vae (default: none)",
       _choice("preview_table", "preview method"), metavar="METHOD", group="output"),
    _o("--preview-path", "cli", "where previews go (default: ./preview.png)", default="preview.png",
       metavar="PATH", group="output"),
    _o("--preview-interval", "gen:preview_interval", "steps between two previews (default: 1)", int, metavar="N",
       group="output"),
    _o("--preview-noisy", "gen:preview_noisy", "preview the noisy latents instead of the denoised ones", "flag",
       group="output"),
    _o("--taesd-preview-only", "ctx:tae_preview_only", "use TAESD for previews only, not for the final decode",
       "flag", group="output"),
    _o("--canny", "cli", "run the Canny edge detector on the control image first", "flag", group="output"),
    _o("--disable-image-metadata", "cli", "do not write the parameters into the image files", "flag",
       group="output"),
    _o("--color", "cli", "accepted for sd-cli compatibility (sdrest colours only a terminal, by itself)", "flag",
       group="output"),
    _o("--convert-name", "cli", "sd-cli's convert mode only: see sdrest convert", "flag", group="output"),
    _o("--image", "cli", "sd-cli's metadata mode only: see sdrest detect", metavar="PATH", group="output"),
    _o("--metadata-format", "cli", "sd-cli's metadata mode only", metavar="FORMAT", group="output"),
    _o("--metadata-raw", "cli", "sd-cli's metadata mode only", "flag", group="output"),
    _o("--metadata-brief", "cli", "sd-cli's metadata mode only", "flag", group="output"),
    _o("--metadata-all", "cli", "sd-cli's metadata mode only", "flag", group="output"),
    # -- context: model files ------------------------------------------------------------------------
    _o("--model", "cli", "the model: a file, or a model id or name in --models-dir (its companions are found there)",
       short="-m", metavar="MODEL", group="model"),
    _o("--diffusion-model", "cli", "a standalone diffusion model file (or id in --models-dir)", metavar="PATH",
       group="model"),
    _o("--high-noise-diffusion-model", "ctx:high_noise_diffusion_model", "the Wan 2.2 high-noise diffusion model",
       metavar="PATH", group="model"),
    _o("--vae", "ctx:vae", "a standalone VAE", metavar="PATH", group="model"),
    _o("--taesd", "ctx:taesd", "a Tiny AutoEncoder for fast (lower quality) decoding", aliases=("--tae",),
       metavar="PATH", group="model"),
    _o("--clip_l", "ctx:clip_l", "the CLIP-L text encoder", metavar="PATH", group="model"),
    _o("--clip_g", "ctx:clip_g", "the CLIP-G text encoder", metavar="PATH", group="model"),
    _o("--clip_vision", "ctx:clip_vision", "the CLIP vision encoder", metavar="PATH", group="model"),
    _o("--t5xxl", "ctx:t5xxl", "the T5-XXL (or UMT5) text encoder", metavar="PATH", group="model"),
    _o("--llm", "ctx:llm", "the LLM text encoder (Qwen2.5-VL for Qwen Image, Mistral for Flux.2 ...)",
       aliases=("--qwen2vl",), metavar="PATH", group="model"),
    _o("--llm_vision", "ctx:llm_vision", "the LLM's vision tower", aliases=("--qwen2vl_vision",), metavar="PATH",
       group="model"),
    _o("--control-net", "ctx:control_net", "a ControlNet model", metavar="PATH", group="model"),
    _o("--photo-maker", "ctx:photo_maker", "a PhotoMaker model", metavar="PATH", group="model"),
    _o("--upscale-model", "cli", "an ESRGAN model to upscale the results with", metavar="PATH", group="model"),
    _o("--embd-dir", "cli", "a folder of textual-inversion embeddings (.safetensors, .gguf, .pt)", metavar="DIR",
       group="model"),
    _o("--lora-model-dir", "cli", "where <lora:NAME:WEIGHT> in the prompt looks for NAME (default: .)",
       default=".", metavar="DIR", group="model"),
    _o("--hires-upscalers-dir", "cli", "where a model name given to --hires-upscaler is looked for", metavar="DIR",
       group="model"),
    _o("--tensor-type-rules", "ctx:tensor_type_rules", "weight type per tensor pattern (^vae\\.=f16,model\\.=q8_0)",
       metavar="RULES", group="model"),
    # -- context: how it runs -------------------------------------------------------------------------
    _o("--threads", "cli", "CPU threads (default: the physical cores available)", int, short="-t", metavar="N",
       group="context"),
    _o("--type", "ctx:wtype", "weight type to load with (f16, q8_0, q4_K ...; default: the file's)",
       _choice("weight_types", "weight type"), metavar="TYPE", group="context"),
    _o("--rng", "ctx:rng", "random number generator: std_default, cuda or cpu (default: cuda)", _RNG,
       metavar="RNG", group="context"),
    _o("--sampler-rng", "ctx:sampler_rng", "the sampler's RNG (default: --rng)", _RNG, metavar="RNG",
       group="context"),
    _o("--prediction", "ctx:prediction", "prediction type override (eps, v, edm_v, sd3_flow, flux_flow ...)",
       _choice("prediction_table", "prediction"), metavar="TYPE", group="context"),
    _o("--lora-apply-mode", "ctx:lora_apply_mode", "auto (default), immediately or at_runtime",
       _choice("lora_apply_mode_table", "lora apply mode"), metavar="MODE", group="context"),
    _o("--offload-to-cpu", "ctx:offload_params_to_cpu", "keep weights in RAM, load them into VRAM when needed",
       "flag", group="context"),
    _o("--max-vram", "ctx:max_vram", "VRAM budget in GiB for graph-cut execution (0: no splitting)", float,
       metavar="GIB", group="context"),
    _o("--mmap", "ctx:enable_mmap", "memory-map the model files", "flag", group="context"),
    _o("--control-net-cpu", "ctx:keep_control_net_on_cpu", "keep the ControlNet on the CPU", "flag",
       group="context"),
    _o("--clip-on-cpu", "ctx:keep_clip_on_cpu", "keep the text encoders on the CPU", "flag", group="context"),
    _o("--vae-on-cpu", "ctx:keep_vae_on_cpu", "keep the VAE on the CPU", "flag", group="context"),
    _o("--fa", "ctx:flash_attn", "flash attention everywhere", "flag", group="context"),
    _o("--diffusion-fa", "ctx:diffusion_flash_attn", "flash attention in the diffusion model only", "flag",
       group="context"),
    _o("--diffusion-conv-direct", "ctx:diffusion_conv_direct", "direct convolutions in the diffusion model",
       "flag", group="context"),
    _o("--vae-conv-direct", "ctx:vae_conv_direct", "direct convolutions in the VAE", "flag", group="context"),
    _o("--circular", "cli", "circular padding on both axes (seamless tiles)", "flag", group="context"),
    _o("--circularx", "ctx:circular_x", "circular padding on the x axis only", "flag", group="context"),
    _o("--circulary", "ctx:circular_y", "circular padding on the y axis only", "flag", group="context"),
    _o("--force-sdxl-vae-conv-scale", "ctx:force_sdxl_vae_conv_scale", "force the conv scale of the SDXL VAE",
       "flag", group="context"),
    _o("--chroma-disable-dit-mask", "ctx:chroma_use_dit_mask", "Chroma: no DiT mask", "flag", set_value=False,
       group="context"),
    _o("--chroma-enable-t5-mask", "ctx:chroma_use_t5_mask", "Chroma: use the T5 mask", "flag", group="context"),
    _o("--chroma-t5-mask-pad", "ctx:chroma_t5_mask_pad", "Chroma: T5 mask padding", int, metavar="N",
       group="context"),
    _o("--qwen-image-zero-cond-t", "ctx:qwen_image_zero_cond_t", "Qwen Image: zero_cond_t", "flag",
       group="context"),
    # -- generation -------------------------------------------------------------------------------------
    _o("--prompt", "cli", "the prompt (or give it as the first argument); <lora:NAME:WEIGHT> applies a LoRA",
       short="-p", metavar="TEXT"),
    _o("--negative-prompt", "gen:negative_prompt", "the negative prompt", short="-n", metavar="TEXT"),
    _o("--init-img", "cli", "an initial image: img2img (or the first frame of a video)", short="-i",
       metavar="PATH"),
    _o("--end-img", "cli", "the last frame of a video (flf2v)", metavar="PATH"),
    _o("--mask", "cli", "an inpainting mask: white is repainted", metavar="PATH"),
    _o("--control-image", "cli", "the ControlNet's image", metavar="PATH"),
    _o("--control-video", "cli", "a folder of control frames, in name order (VACE)", metavar="DIR"),
    _o("--ref-image", "cli", "a reference image (Flux Kontext, Qwen edit); repeatable", "append", short="-r",
       metavar="PATH"),
    _o("--pm-id-images-dir", "cli", "PhotoMaker: a folder of ID images", metavar="DIR"),
    _o("--pm-id-embed-path", "gen:pm_id_embed_path", "PhotoMaker v2: the ID embedding", metavar="PATH"),
    _o("--pm-style-strength", "gen:pm_style_strength", "PhotoMaker: style strength (default: 20)", float,
       metavar="X"),
    _o("--width", "cli", "width in pixels (default: 512, or the init image's)", int, short="-W", metavar="N"),
    _o("--height", "cli", "height in pixels (default: 512, or the init image's)", int, short="-H", metavar="N"),
    _o("--steps", "gen:steps", "sampling steps (default: 20)", int, metavar="N"),
    _o("--cfg-scale", "gen:cfg_scale", "classifier-free guidance scale (default: 7.0)", float, metavar="X"),
    _o("--img-cfg-scale", "gen:img_cfg_scale", "image guidance scale, inpaint / instruct-pix2pix models "
       "(default: --cfg-scale)", float, metavar="X"),
    _o("--guidance", "gen:guidance", "distilled guidance, for models that take it (default: 3.5)", float,
       metavar="X"),
    _o("--sampling-method", "gen:sampler", "the sampler (default: the model's: euler for Flux/SD3/Wan, euler_a "
       "otherwise)", _SAMPLER, metavar="NAME"),
    _o("--scheduler", "gen:scheduler", "the sigma schedule (default: the model's)", _SCHEDULER, metavar="NAME"),
    _o("--sigmas", "gen:sigmas", "custom sigmas, comma-separated (14.61,7.8,3.5,0.0)", parse_float_list,
       metavar="LIST"),
    _o("--seed", "cli", "RNG seed (default: 42; below 0: a random one); image i of a batch uses seed + i", int,
       short="-s", default=42, metavar="N"),
    _o("--batch-count", "gen:batch_count", "images to make (default: 1)", int, short="-b", metavar="N"),
    _o("--clip-skip", "gen:clip_skip", "CLIP layers to skip (default: the model's: 1 for SD1, 2 for SD2)", int,
       metavar="N"),
    _o("--strength", "cli", "how much of the init image is repainted, 0 to 1 (default: 0.75)", float,
       default=0.75, metavar="X"),
    _o("--control-strength", "gen:control_strength", "ControlNet strength (default: 0.9)", float, metavar="X"),
    _o("--eta", "gen:eta", "noise multiplier of the ancestral samplers", float, metavar="X"),
    _o("--flow-shift", "gen:flow_shift", "shift for flow models (SD3, Wan; default: the model's)", float,
       metavar="X"),
    _o("--timestep-shift", "gen:shifted_timestep", "timestep shift for NitroFusion models (default: 0)", int,
       metavar="N"),
    _o("--slg-scale", "gen:slg_scale", "skip-layer guidance scale, DiT models (default: 0: off)", float,
       metavar="X"),
    _o("--skip-layers", "gen:skip_layers", "layers skipped by SLG (default: [7,8,9])", parse_layers,
       default=[7, 8, 9], metavar="LIST"),
    _o("--skip-layer-start", "gen:skip_layer_start", "where SLG starts (default: 0.01)", float, metavar="X"),
    _o("--skip-layer-end", "gen:skip_layer_end", "where SLG ends (default: 0.2)", float, metavar="X"),
    _o("--increase-ref-index", "gen:increase_ref_index", "number reference images from 1 in order", "flag"),
    _o("--disable-auto-resize-ref-image", "gen:auto_resize_ref_image", "do not resize reference images", "flag",
       set_value=False, default=True),
    _o("--vae-tiling", "tiling:enabled", "decode in tiles (less memory)", "flag"),
    _o("--vae-tile-size", "cli", "VAE tile size, [X]x[Y] in latent pixels (default: 32x32)", parse_pair(int),
       metavar="XxY"),
    _o("--vae-relative-tile-size", "cli", "VAE tile size relative to the image ([X]x[Y]; < 1: a fraction, "
       ">= 1: tiles per side)", parse_pair(float), metavar="XxY"),
    _o("--vae-tile-overlap", "tiling:target_overlap", "VAE tile overlap, a fraction of a tile (default: 0.5)",
       float, metavar="X"),
    _o("--cache-mode", "cli", "step cache: easycache, ucache (UNet), dbcache, taylorseer, cache-dit (DiT), "
       "spectrum", _fixed_choice(CACHE_MODES, "cache mode"), metavar="MODE"),
    _o("--cache-option", "cli", "cache settings, key=value,...: threshold, start, end, decay, relative, reset, "
       "Fn, Bn, warmup, w, m, lam, window, flex, stop", metavar="LIST"),
    _o("--scm-mask", "cli", "cache-dit's steps mask, 1=compute 0=may cache (1,1,1,0,0,1)", metavar="LIST"),
    _o("--scm-policy", "cli", "cache-dit's SCM policy: dynamic (default) or static",
       _fixed_choice(("dynamic", "static"), "SCM policy"), metavar="POLICY"),
    _o("--hires", "cli", "hires fix: generate, upscale, and sample again", "flag"),
    _o("--hires-upscaler", "cli", "Latent (default), Latent (nearest) ..., Lanczos, Nearest, or a model name "
       "in --hires-upscalers-dir", default="Latent", metavar="NAME"),
    _o("--hires-scale", "hires:scale", "hires upscale factor (default: 2.0)", float, metavar="X"),
    _o("--hires-width", "hires:target_width", "hires target width (default: 0: use --hires-scale)", int,
       metavar="N"),
    _o("--hires-height", "hires:target_height", "hires target height (default: 0: use --hires-scale)", int,
       metavar="N"),
    _o("--hires-steps", "hires:steps", "steps of the second pass (default: 0: --steps)", int, metavar="N"),
    _o("--hires-denoising-strength", "hires:denoising_strength", "second-pass denoising (default: 0.7)", float,
       metavar="X"),
    _o("--hires-upscale-tile-size", "hires:upscale_tile_size", "tile size of a model upscaler (default: 128)", int,
       metavar="N"),
    _o("--upscale-repeats", "cli", "run --upscale-model this many times (default: 1)", int, default=1,
       metavar="N"),
    _o("--upscale-tile-size", "cli", "tile size of --upscale-model (default: 128)", int, default=128, metavar="N"),
    # -- video --------------------------------------------------------------------------------------------
    _o("--video-frames", "gen:video_frames", "frames of a video (default: 1)", int, default=1, metavar="N",
       group="video"),
    _o("--fps", "cli", "frames a second of an animated .webp (default: 16)", int, default=16, metavar="N",
       group="video"),
    _o("--moe-boundary", "gen:moe_boundary", "Wan 2.2 MoE timestep boundary (default: 0.875)", float,
       metavar="X", group="video"),
    _o("--vace-strength", "gen:vace_strength", "Wan VACE strength (default: 1.0)", float, metavar="X",
       group="video"),
    _o("--high-noise-steps", "gen:high_noise_steps", "high-noise expert: steps (default: auto)", int,
       metavar="N", group="video"),
    _o("--high-noise-cfg-scale", "gen:high_noise_cfg_scale", "high-noise expert: CFG scale", float, metavar="X",
       group="video"),
    _o("--high-noise-img-cfg-scale", "gen:high_noise_img_cfg_scale", "high-noise expert: image CFG scale", float,
       metavar="X", group="video"),
    _o("--high-noise-guidance", "gen:high_noise_guidance", "high-noise expert: distilled guidance", float,
       metavar="X", group="video"),
    _o("--high-noise-sampling-method", "gen:high_noise_sampler", "high-noise expert: sampler", _SAMPLER,
       metavar="NAME", group="video"),
    _o("--high-noise-eta", "gen:high_noise_eta", "high-noise expert: eta", float, metavar="X", group="video"),
    _o("--high-noise-slg-scale", "gen:high_noise_slg_scale", "high-noise expert: SLG scale", float, metavar="X",
       group="video"),
    _o("--high-noise-skip-layers", "gen:high_noise_skip_layers", "high-noise expert: SLG layers (default: [7,8,9])",
       parse_layers, default=[7, 8, 9], metavar="LIST", group="video"),
    _o("--high-noise-skip-layer-start", "gen:high_noise_skip_layer_start", "high-noise expert: SLG start", float,
       metavar="X", group="video"),
    _o("--high-noise-skip-layer-end", "gen:high_noise_skip_layer_end", "high-noise expert: SLG end", float,
       metavar="X", group="video"),
)

#: Help groups, in the order ``--help`` shows them.
GROUPS = {
    "output": "output (sd-cli's CLI options)",
    "model": "model files",
    "context": "how the model runs",
    "generation": "generation",
    "video": "video (-M vid_gen, Wan)",
}


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add every option of :data:`OPTIONS` to ``parser``; values not given stay None
    (the defaults apply in :func:`route` and :func:`value_of`)."""
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS.items()}
    for option in OPTIONS:
        group = groups[option.group]
        if option.kind == "flag":
            group.add_argument(*option.flags, dest=option.dest, action="store_true", default=None,
                               help=option.help)
        elif option.kind == "append":
            group.add_argument(*option.flags, dest=option.dest, action="append", metavar=option.metavar,
                               help=option.help)
        else:
            group.add_argument(*option.flags, dest=option.dest, type=option.kind, metavar=option.metavar,
                               help=option.help)


def value_of(args: argparse.Namespace, long: str) -> Any:
    """The value of option ``long`` in parsed ``args``: given, else its sd-cli default."""
    option = _BY_LONG[long]
    value = getattr(args, option.dest, None)
    if value is None:
        return option.default
    return option.set_value if option.kind == "flag" else value


def was_given(args: argparse.Namespace, long: str) -> bool:
    """True when the user gave option ``long``."""
    return getattr(args, _BY_LONG[long].dest, None) is not None


def route(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The values of every routed option, by target kind: ``{"ctx": {...}, "gen": {...}, "tiling": {...},
    "hires": {...}}`` (``cli`` options are read with :func:`value_of` by the command)."""
    out: dict[str, dict[str, Any]] = {"ctx": {}, "gen": {}, "tiling": {}, "hires": {}}
    for option in OPTIONS:
        if option.target == "cli":
            continue
        value = value_of(args, option.long)
        if value is None:
            continue
        kind, _, name = option.target.partition(":")
        out[kind][name] = value
    return out


_BY_LONG = {option.long: option for option in OPTIONS}
