"""``sdrest generate PROMPT -m MODEL [-o OUT]``: images (and Wan videos) from the terminal.

Takes every option of sd.cpp's own CLI under the same names (``sdrest/generate_options.py``),
so ``sd-cli ARGS`` and ``sdrest generate ARGS`` make the same pixels. Adds a model id or
name from ``--models-dir`` for ``-m``, a progress bar, outputs that carry their
parameters (A1111's ``parameters`` text), ``{seed}`` in output names, no overwriting
without ``--force``, and Ctrl-C that stops within a step and leaves no partial file.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from sdrest import generate_inputs as inputs
from sdrest.generate_models import default_models_dir, resolve_model_files
from sdrest.generate_options import MODE_COMMANDS, add_options, route, value_of, was_given
from sdrest.terminal import ProgressDisplay, Verbosity, add_arguments, configure_logging, verbosity_of

__all__ = ["ContextCache", "GenerateJob", "generate", "plan", "register"]

LOG = logging.getLogger("sdrest.generate")

EXAMPLES = """\
examples:
  sdrest generate "a lovely cat" -m models/checkpoints/v1-5.safetensors -o cat.png
  sdrest generate "a lovely cat" -m v1-5 --models-dir models -b 4 -o "cat-{seed}.png"
  sdrest generate "a cat <lora:style:0.8>" -m v1-5.safetensors --lora-model-dir models/lora
  sdrest generate "as a watercolor" -m v1-5.safetensors -i photo.png --strength 0.6 -o painted.png
  sdrest generate "a house" -m v1-5.safetensors --control-net cn.safetensors --control-image edges.png --canny
  sdrest generate "a cat walking" -M vid_gen -m wan2.1-t2v-1.3b --models-dir models --video-frames 33 -o cat.webp

