"""``sdrest upscale IMG... -m ESRGAN``: enlarge images by an exact factor from the terminal.

Each image goes through :meth:`sdrest.Upscaler.upscale` (model passes, then Lanczos to
the exact size) and is written by :func:`sdrest.imagefiles.save_image` with what was done
in its ``parameters`` (a PNG text chunk, or EXIF for JPEG and WebP, as A1111 does).
Outputs are written to a temporary name and renamed, never over an existing file
without ``--force``.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, TypeVar

from sdrest import terminal

__all__ = ["check_writable", "interruptible", "output_paths", "register", "resolve_model", "run_upscale"]

EXAMPLES = textwrap.dedent("""\
    examples:
      sdrest upscale photo.png -m models/esrgan/RealESRGAN_x4plus.pth              # photo-x4.png
      sdrest upscale photo.png -m RealESRGAN_x4plus --models-dir models --factor 2 -o big.png
      sdrest upscale frames/*.png -m x4.pth --factor 8 -o upscaled/                 # a folder
      sdrest upscale a.png b.png -m x4.pth -o 'out/{name}-big.png'

    --factor is honoured exactly: an x4 model runs once and is resized for 2 or 3,
    twice for 8 or 16 (as AUTOMATIC1111 does). Without -o each image is written to
    the current folder as NAME-xFACTOR.png.
    """)


def register(subparsers: Any) -> None:
    """Add the ``upscale`` subcommand."""
    parser = subparsers.add_parser(
        "upscale", help="enlarge images with an ESRGAN model, by an exact factor",
        description="Enlarge images with an ESRGAN model (.pth, .safetensors or .gguf).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", metavar="IMG", help="images to enlarge (PNG, JPEG, WebP ...)")
    parser.add_argument("-m", "--model", required=True, metavar="ESRGAN",
                        help="the ESRGAN model: a path, or a name in --models-dir")
    parser.add_argument("--models-dir", metavar="DIR", default=os.environ.get("SDREST_MODELS_DIR"),
                        help="where to look a model name up (default: $SDREST_MODELS_DIR)")
    parser.add_argument("--factor", type=float, default=None, metavar="N",
                        help="enlarge by exactly N, 1 to 16, fractions allowed (default: the model's scale)")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="output file (one image), folder (ends with / or exists), or pattern with {name}")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite outputs that exist")
    parser.add_argument("-t", "--threads", type=int, default=None, metavar="N",
                        help="CPU threads (default: physical cores)")
    parser.add_argument("--tile-size", type=int, default=128, metavar="PX", help="tile size (default: 128, as sd-cli)")
    terminal.add_arguments(parser)
    parser.set_defaults(func=run_upscale)


def resolve_model(model: str, models_dir: Optional[str]) -> Path:
    """``model`` as a file: a path that exists, else a name in ``models_dir``'s registry."""
    path = Path(model)
    if path.exists():
        return path
    if not models_dir:
        raise FileNotFoundError(f"-m: no such file: {model} (give a path, or a name with --models-dir)")
    from sdrest.models.registry import Registry

    registry = Registry(models_dir)
    registry.scan()
    try:
        return Path(registry.find(model).path)
    except KeyError as exc:
        raise FileNotFoundError(f"-m: {exc.args[0]} in {models_dir}") from None


def _number(factor: float) -> str:
    return str(int(factor)) if float(factor).is_integer() else f"{factor:g}"


def output_paths(images: list[str], output: Optional[str], factor_label: str) -> list[Path]:
    """Where each input's result goes (see the ``-o`` help); ``ValueError`` when two would collide."""
    def default_name(image: str) -> str:
        return f"{Path(image).stem}-x{factor_label}.png"

    if output is None:
        paths = [Path(default_name(image)) for image in images]
    elif "{name}" in output:
        paths = [Path(output.format(name=Path(image).stem)) for image in images]
    elif output.endswith(("/", os.sep)) or Path(output).is_dir():
        paths = [Path(output) / default_name(image) for image in images]
    elif len(images) == 1:
        paths = [Path(output)]
    else:
        raise ValueError(f"-o: {len(images)} images need a folder (ending with /) or a pattern with {{name}}")
    seen: dict[Path, str] = {}
    for image, path in zip(images, paths):
        key = path.resolve()
        if key in seen:
            raise ValueError(f"-o: {seen[key]} and {image} would both be written to {path}")
        seen[key] = image
    return paths


def check_writable(path: Path) -> None:
    """Make ``path``'s folder if needed and prove it writable now, before minutes of work; errors name ``-o``."""
    probe = path.with_name(f".{path.name}.partial")  # the name save_image writes first
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.open("wb").close()
        probe.unlink()
    except OSError as exc:
        raise exc.__class__(f"-o: cannot write in '{path.parent}': {exc.strerror}") from exc


T = TypeVar("T")


def interruptible(call: Callable[[], T]) -> T:
    """``call()`` on a worker thread while this one waits: Ctrl-C raises ``KeyboardInterrupt`` here at
    once, although sd.cpp's upscaler cannot stop inside a pass (the worker keeps running)."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread as it is
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="sdrest-upscale", daemon=True).start()
    done.wait()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def run_upscale(args: argparse.Namespace) -> int:
    """Upscale every image; prints each output path on stdout. Returns the exit code."""
    verbosity = terminal.verbosity_of(args)
    terminal.configure_logging(verbosity)
    missing = [image for image in args.images if not Path(image).is_file()]
    if missing:
        raise FileNotFoundError(f"IMG: no such file: {', '.join(missing)}")
    model = resolve_model(args.model, args.models_dir)
    from PIL import Image

    from sdrest.imagefiles import save_image
    from sdrest.upscaler import MAX_FACTOR, Upscaler

    if args.factor is not None and not 1 <= args.factor <= MAX_FACTOR:
        raise ValueError(f"--factor: must be between 1 and {MAX_FACTOR}, got {_number(args.factor)}")
    with Upscaler(model, n_threads=args.threads, tile_size=args.tile_size) as upscaler:
        factor = upscaler.factor if args.factor is None else args.factor
        outputs = output_paths(args.images, args.output, _number(factor))
        for out in outputs:
            if out.exists() and not args.force:
                raise FileExistsError(f"-o: {out} exists (use --force to overwrite)")
            check_writable(out)
        with terminal.ProgressDisplay(verbosity) as display:
            for image_path, out in zip(args.images, outputs):
                with Image.open(image_path) as opened:
                    image = opened.convert("RGB")
                plan = upscaler.plan(image.size, factor)
                passes = f"{plan.passes} pass{'es' if plan.passes > 1 else ''} of x{plan.model_scale}"
                display.message(f"{image_path}: {plan.source_size[0]}x{plan.source_size[1]} -> "
                                f"{plan.size[0]}x{plan.size[1]} ({passes}{', Lanczos' if plan.resized else ''})")
                display.begin("upscaling")
                try:
                    result = interruptible(lambda: upscaler.upscale(image, factor, progress=display.update))
                except KeyboardInterrupt:
                    # The pass goes on in its thread and cannot be stopped or waited for: leave now.
                    # Nothing is half-written: outputs are saved (atomically) only after a pass.
                    display.close(finished=False)
                    print("sdrest: interrupted", file=sys.stderr, flush=True)
                    sys.stdout.flush()
                    os._exit(terminal.EXIT_INTERRUPTED)
                save_image(result, out, result.info["parameters"])
                print(out, flush=True)
    return 0
