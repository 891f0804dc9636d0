"""What this build of sd.cpp is and what it runs on."""

from __future__ import annotations

from sdrest import _native

#: The package whose source distribution carries the stable-diffusion.cpp we build.
SDCPP_PIN = "stable-diffusion-cpp-python==0.4.7"


def system_info() -> str:
    """sd.cpp's system line: the CPU features and backends compiled in."""
    return _native.system_info().strip()


def sdcpp_version() -> dict[str, str]:
    """sd.cpp's version and commit as it reports them, and the pin they come from."""
    return {"version": _native.version(), "commit": _native.commit(), "pin": SDCPP_PIN}
