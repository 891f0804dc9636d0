"""``sdrest serve``: run the server under uvicorn until stopped (Ctrl-C, SIGTERM, or /api/system/restart)."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import signal
import sys
from typing import Any

from sdrest.config import ServerConfig, add_arguments, load_config


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser("serve", help="run the REST server",
                                   description="Run the sdrest REST server (settings: flags > SDREST_* env > --config file).")
    add_arguments(parser)
    for mode in DEPRECATED_AUTH_FLAGS.values():
        parser.add_argument(f"--enable-{mode}-auth", action="store_true", help=f"deprecated: use --auth {mode}")
    parser.set_defaults(func=serve)


#: the seed's old flags, still accepted (with a warning): flag dest -> the auth mode it means
DEPRECATED_AUTH_FLAGS = {"enable_unix_auth": "unix", "enable_pam_auth": "pam"}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def check_exposure(config: ServerConfig) -> None:
    """ValueError (one line) when ``auth none`` would serve a non-loopback address without the explicit flag."""
    if config.auth == "none" and config.host not in LOOPBACK_HOSTS and not config.host.startswith("127.") \
            and not config.allow_unauthenticated_network:
        raise ValueError(f"refusing to serve {config.host} without authentication: anyone who reaches it could do "
                         "anything; choose --auth (see docs/security.md) or pass --allow-unauthenticated-network")


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(config: ServerConfig) -> None:
    """Log to stderr, and to ``config.log_file`` (rotated at 10 MiB, 5 kept) when set, at ``config.log_level``."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if config.log_file is not None:
        config.log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(config.log_file, maxBytes=10 * 2**20, backupCount=5,
                                                             encoding="utf-8"))
    logging.basicConfig(level=config.log_level.upper(), format=LOG_FORMAT, handlers=handlers, force=True)


def warn_about_models_dir(config: ServerConfig) -> None:
    """One warning, with what to do, when there is no models dir or nothing in it."""
    log = logging.getLogger("sdrest.server")
    folder = config.models_dir
    if folder is None:
        log.warning("no --models-dir given: no model can be used. Start with --models-dir DIR, DIR holding "
                    "checkpoints/, diffusion_models/, vae/, lora/, esrgan/ ... (see docs/models.md)")
    elif not folder.is_dir():
        log.warning("the models dir %s does not exist: create it and put checkpoints in %s/checkpoints/ "
                    "(see docs/models.md)", folder, folder)
    elif not any(folder.iterdir()):
        log.warning("the models dir %s is empty: put checkpoints in %s/checkpoints/, LoRAs in %s/lora/ ... "
                    "(see docs/models.md), or quantize one with `sdrest convert`", folder, folder, folder)


def check_broker_at_start(url: str) -> None:
    """Refuse to start (one line) when the broker refuses this node (a wrong password, a database it does not
    have); one that does not answer yet is only a warning: jobs wait until it does."""
    from sdrest.broker.wire import check_broker, connect

    client = connect(url)
    try:
        check_broker(client, url)
    except ConnectionError as exc:
        logging.getLogger("sdrest.server").warning("%s; jobs wait until it answers", exc)
    finally:
        client.close()


def serve(args: argparse.Namespace) -> int:
    """Run until stopped; re-executes itself when a restart was requested. Returns the exit code."""
    from sdrest.server.app import create_app
    from sdrest.server.serving import Server, uvicorn_config

    flags = {k: v for k, v in vars(args).items() if k not in ("func", "command", *DEPRECATED_AUTH_FLAGS)}
    for dest, mode in DEPRECATED_AUTH_FLAGS.items():
        if getattr(args, dest, False):
            print(f"sdrest: warning: --enable-{mode}-auth is deprecated; use --auth {mode}", file=sys.stderr)
            flags["auth"] = flags.get("auth") or mode
    config = load_config(flags)
    check_exposure(config)
    configure_logging(config)
    warn_about_models_dir(config)
    if config.broker:
        check_broker_at_start(config.broker)
    app = create_app(config)
    server = Server(uvicorn_config(app, config))
    app.state.uvicorn_server = server
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down cleanly: nothing to add
        return 130
    except SystemExit:
        if server.stopped_while_starting:  # a stop before any worker was ready: not a failure
            return 130 if server.stop_signal == signal.SIGINT else 0
        raise
    state = getattr(app.state, "sdrest", None)
    if state is not None and state.restart_requested:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, list(sys.orig_argv))
    return 0 if server.started else 1
