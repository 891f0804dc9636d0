"""What a worker process is told at start, and what it reports once ready.

Shared by the supervisor (:mod:`sdrest.jobs.process`) and the worker process (:mod:`sdrest.jobs.child`,
which nothing imports, so ``python -m sdrest.jobs.child`` runs it once).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
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
