"""What this build of sd.cpp is and what it runs on."""

from __future__ import annotations

import re
from typing import Any

from sdrest import _native

#: The package whose source distribution carries the stable-diffusion.cpp we build.
SDCPP_PIN = "stable-diffusion-cpp-python==0.4.7"


def system_info() -> str:
    """sd.cpp's system line: the CPU features and backends compiled in."""
    return _native.system_info().strip()


def sdcpp_version() -> dict[str, str]:
    """sd.cpp's version and commit as it reports them, and the pin they come from."""
    return {"version": _native.version(), "commit": _native.commit(), "pin": SDCPP_PIN}


def sdcpp_source() -> dict[str, str]:
    """Where the built-in stable-diffusion.cpp came from, as the fetch script stamped it at build time.

    ``pin`` (the package whose sdist carries it), ``sha256`` (of that sdist, checked before
    unpacking) and ``patches`` (a digest of our patch set); an empty dict when the extension
    was built against another checkout (``-DSDREST_SDCPP_DIR``).
    """
    parts = _native.sdcpp_stamp().split()
    if len(parts) < 2:
        return {}
    out = {"pin": parts[0], "sha256": parts[1]}
    for part in parts[2:]:
        key, _, value = part.partition(":")
        out[key] = value
    return out


def backends() -> list[str]:
    """The ggml backends compiled in, by ggml's names (``CPU``, ``CUDA``, ``Vulkan``, ``Metal`` ...)."""
    return list(_native.backend_names())


def devices() -> list[dict[str, Any]]:
    """The devices those backends see: ``name``, ``description``, ``backend``, ``type``
    (``cpu``/``gpu``/``igpu``/``accel``), ``memory_free`` and ``memory_total`` in bytes."""
    return [dict(d) for d in _native.backend_devices()]


def cpu_features() -> list[str]:
    """The CPU features sd.cpp's ggml was built to use and finds (``AVX2``, ``FMA``, ``NEON`` ...)."""
    return re.findall(r"(\w+) = 1\b", system_info())
