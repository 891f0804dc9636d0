"""n_threads=None: the physical cores this process may use."""

from __future__ import annotations

import os

from sdrest import _native
from sdrest.threads import available_physical_cores


def test_counts_cores_within_the_affinity_mask() -> None:
    cores = available_physical_cores()
    assert 1 <= cores <= len(os.sched_getaffinity(0))


def test_follows_a_narrowed_affinity_mask() -> None:
    original = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(original)})
        assert available_physical_cores() == 1
    finally:
        os.sched_setaffinity(0, original)


def test_never_more_than_sd_cpp_counts_on_the_machine() -> None:
    # sd.cpp counts the machine's physical cores; we count those we may run on.
    assert available_physical_cores() <= max(_native.num_physical_cores(), 1)
