"""What every long ``sdrest`` command shares at the terminal: progress, verbosity, errors.

A command adds ``-q``/``-v``/``--debug`` with :func:`add_arguments`, shows its work with

    with ProgressDisplay(verbosity_of(args)) as bar:
        sd.txt2img(prompt, progress=bar.update)

and lets :func:`run_command` (called by ``sdrest.cli.main``) turn what it raises into
the exit convention: one readable line on stderr and a non-zero exit, a traceback only
with ``--debug``, and 130 for Ctrl-C or a cancelled call.

The progress display writes to stderr, so stdout carries only results (output paths):
a live bar per phase (phase, bar, step N/M, it/s or s/it, ETA) when stderr is a
terminal, plain lines (a few per phase, no control characters) when it is not.
"""

from __future__ import annotations

import argparse
import enum
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, Optional, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn

__all__ = [
    "OneLineErrorParser",
    "ProgressDisplay",
    "Verbosity",
    "add_arguments",
    "configure_logging",
    "error_line",
    "format_duration",
    "format_rate",
    "is_interactive",
    "run_command",
    "verbosity_of",
]

#: Exit code of a command stopped by Ctrl-C or cancelled (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130
#: Exit code of a command that failed.
EXIT_FAILURE = 1
#: Exit code of a command line that could not be parsed (argparse's own).
EXIT_USAGE = 2
#: In plain (non-terminal) mode, the least time between two lines about one phase.
PLAIN_INTERVAL_S = 10.0


class Verbosity(enum.IntEnum):
    """How much a command prints: ``-q`` errors only, default progress, ``-v`` native info lines,
    ``--debug`` everything."""

    QUIET = 0
    NORMAL = 1
    VERBOSE = 2
    DEBUG = 3


def add_arguments(parser: argparse.ArgumentParser, *, verbose_short: bool = True) -> None:
    """Add ``-q/--quiet``, ``-v/--verbose`` and ``--debug`` to a subcommand's parser."""
    group = parser.add_argument_group("messages")
    group.add_argument("-q", "--quiet", action="store_true", help="print errors only: no progress, no messages")
    flags = ("-v", "--verbose") if verbose_short else ("--verbose",)
    group.add_argument(*flags, action="store_true", help="also print stable-diffusion.cpp's info lines")
    group.add_argument("--debug", action="store_true", help="print debug lines, and a traceback on errors")


def verbosity_of(args: argparse.Namespace) -> Verbosity:
    """The verbosity the parsed flags ask for (``--debug`` beats ``-v`` beats ``-q``)."""
    if getattr(args, "debug", False):
        return Verbosity.DEBUG
    if getattr(args, "verbose", False):
        return Verbosity.VERBOSE
    if getattr(args, "quiet", False):
        return Verbosity.QUIET
    return Verbosity.NORMAL


def is_interactive(stream: TextIO) -> bool:
    """True when ``stream`` is a terminal that can redraw a bar (not a pipe, a file or ``TERM=dumb``)."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM", "") != "dumb"


def format_rate(seconds_per_step: float) -> str:
    """``3.2 it/s`` for fast steps, ``1.50 s/it`` for slow ones; empty before the first timing."""
    if seconds_per_step <= 0:
        return ""
    if seconds_per_step < 1:
        return f"{1 / seconds_per_step:.2f} it/s"
    return f"{seconds_per_step:.2f} s/it"


def format_duration(seconds: float) -> str:
    """``0:42`` or ``1:02:03``."""
    total = max(0, int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _CurrentStderrHandler(logging.Handler):
    """Writes records to whatever ``sys.stderr`` is at the time (so a live bar can print them above itself)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)


def configure_logging(verbosity: Verbosity) -> None:
    """Route sdrest's loggers (the native library's lines included) to stderr at the level ``verbosity`` asks.

    Quiet shows errors, normal warnings, verbose info lines, debug everything.
    """
    level = {
        Verbosity.QUIET: logging.ERROR,
        Verbosity.NORMAL: logging.WARNING,
        Verbosity.VERBOSE: logging.INFO,
        Verbosity.DEBUG: logging.DEBUG,
    }[verbosity]
    logger = logging.getLogger("sdrest")
    for handler in list(logger.handlers):
        if isinstance(handler, _CurrentStderrHandler):
            logger.removeHandler(handler)
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"
                                           if verbosity >= Verbosity.DEBUG else "%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


