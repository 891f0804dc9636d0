"""sdrest.terminal: progress lines, rates, verbosity, and the exit convention."""

from __future__ import annotations

import argparse
import io

import pytest

from sdrest.progress import Progress
from sdrest.terminal import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    OneLineErrorParser,
    ProgressDisplay,
    Verbosity,
    error_line,
    format_duration,
    format_rate,
    run_command,
    verbosity_of,
)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_switches_between_its_and_sit() -> None:
    assert format_rate(0.25) == "4.00 it/s"
    assert format_rate(2.5) == "2.50 s/it"
    assert format_rate(0.0) == ""


def test_duration() -> None:
    assert format_duration(42) == "0:42"
    assert format_duration(3723) == "1:02:03"


def test_plain_lines_one_per_phase_end_and_a_few_in_between() -> None:
    out = io.StringIO()
    clock = FakeClock()
    with ProgressDisplay(Verbosity.NORMAL, stream=out, interactive=False, clock=clock) as bar:
        for step in range(1, 5):
            clock.now += 1.0
            bar.update(Progress(step, 4, 1.0, "sampling"))
        for step in range(1, 21):
            clock.now += 2.0
            bar.update(Progress(step, 20, 2.0, "sampling"))
        bar.update(Progress(1, 1, 0.5, "decoding"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "sampling 4/4 1.00 s/it in 0:04"
    # A long phase says where it is every PLAIN_INTERVAL_S after its first event (10 s = 5 steps of 2 s).
    assert lines[1] == "sampling #2 6/20 2.00 s/it ETA 0:28"
    assert lines[-2] == "sampling #2 20/20 2.00 s/it in 0:40"
    assert lines[-1] == "decoding 1/1 2.00 it/s in 0:00"
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_quiet_prints_nothing() -> None:
    out = io.StringIO()
    with ProgressDisplay(Verbosity.QUIET, stream=out, interactive=False) as bar:
        bar.update(Progress(1, 1, 1.0, "sampling"))
        bar.message("hello")
    assert out.getvalue() == ""


def test_live_bar_draws_phase_steps_rate_and_eta() -> None:
    out = io.StringIO()
    with ProgressDisplay(Verbosity.NORMAL, stream=out, interactive=True) as bar:
        bar.begin("loading")
        bar.update(Progress(3, 8, 1.5, "sampling"))
    screen = out.getvalue()
    assert "sampling" in screen and "3/8" in screen and "1.50 s/it" in screen and "ETA 0:08" in screen
    assert "\x1b[" in screen


def test_verbosity_flags() -> None:
    parser = argparse.ArgumentParser()
    from sdrest.terminal import add_arguments

    add_arguments(parser)
    assert verbosity_of(parser.parse_args([])) is Verbosity.NORMAL
    assert verbosity_of(parser.parse_args(["-q"])) is Verbosity.QUIET
    assert verbosity_of(parser.parse_args(["-v"])) is Verbosity.VERBOSE
    assert verbosity_of(parser.parse_args(["-v", "--debug"])) is Verbosity.DEBUG


def test_errors_are_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    def fails(args: argparse.Namespace) -> int:
        raise ValueError("steps: must be at least 1\nsecond line")

    assert run_command(fails, argparse.Namespace()) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert err == "sdrest: error: steps: must be at least 1 second line\n"


def test_debug_adds_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    def fails(args: argparse.Namespace) -> int:
        raise ValueError("bad")

    assert run_command(fails, argparse.Namespace(debug=True)) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("sdrest: error: bad\n")


def test_ctrl_c_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    assert run_command(interrupted, argparse.Namespace()) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "sdrest: interrupted\n"


def test_key_error_reads_as_its_message() -> None:
    assert error_line(KeyError("model: no model named 'x'")) == "model: no model named 'x'"


def test_parser_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    parser = OneLineErrorParser(prog="sdrest generate")
    parser.add_argument("--steps", type=int)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--bogus"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sdrest generate: error: unrecognized arguments: --bogus")