Any sd-cli command line runs the same after replacing `sd-cli` with `sdrest generate`.
"""

# Keywords each library call takes (others, given for the other mode, are ignored with a warning).
_IMAGE_ONLY = {"batch_count", "control_strength", "increase_ref_index", "auto_resize_ref_image", "pm_id_embed_path",
               "pm_style_strength"}
_VIDEO_ONLY = {"video_frames", "moe_boundary", "vace_strength"}


def register(subparsers: Any) -> None:
    """Add the ``generate`` subcommand to the ``sdrest`` parser."""
    parser = subparsers.add_parser(
        "generate", help="make images (or a Wan video) from a prompt",
        description="Generate images from a prompt with stable-diffusion.cpp. Takes every sd-cli option.",
        usage="sdrest generate PROMPT -m MODEL [-o OUT] [options]",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("prompt_text", nargs="?", metavar="PROMPT", help="the prompt (same as -p)")
    parser.add_argument("--models-dir", metavar="DIR", default=default_models_dir(),
                        help="where -m NAME is looked up (default: $SDREST_MODELS_DIR, or ./models if present)")
    parser.add_argument("--force", action="store_true", help="overwrite output files that exist")
    add_arguments(parser)
    add_options(parser)
    parser.set_defaults(func=run)


@dataclass
class GenerateJob:
    """Everything one ``sdrest generate`` run does, resolved from its command line before any model loads."""

    mode: str
    prompt: str
    prompt_as_given: str
    context: dict[str, Any]
    call: dict[str, Any]
    init_image: Any = None
    mask: Any = None
    strength: float = 0.75
    outputs: list[Path] = field(default_factory=list)
    output_pattern: str = "output.png"
    begin_index: int = 0
    force: bool = False
    animated: bool = False
    fps: int = 16
    metadata: bool = True
    upscale_model: Optional[str] = None
    upscale_repeats: int = 1
    upscale_tile_size: int = 128
    preview_path: Optional[Path] = None


def _warn_unused(args: argparse.Namespace, mode: str) -> None:
    for long, what in (("--convert-name", "convert"), ("--image", "metadata"), ("--metadata-format", "metadata"),
                       ("--metadata-raw", "metadata"), ("--metadata-brief", "metadata"),
                       ("--metadata-all", "metadata")):
        if was_given(args, long):
            LOG.warning("%s only applies to sd-cli's %s mode (%s); ignored", long, what, MODE_COMMANDS[what])
    if mode == "img_gen":
        for long in ("--video-frames", "--fps", "--moe-boundary", "--vace-strength", "--end-img", "--control-video",
                     "--high-noise-steps", "--high-noise-cfg-scale", "--high-noise-sampling-method"):
            if was_given(args, long):
                LOG.warning("%s only applies to -M vid_gen; ignored", long)
    else:
        for long in ("--batch-count", "--control-image", "--ref-image", "--hires", "--pm-id-images-dir",
                     "--mask", "--control-net"):
            if was_given(args, long):
                LOG.warning("%s does not apply to -M vid_gen; ignored", long)


def _prompt(args: argparse.Namespace) -> str:
    given = args.prompt_text
    flag = value_of(args, "--prompt")
    if given is not None and flag is not None and given != flag:
        raise ValueError("prompt: give it once, either as the first argument or with -p")
    return given if given is not None else (flag or "")


def _seed(args: argparse.Namespace) -> int:
    seed = value_of(args, "--seed")
    return secrets.randbelow(2**31) if seed < 0 else seed


def _hires(args: argparse.Namespace, routed: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    if not value_of(args, "--hires"):
        return None
    name = value_of(args, "--hires-upscaler") or "Latent"
    from sdrest import names

    settings = dict(routed)
    if name.strip().lower() in names.hires_upscaler_table():
        if name.strip().lower() == "none":
            return None
        settings["upscaler"] = name
    else:
        folder = value_of(args, "--hires-upscalers-dir")
        found = inputs.find_model_file(name, folder, (".gguf", ".safetensors", ".pt", ".pth"))
        if found is None:
            raise FileNotFoundError(f"--hires-upscaler: {name!r} is no built-in upscaler and no model in "
                                    f"{folder or '(no --hires-upscalers-dir)'!r}")
        settings.update(upscaler="model", model_path=str(found))
    return settings


def _outputs(job: GenerateJob, seeds: list[int]) -> tuple[list[Path], bool]:
    """The files for images with ``seeds``, and whether they go into one animated WebP."""
    from sdrest.imagefiles import has_pattern, output_paths

    target = job.output_pattern
    suffix = Path(target).suffix.lower()
    if job.mode == "vid_gen" and len(seeds) > 1 and not has_pattern(target):
        if suffix == ".webp":
            return [Path(target)], True
        if suffix in (".avi", ".webm"):
            raise ValueError(f"output: sdrest writes a video as an animated .webp or as frames "
                             f"(-o frame_%03d.png), not {suffix}")
    return output_paths(target, seeds, begin_index=job.begin_index), False


def _check_writable(paths: list[Path], force: bool) -> None:
    for path in paths:
        folder = path.parent if str(path.parent) else Path(".")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PermissionError(f"output: cannot create folder {str(folder)!r}: {exc.strerror}") from None
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"output: cannot write into {str(folder)!r}")
        if path.is_dir():
            raise IsADirectoryError(f"output: {str(path)!r} is a folder")
        if path.exists() and not force:
            raise FileExistsError(f"output: {str(path)!r} exists (use --force to overwrite)")


def plan(args: argparse.Namespace) -> GenerateJob:
    """Resolve a parsed command line into a :class:`GenerateJob`: files found, images read, outputs named.

    Raises ``ValueError``/``OSError`` naming the option for anything wrong, before any model loads.
    """
    mode = value_of(args, "--mode")
    if mode in MODE_COMMANDS:
        raise ValueError(f"-M {mode}: use `{MODE_COMMANDS[mode]}` for that")
    _warn_unused(args, mode)
    routed = route(args)
    context: dict[str, Any] = dict(routed["ctx"])
    call: dict[str, Any] = dict(routed["gen"])

    prompt_as_given = _prompt(args)
    prompt, loras = inputs.extract_loras(prompt_as_given, value_of(args, "--lora-model-dir"))
    from sdrest.diffusion import LoRA

    call["loras"] = [LoRA(path, weight, high) for path, weight, high in loras]
    context.update(resolve_model_files(value_of(args, "--model"), value_of(args, "--diffusion-model"),
                                       args.models_dir))
    threads = value_of(args, "--threads")
    context["n_threads"] = threads if threads and threads > 0 else None
    if value_of(args, "--circular"):
        context["circular_x"] = context["circular_y"] = True
    embeddings = inputs.embeddings_in(value_of(args, "--embd-dir"))
    if embeddings:
        context["embeddings"] = embeddings

    # Images, in sd-cli's order: each may set the size when -W/-H are not both given.
    # sd-cli's rule: -W and -H count only when both are set; else the first image read sets both; else 512.
    width, height = value_of(args, "--width") or -1, value_of(args, "--height") or -1
    size_set = width > 0 and height > 0
    job = GenerateJob(mode=mode, prompt=prompt, prompt_as_given=prompt_as_given, context=context, call=call)

    def load_and_size(path: str, argument: str, resize: bool = True) -> Any:
        nonlocal width, height, size_set
        image = inputs.load_image(path, argument, (width, height) if resize and size_set else None)
        if not size_set:
            height, width = image.shape[:2]
            size_set = True
        return image

    init = value_of(args, "--init-img")
    end = value_of(args, "--end-img")
    refs = value_of(args, "--ref-image") or []
    job.init_image = load_and_size(init, "init-img") if init else None
    end_image = load_and_size(end, "end-img") if end and mode == "vid_gen" else None
    ref_images = [load_and_size(r, "ref-image", resize=False) for r in refs] if mode == "img_gen" else []
    width, height = (width if width > 0 else 512), (height if height > 0 else 512)
    call["width"], call["height"] = width, height
    mask = value_of(args, "--mask")
    if mask and mode == "img_gen":
        job.mask = inputs.load_mask(mask, (width, height))
    control = value_of(args, "--control-image")
    if control and mode == "img_gen":
        control_image: Any = inputs.load_image(control, "control-image", (width, height))
        if value_of(args, "--canny"):
            from sdrest.preprocess import preprocess_canny

            control_image = preprocess_canny(control_image)
        call["control_image"] = control_image
    if ref_images:
        call["ref_images"] = ref_images
    pm_dir = value_of(args, "--pm-id-images-dir")
    if pm_dir and mode == "img_gen":
        call["pm_id_images"] = inputs.load_folder(pm_dir, "pm-id-images-dir")
    control_video = value_of(args, "--control-video")

    seed = _seed(args)
    call["seed"] = seed
    job.strength = value_of(args, "--strength")
    tiling = routed["tiling"]
    if tiling.get("enabled"):
        tile = value_of(args, "--vae-tile-size")
        if tile:
            tiling["tile_size_x"], tiling["tile_size_y"] = tile
        relative = value_of(args, "--vae-relative-tile-size")
        if relative:
            tiling["rel_size_x"], tiling["rel_size_y"] = relative
        call["vae_tiling"] = tiling
    cache = inputs.cache_settings(value_of(args, "--cache-mode"), value_of(args, "--cache-option"),
                                  value_of(args, "--scm-mask"), value_of(args, "--scm-policy"))
    if cache:
        call["cache"] = cache
    preview = value_of(args, "--preview")
    if preview and preview != "none":
        call["preview_mode"] = preview
        job.preview_path = Path(value_of(args, "--preview-path"))
    else:
        call.pop("preview_interval", None)
        call.pop("preview_noisy", None)

    if mode == "img_gen":
        hires = _hires(args, routed["hires"])
        if hires:
            call["hires"] = hires
        for key in _VIDEO_ONLY | {k for k in call if k.startswith("high_noise_")}:
            call.pop(key, None)
        count = call.get("batch_count", 1)
        seeds = [seed + i for i in range(count)]
    else:
        if end_image is not None:
            call["end_image"] = end_image
        if control_video:
            call["control_frames"] = inputs.load_folder(control_video, "control-video", (width, height),
                                                        call.get("video_frames", 1))
        if job.init_image is not None:
            call["strength"] = job.strength
        steps = call.get("high_noise_steps")
        if steps is not None and steps <= 0:
            call.pop("high_noise_steps")  # sd-cli's -1: auto
        for key in _IMAGE_ONLY:
            call.pop(key, None)
        # A video has as many frames as asked (the Wan VAE rounds them up to 4k + 1).
        frames = call.get("video_frames", 1)
        seeds = [seed] * max(frames, 1)
    job.fps = value_of(args, "--fps")
    if job.fps <= 0:
        raise ValueError("--fps: must be positive")
    job.metadata = not value_of(args, "--disable-image-metadata")
    job.upscale_model = value_of(args, "--upscale-model")
    job.upscale_repeats = value_of(args, "--upscale-repeats")
    job.upscale_tile_size = value_of(args, "--upscale-tile-size")
    if job.upscale_repeats < 1 or job.upscale_tile_size < 1:
        raise ValueError("--upscale-repeats and --upscale-tile-size: must be at least 1")
    job.output_pattern = value_of(args, "--output")
    job.begin_index = value_of(args, "--output-begin-idx") or 0
    if job.begin_index < 0:
        raise ValueError("--output-begin-idx: must be non-negative")
    job.force = bool(args.force)
    job.outputs, job.animated = _outputs(job, seeds)
    _check_writable(job.outputs, job.force)
    return job


class ContextCache:
    """Keeps the last ``StableDiffusion`` loaded, for callers that run several generations in one process.

    ``sdrest generate`` loads its model once per run; a caller that runs many commands in
    one process (a test module, a batch script) passes one of these to :func:`generate` so
    that runs with the same model files and settings share the loaded model.
    """

    def __init__(self) -> None:
        self._key: Optional[str] = None
        self._sd: Any = None

    def get(self, context: Mapping[str, Any], progress: Callable[[Any], object]) -> Any:
        """The context for these settings: the kept one when they match, else a new one (the old is closed)."""
        from sdrest.diffusion import StableDiffusion

        key = repr(sorted(context.items()))
        if self._sd is not None and key == self._key:
            return self._sd
        self.close()
        self._sd = StableDiffusion(**context, progress=progress)
        self._key = key
        return self._sd

    def close(self) -> None:
        """Free the kept context."""
        if self._sd is not None:
            self._sd.close()
        self._sd, self._key = None, None


def _preview_writer(path: Path) -> Callable[[int, list[Any], bool], None]:
    from sdrest.imagefiles import save_image, save_webp_animation

    def write(step: int, frames: list[Any], is_noisy: bool) -> None:
        if len(frames) == 1:
            save_image(frames[0], path)
        else:
            save_webp_animation(frames, path.with_suffix(".webp"), fps=4)

    return write


def _run_job(job: GenerateJob, bar: ProgressDisplay, contexts: Optional[ContextCache]) -> Any:
    from sdrest.diffusion import StableDiffusion

    bar.begin("loading")
    owned = None
    if contexts is not None:
        sd = contexts.get(job.context, bar.update)
    else:
        owned = sd = StableDiffusion(**job.context, progress=bar.update)
    try:
        call = dict(job.call, progress=bar.update)
        if job.preview_path is not None:
            call["preview"] = _preview_writer(job.preview_path)
        bar.begin("sampling")
        if job.mode == "vid_gen":
            init = job.init_image
            return sd.generate_video(job.prompt, init_image=init, **call)
        if job.init_image is not None:
            return sd.img2img(job.init_image, job.prompt, strength=job.strength, mask=job.mask, **call)
        return sd.txt2img(job.prompt, **call)
    finally:
        if owned is not None:
            owned.close()


def _upscale(job: GenerateJob, images: list[Any], bar: ProgressDisplay) -> list[Any]:
    from sdrest.upscaler import Upscaler

    assert job.upscale_model is not None
    with Upscaler(job.upscale_model, n_threads=job.context.get("n_threads"),
                  tile_size=job.upscale_tile_size) as upscaler:
        out = []
        for image in images:
            for _ in range(job.upscale_repeats):
                image = upscaler.upscale(image, progress=bar.update)
            out.append(image)
    return out


def _write(job: GenerateJob, result: Any, images: list[Any]) -> list[Path]:
    from sdrest.imagefiles import save_webp_animation, write_all
    from sdrest.infotext import infotext

    params = dict(result.parameters, prompt=job.prompt_as_given)  # the tags stay, as A1111 and sd-cli keep them
    if job.upscale_model:
        params["upscaler"] = Path(job.upscale_model).stem
    texts = [infotext(params, seed) if job.metadata else None for seed in result.seeds]
    outputs, animated = job.outputs, job.animated
    if len(images) != len(outputs) and not animated:  # a Wan video has 4k + 1 frames: name what came back
        outputs, animated = _outputs(job, list(result.seeds))
        _check_writable(outputs, job.force)
    if animated:
        return [save_webp_animation(images, outputs[0], fps=job.fps, parameters=texts[0])]
    return write_all(images, outputs, texts)


def generate(args: argparse.Namespace, *, contexts: Optional[ContextCache] = None) -> int:
    """Run ``sdrest generate`` for parsed ``args``; returns the exit code. Prints each file written.

    ``contexts`` keeps the model loaded between calls in one process (see :class:`ContextCache`).
    """
    verbosity = verbosity_of(args)
    configure_logging(verbosity)
    job = plan(args)
    with ProgressDisplay(verbosity) as bar:
        result = _run_job(job, bar, contexts)
        images = _upscale(job, result.images, bar) if job.upscale_model else result.images
        written = _write(job, result, images)
    if verbosity > Verbosity.QUIET:
        for path in written:
            print(path, file=sys.stdout)
    return 0


def run(args: argparse.Namespace) -> int:
    """The ``generate`` subcommand's entry point (``sdrest.cli`` maps errors and Ctrl-C to exit codes)."""
    return generate(args)