class ProgressDisplay:
    """Shows progress events (``sdrest.Progress``: step, steps, seconds_per_step, phase) at the terminal.

    Use as a context manager and pass :meth:`update` as a library call's ``progress``
    callback. Each phase (loading, sampling, decoding, upscaling, converting ...) gets
    its own bar; a phase that comes back (the second image of a batch) gets a new one
    numbered ``#2``. Quiet verbosity shows nothing. :meth:`message` prints a line
    above the bars (or plainly), at normal verbosity and above.
    """

    def __init__(self, verbosity: Verbosity = Verbosity.NORMAL, *, stream: Optional[TextIO] = None,
                 interactive: Optional[bool] = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.verbosity = verbosity
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.interactive = is_interactive(self.stream) if interactive is None else interactive
        self._clock = clock
        self._rich: Optional[RichProgress] = None
        self._task: Any = None
        self._phase: Optional[str] = None
        self._label = ""
        self._last_step = 0
        self._steps = 0
        self._seconds = 0.0
        self._counts: dict[str, int] = {}
        self._last_line = 0.0
        self._phase_started = 0.0

    # -- lifetime ---------------------------------------------------------------------

    def __enter__(self) -> "ProgressDisplay":
        if self.interactive and self.verbosity > Verbosity.QUIET:
            console = Console(file=self.stream, force_terminal=True)
            self._rich = RichProgress(
                TextColumn("{task.description:<14}"),
                BarColumn(bar_width=32),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>11}"),
                TextColumn("{task.fields[eta]}"),
                console=console,
                redirect_stdout=self.stream is sys.stderr,
                redirect_stderr=self.stream is sys.stderr,
            )
            self._rich.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(finished=exc_type is None)

    def close(self, *, finished: bool = True) -> None:
        """End the display: the last phase's plain summary line, or stop the live bars."""
        if self._rich is not None:
            if not finished and self._task is not None:
                self._rich.stop_task(self._task)
            self._rich.stop()
            self._rich = None
        self._phase = None

    # -- events -----------------------------------------------------------------------

    def update(self, event: Any) -> None:
        """One ``sdrest.Progress`` event (anything with ``step``, ``steps``, ``seconds_per_step``, ``phase``)."""
        self.step(int(event.step), int(event.steps), float(event.seconds_per_step), str(event.phase))

    __call__ = update

    def step(self, step: int, steps: int, seconds_per_step: float = 0.0, phase: str = "working") -> None:
        """Report ``step`` of ``steps`` done in ``phase`` (for code that counts its own work)."""
        if self.verbosity <= Verbosity.QUIET:
            return
        if phase == self._phase and self._steps == 0 and self._last_step == 0 and steps > 0:
            self._steps = steps  # the phase announced by begin() learns its length
            if self._rich is not None:
                self._rich.update(self._task, total=steps)
        elif phase != self._phase or steps != self._steps or step < self._last_step:
            self._begin(phase, steps)
            self._phase_started -= step * max(seconds_per_step, 0.0)  # the steps already done took time too
        self._last_step, self._seconds = step, seconds_per_step
        rate = format_rate(seconds_per_step)
        remaining = (steps - step) * seconds_per_step
        eta = f"ETA {format_duration(remaining)}" if seconds_per_step > 0 and step < steps else ""
        if self._rich is not None:
            self._rich.update(self._task, completed=step, rate=rate, eta=eta)
            return
        now = self._clock()
        if step >= steps or now - self._last_line >= PLAIN_INTERVAL_S:
            self._last_line = now
            if step >= steps:
                eta = f"in {format_duration(now - self._phase_started)}"
            self._plain(" ".join(x for x in (f"{self._label} {step}/{steps}", rate, eta) if x))

    def begin(self, phase: str) -> None:
        """Start ``phase`` before its steps are known (a pulsing bar when live; nothing in plain mode)."""
        if self.verbosity > Verbosity.QUIET and phase != self._phase:
            self._begin(phase, 0)

    def message(self, text: str) -> None:
        """A line for the user (above the bars when live); shown unless quiet."""
        if self.verbosity <= Verbosity.QUIET:
            return
        if self._rich is not None:
            self._rich.console.print(text, markup=False, highlight=False)
        else:
            self._plain(text)

    # -- internals ----------------------------------------------------------------------

    def _begin(self, phase: str, steps: int) -> None:
        count = self._counts.get(phase, 0) + 1
        self._counts[phase] = count
        self._phase, self._steps, self._last_step = phase, steps, 0
        self._label = phase if count == 1 else f"{phase} #{count}"
        self._phase_started = self._clock()
        self._last_line = self._phase_started
        if self._rich is not None:
            if self._task is not None:
                self._rich.stop_task(self._task)
            self._task = self._rich.add_task(self._label, total=steps if steps > 0 else None, rate="", eta="")

    def _plain(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``sdrest generate: error: ... (see --help)``), exit 2."""

    def error(self, message: str) -> NoReturn:
        """Print the error as one line on stderr and exit with the usage code."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def error_line(exc: BaseException) -> str:
    """An exception as one readable line: its message with newlines folded (sd.cpp's errors have several)."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = str(exc.args[0])
    return text or type(exc).__name__


def _is_cancelled(exc: BaseException) -> bool:
    """True for ``sdrest.Cancelled`` (looked up only when the native module is loaded at all)."""
    native = sys.modules.get("sdrest._native")
    cancelled = getattr(native, "Cancelled", None)
    return cancelled is not None and isinstance(exc, cancelled)


def run_command(func: Callable[[argparse.Namespace], Optional[int]], args: argparse.Namespace,
                prog: str = "sdrest") -> int:
    """Run a subcommand's function and map what it raises onto the exit convention.

    Ctrl-C (``KeyboardInterrupt``) and a cancelled native call (``sdrest.Cancelled``) exit
    130 with ``interrupted``; any other exception prints ``prog: error: <one line>`` and
    exits 1, with the traceback only under ``--debug``.
    """
    debug = bool(getattr(args, "debug", False))
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        if _is_cancelled(exc):
            print(f"{prog}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        if debug:
            traceback.print_exc()
        known = isinstance(exc, (OSError, ValueError, TypeError, RuntimeError, LookupError))
        hint = "" if known or debug else " (run with --debug for the traceback)"
        print(f"{prog}: error: {error_line(exc)}{hint}", file=sys.stderr)
        return EXIT_FAILURE
