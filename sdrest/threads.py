"""How many threads to give sd.cpp: the physical cores this process may actually use."""

from __future__ import annotations

import math
import os
from pathlib import Path


def _usable_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def _cgroup_cpu_limit() -> float | None:
    """CPU quota of the cgroup (v2 ``cpu.max`` or v1 ``cfs_quota``), in CPUs, if any."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota_us > 0 and period_us > 0:
            return quota_us / period_us
    except (OSError, ValueError):
        pass
    return None


def available_physical_cores() -> int:
    """Physical cores among the CPUs this process may run on, capped by a cgroup quota.

    Hyper-threads of one core count once (ggml's matrix kernels gain nothing from
    them); a container's CPU quota caps the count.
    """
    cpus = _usable_cpus()
    cores: set[tuple[str, str]] = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            cores = set()
            break
        cores.add((package, core))
    count = len(cores) if cores else len(cpus)
    limit = _cgroup_cpu_limit()
    if limit is not None:
        count = min(count, max(1, math.ceil(limit)))
    return max(1, count)
