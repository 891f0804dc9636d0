"""``sdrest serve``: run the server under uvicorn until stopped (Ctrl-C, SIGTERM, or /api/system/restart)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from sdrest.config import add_arguments, load_config


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser("serve", help="run the REST server",
                                   description="Run the sdrest REST server (settings: flags > SDREST_* env > --config file).")
    add_arguments(parser)
    parser.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    """Run until stopped; re-executes itself when a restart was requested. Returns the exit code."""
    from sdrest.server.app import create_app
    from sdrest.server.serving import Server, uvicorn_config

    flags = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
    config = load_config(flags)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    server = Server(uvicorn_config(app, config))
    app.state.uvicorn_server = server
    server.run()
    state = getattr(app.state, "sdrest", None)
    if state is not None and state.restart_requested:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, list(sys.orig_argv))
    return 0 if server.started else 1
