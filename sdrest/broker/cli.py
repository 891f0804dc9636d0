"""``sdrest worker``: run workers on this host for a server elsewhere, through its Redis broker.

The worker processes are the same supervised ones ``sdrest serve`` runs (one per device, times
``--workers``); only their queue differs: :class:`~sdrest.broker.remote.RemoteQueue` instead of the
server's embedded one. Redis is imported only here.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any

from sdrest.config import ServerConfig, add_arguments, load_config

#: The server settings a worker host takes too (the same flags, env and file keys).
WORKER_SETTINGS = ("broker", "broker_namespace", "lease_seconds", "models_dir", "data_dir", "devices", "workers",
                   "n_threads", "idle_unload_seconds", "memory_budget_mb", "cancel_grace_seconds",
                   "job_timeout_seconds", "models_links", "log_level")


def register(subparsers: Any) -> None:
    """Add the ``worker`` subcommand."""
    parser = subparsers.add_parser(
        "worker", help="run workers for a server on another host, through its Redis broker",
        description="Run worker processes that take jobs from an `sdrest serve --broker URL` through the same Redis "
                    "(docs/scaling.md). --data-dir is this host's own folder for work in progress.")
    add_arguments(parser, only=WORKER_SETTINGS)
    parser.add_argument("--name", default=None,
                        help="this host's worker name prefix, unique among the workers of one broker "
                             "(default: HOSTNAME-PID); workers are NAME.0, NAME.1 ...")
    parser.add_argument("--shared-data-dir", type=Path, default=None,
                        help="the server's data dir as mounted on this host: inputs are read and outputs staged "
                             "there (default: both travel through Redis)")
    parser.set_defaults(func=work)


def work(args: argparse.Namespace) -> int:
    """Run this host's workers until SIGINT or SIGTERM; the running jobs are handed back to the queue."""
    from sdrest.broker.remote import RemoteQueue
    from sdrest.broker.wire import Keys, check_broker, check_name, connect, redact
    from sdrest.jobs.process import WorkerProcess
    from sdrest.jobs.spec import LOG_FORMAT, WorkerSpec

    flags = {k: getattr(args, k, None) for k in ("config", *WORKER_SETTINGS)}
    if flags.get("data_dir") is None:
        flags["data_dir"] = Path.home() / ".cache" / "sdrest-worker"
    config: ServerConfig = load_config(flags)
    if not config.broker:
        raise ValueError("broker: required (--broker redis://HOST:6379/0, or SDREST_BROKER)")
    if config.workers < 1:
        raise ValueError("workers: must be at least 1")
    if args.shared_data_dir is not None and not args.shared_data_dir.is_dir():
        raise ValueError(f"--shared-data-dir: {args.shared_data_dir} is not a folder")
    prefix = check_name(args.name or f"{socket.gethostname()}-{os.getpid()}")
    logging.basicConfig(level=config.log_level.upper(), format=LOG_FORMAT)
    client = connect(config.broker)
    check_broker(client, config.broker)  # a wrong URL or password, or a Redis that is down, said at once in one line
    scratch = config.data_dir.resolve() / prefix
    names = [f"{prefix}.{index}" for index in range(len(config.device_list) * config.workers)]
    queue = RemoteQueue(client, Keys(config.broker_namespace), scratch=scratch, models_dir=config.models_dir,
                        shared_dir=args.shared_data_dir.resolve() if args.shared_data_dir else None,
                        lease_seconds=config.lease_seconds)
    slots = [device for device in config.device_list for _ in range(config.workers)]
    hosts = [WorkerProcess(WorkerSpec(name, device, str(scratch), str(config.models_dir) if config.models_dir else None,
                                      str(scratch / "models-cache.json"), config.n_threads,
                                      config.idle_unload_seconds, config.memory_budget_mb, config.models_links,
                                      config.log_level),
                           queue, cancel_grace=config.cancel_grace_seconds, job_timeout=config.job_timeout_seconds,
                           stop_grace=config.cancel_grace_seconds)
             for name, device in zip(names, slots)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    queue.start(names)
    for host in hosts:
        host.start()
    log = logging.getLogger("sdrest.broker")
    log.info("%d worker(s) %s taking jobs from %s", len(hosts), ", ".join(names), redact(config.broker))
    stop.wait()
    log.info("stopping: a running job goes back to the queue")
    for host in hosts:
        host.request_stop()
    for host in hosts:
        host.stop()
    queue.close()
    log.info("stopped")
    return 0
