"""A worker process: ``python -m sdrest.jobs.child FD SPEC_JSON``, started by :class:`~sdrest.jobs.process.WorkerProcess`.

It owns the native contexts of one device, talks to its supervisor over the inherited socket ``FD``
(:class:`~sdrest.jobs.channel.ChannelQueue`), writes outputs into the data dir, and logs to stderr,
which the supervisor relays into the server's log under the worker's name. A crash here (a segfault in
sd.cpp, a CUDA abort) ends this process only; ``faulthandler`` prints where it happened.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

#: The log line format of a worker process; the supervisor parses it to keep each line's level.
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker process is told at start (plain JSON on its command line)."""

    name: str
    device: str
    data_dir: str
    models_dir: str | None
    models_cache: str | None
    n_threads: int | None
    idle_unload_seconds: float
    memory_budget_mb: int
    models_links: str = "follow"
    log_level: str = "info"

    def to_json(self) -> str:
        """The spec as the child's argument."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        """The spec from the child's argument."""
        return cls(**json.loads(text))


def capabilities() -> dict[str, Any]:
    """What this build of the native library offers and sees: names (from the C library), versions, the
    backends compiled in, the devices they find, system info."""
    import sdrest
    from sdrest import names, system

    compiled = system.backends()
    accelerators = [name for name in compiled if name != "CPU"]
    return {"samplers": names.samplers(), "schedulers": names.schedulers(), "weight_types": names.weight_types(),
            "sdrest": sdrest.__version__, "sdcpp": {**system.sdcpp_version(), **system.sdcpp_source()},
            "system_info": system.system_info(), "backends": compiled, "devices": system.devices(),
            "backend": accelerators[0] if accelerators else "CPU"}


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
    logging.getLogger("sdrest.jobs").info("ready: sd.cpp %s, %s, device %s, pid %d",
                                          found["sdcpp"].get("version", "?"), found["backend"], spec.device,
                                          os.getpid())
    worker.run()
    queue.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
