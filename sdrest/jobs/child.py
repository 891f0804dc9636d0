"""A worker process: ``python -m sdrest.jobs.child FD SPEC_JSON``, started by :class:`~sdrest.jobs.process.WorkerProcess`.

It owns the native contexts of one device, talks to its supervisor over the inherited socket ``FD``
(:class:`~sdrest.jobs.channel.ChannelQueue`), writes outputs into the data dir, and logs to stderr,
which the supervisor relays into the server's log under the worker's name. A crash here (a segfault in
sd.cpp, a CUDA abort) ends this process only; ``faulthandler`` prints where it happened.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import socket
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from sdrest.jobs.spec import LOG_FORMAT, WorkerSpec, capabilities


def _lost() -> None:
    """The supervisor is gone: nobody will read what this worker does, so it ends at once."""
    os._exit(3)


def main(argv: list[str] | None = None) -> int:
    """Run one worker until its supervisor says stop."""
    argv = sys.argv[1:] if argv is None else argv
    fd, spec = int(argv[0]), WorkerSpec.from_json(argv[1])
    faulthandler.enable()
    logging.basicConfig(level=spec.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    from sdrest.jobs.channel import ChannelQueue
    from sdrest.jobs.models import ModelCache
    from sdrest.jobs.worker import Worker
    from sdrest.models.registry import Registry

    conn = Connection(socket.socket(fileno=fd).detach())
    queue = ChannelQueue(conn, _lost)
    data = Path(spec.data_dir)
    registry = None
    roots = [data]
    if spec.models_dir is not None:
        registry = Registry(Path(spec.models_dir), cache_path=Path(spec.models_cache) if spec.models_cache else None,
                            links=spec.models_links)
        roots.insert(0, Path(spec.models_dir))
    models = ModelCache(n_threads=spec.n_threads, idle_seconds=spec.idle_unload_seconds,
                        memory_budget_mb=spec.memory_budget_mb)
    worker = Worker(spec.name, queue, models, outputs_dir=data / "outputs", inputs_dir=data / "inputs",
                    registry=registry, roots=roots)
    # Ctrl-C in a terminal and a service manager's SIGTERM reach the whole process group: the supervisor
    # stops this worker; a SIGTERM of its own hands the running job back like a stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: worker.request_stop())
    found = capabilities()
    queue.report(spec.name, {"alive": True, "pid": os.getpid(), "device": spec.device, "host": "process",
                             "capabilities": found, "loaded": []})
    sdcpp = found["sdcpp"]  # a copy built from an sdist has no git history: sd.cpp then reports "unknown"
    version = sdcpp.get("version", "unknown")
    label = version if version != "unknown" else f"from {sdcpp.get('pin', 'an unknown source')}"
    logging.getLogger("sdrest.jobs").info("ready: sd.cpp %s, %s, device %s, pid %d",
                                          label, found["backend"], spec.device, os.getpid())
    worker.run()
    queue.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
