"""``sdrest convert SRC DST``: quantize or repack a model into GGUF from the terminal.

The same conversion as ``sd-cli -M convert`` (sd.cpp's own ``convert()``, through
:func:`sdrest.convert`): a progress bar over the tensors, ``--force`` to overwrite,
and a temporary file renamed at the end, so Ctrl-C or a failure leaves no partial
output. Type names are the C library's own.
"""

from __future__ import annotations

import argparse
import builtins
import multiprocessing
import signal
import sys
import textwrap
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Optional

from sdrest import terminal

__all__ = ["convert_with_progress", "register", "resolve_type", "run_convert"]

EXAMPLES = textwrap.dedent("""\
    examples:
      sdrest convert models/checkpoints/v1-5.safetensors v1-5-q8_0.gguf --type q8_0
      sdrest convert flux1-dev.safetensors flux1-dev-q4_K.gguf --type q4_K \\
          --tensor-type-rules '^vae\\.=f16'
      sdrest convert sd15.ckpt sd15.gguf --vae vae-ft-mse.safetensors     # keep the source's types

    Without --type each tensor keeps its own type, as sd-cli does. Type names are the
    C library's (ggml's); a wrong one prints them all. A DST ending in .safetensors is
    written as safetensors. Tensors a type cannot hold (biases, odd row lengths) keep
    theirs, as sd.cpp decides.
    """)


def register(subparsers: Any) -> None:
    """Add the ``convert`` subcommand."""
    parser = subparsers.add_parser(
        "convert", help="quantize or repack a model into a GGUF file",
        description="Write a model (safetensors, ckpt/pth or GGUF) as GGUF in another weight type, "
                    "tensor for tensor what `sd-cli -M convert` writes.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", metavar="SRC", help="the model to read")
    parser.add_argument("dst", metavar="DST", help="the file to write (.gguf, or .safetensors)")
    parser.add_argument("--type", dest="weight_type", metavar="TYPE", default=None,
                        help="weight type: q8_0, q4_0, q4_K, f16 ... (default: keep each tensor's type, as sd-cli)")
    parser.add_argument("--vae", metavar="FILE", help="a VAE to merge into the output")
    parser.add_argument("--tensor-type-rules", metavar="RULES",
                        help="per-tensor types, sd.cpp's syntax: 'REGEX=TYPE,...' (e.g. '^vae\\.=f16')")
    parser.add_argument("--convert-name", action="store_true",
                        help="rename tensors to sd.cpp's internal names (sd-cli's --convert-name)")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite DST if it exists")
    terminal.add_arguments(parser)
    parser.set_defaults(func=run_convert)


def resolve_type(name: Optional[str]) -> Optional[str]:
    """The C library's spelling of a weight type name (``q4_k`` -> ``q4_K``); ``None`` stays ``None``.

    ``ValueError`` listing every valid type, in one line, for a name it does not know.
    """
    if name is None:
        return None
    from sdrest.names import weight_types

    valid = weight_types()
    if name in valid:
        return name
    folded = {t.lower(): t for t in valid}
    if name.lower() in folded:
        return folded[name.lower()]
    raise ValueError(f"--type: unknown weight type {name!r}; valid types: {', '.join(valid)}")


def _convert_in_child(conn: Connection, verbosity: int, src: str, dst: str, options: dict[str, Any]) -> None:
    """The child's side: convert, sending ``("progress", ...)`` events and one ``("done", path)`` or
    ``("error", class name, message)``. It ignores SIGINT: the parent decides when to stop it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminal.configure_logging(terminal.Verbosity(verbosity))
    from sdrest.conversion import convert

    def progress(event: Any) -> None:
        conn.send(("progress", event.step, event.steps, event.seconds_per_step, event.phase))

    try:
        conn.send(("done", str(convert(src, dst, progress=progress, **options))))
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent as one line
        conn.send(("error", type(exc).__name__, terminal.error_line(exc)))


def _rebuild(name: str, message: str) -> Exception:
    """The child's exception, as the same built-in class when it is one (so exit codes and messages agree)."""
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls(message)
    return RuntimeError(message)


def convert_with_progress(src: Path, dst: Path, options: dict[str, Any], display: terminal.ProgressDisplay,
                          verbosity: terminal.Verbosity) -> Path:
    """Run :func:`sdrest.convert` in a child process, showing its progress.

    sd.cpp's converter cannot be interrupted once it runs, and a type it cannot
    quantize to aborts the process. In a child, Ctrl-C (or SIGTERM) stops it at
    once, and a crash becomes an error: either way the temporary file is removed
    and ``dst`` is untouched.
    """
    from sdrest.conversion import partial_path

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(target=_convert_in_child, args=(theirs, int(verbosity), str(src), str(dst), options),
                            name="sdrest-convert", daemon=True)
    child.start()
    theirs.close()
    outcome: Optional[tuple[Any, ...]] = None
    try:
        while outcome is None:
            ready = wait([ours, child.sentinel])
            if ours in ready:
                try:
                    message = ours.recv()
                except EOFError:
                    message = None
                if message is None:
                    child.join()
                    break
                if message[0] == "progress":
                    display.step(message[1], message[2], message[3], message[4])
                else:
                    outcome = message
            elif not ours.poll():
                child.join()
                break
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        partial_path(dst).unlink(missing_ok=True)
    if outcome is None:
        code = child.exitcode or 0
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        raise RuntimeError(f"stable-diffusion.cpp's converter crashed ({how}); {dst} was not written")
    if outcome[0] == "error":
        raise _rebuild(outcome[1], outcome[2])
    return Path(outcome[1])


def _stop_on_sigterm() -> None:
    """SIGTERM and SIGHUP stop a conversion like Ctrl-C (clean up, exit 130) instead of killing it mid-file."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def run_convert(args: argparse.Namespace) -> int:
    """Convert ``args.src`` into ``args.dst``; returns the exit code (exceptions go to ``terminal``)."""
    verbosity = terminal.verbosity_of(args)
    terminal.configure_logging(verbosity)
    weight_type = resolve_type(args.weight_type)
    src, dst = Path(args.src), Path(args.dst)
    if not src.exists():
        raise FileNotFoundError(f"SRC: no such file: {args.src}")
    if args.vae is not None and not Path(args.vae).exists():
        raise FileNotFoundError(f"--vae: no such file: {args.vae}")
    if dst.exists() and not dst.is_dir() and not args.force:
        raise FileExistsError(f"DST: {args.dst} exists (use --force to overwrite)")
    options = {"type": weight_type, "vae": args.vae, "tensor_type_rules": args.tensor_type_rules,
               "convert_name": args.convert_name}
    _stop_on_sigterm()
    started = time.monotonic()
    with terminal.ProgressDisplay(verbosity) as display:
        display.begin("converting")
        written = convert_with_progress(src, dst, options, display, verbosity)
    if verbosity > terminal.Verbosity.QUIET:
        size = written.stat().st_size
        print(f"converted in {terminal.format_duration(time.monotonic() - started)}: "
              f"{size / 1e6:.1f} MB, {weight_type or 'types kept'}", file=sys.stderr)
    print(written)
    return 0
