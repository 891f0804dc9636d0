"""Placement: which free worker takes a job. One that already holds the job's model, else the one asking.

A model load costs seconds to minutes while a step costs milliseconds to seconds, so a job waits (briefly) for
a free worker that holds its model rather than making a second worker load it. Used alike by the embedded
queue (workers that ask for work) and the broker's dispatcher (workers on other hosts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sdrest.jobs.store import Job


def model_files(job: Job) -> frozenset[str]:
    """The model files ``job`` needs loaded (empty for kinds that load nothing, such as ``hash``)."""
    params = job.params
    if isinstance(params.get("_context"), Mapping):
        return frozenset(str(path) for path in params["_context"].values() if path)
    if params.get("_upscaler"):
        return frozenset({str(params["_upscaler"])})
    return frozenset()


def holds(loaded: Iterable[Mapping[str, Any]], files: frozenset[str]) -> bool:
    """True when one of ``loaded`` (a worker's report: ``{"kind", "files": {role: path}}``) is exactly ``files``."""
    return bool(files) and any(frozenset(str(p) for p in dict(entry.get("files") or {}).values()) == files
                               for entry in loaded)


def choose(job: Job, candidates: Sequence[str], loaded: Mapping[str, Iterable[Mapping[str, Any]]]) -> str | None:
    """The candidate (free workers, the one asking first) that should run ``job``: the first that holds its
    model, else the first candidate; None when there is none."""
    files = model_files(job)
    for name in candidates:
        if holds(loaded.get(name, ()), files):
            return name
    return candidates[0] if candidates else None
