"""The ``sdrest`` command line: one entry point, one subcommand module per concept.

Each module in ``SUBCOMMANDS`` exposes ``register(subparsers)``, which adds its
subcommands with ``set_defaults(func=...)``; ``func(args) -> int`` is the exit code.
Errors end with a non-zero exit and one readable line on stderr (``sdrest.terminal``):
no traceback unless ``--debug``, 130 for Ctrl-C, 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sdrest.info_cli import VersionAction
from sdrest.terminal import OneLineErrorParser, run_command

SUBCOMMANDS = (
    "sdrest.generate_cli",
    "sdrest.convert_cli",
    "sdrest.upscale_cli",
    "sdrest.info_cli",
    "sdrest.models.cli",
    "sdrest.server.cli",
    "sdrest.auth.cli",
    "sdrest.broker.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every available subcommand registered."""
    parser = OneLineErrorParser(prog="sdrest", description="stable-diffusion.cpp from Python")
    parser.add_argument("--version", action=VersionAction, help="print the versions of sdrest and stable-diffusion.cpp")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.set_defaults(subcommands=subparsers.choices)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # not written yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the subcommand's parser, which names itself and its --help
        parser_of_command = args.subcommands.get(getattr(args, "command", None), parser)
        parser_of_command.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
