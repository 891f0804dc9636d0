"""``sdrest info`` and ``sdrest --version``: what this install is and what it runs on.

``info`` prints sdrest's and stable-diffusion.cpp's versions (the pinned source and
its sha256), the ggml backends compiled in, the devices they see, the CPU features,
the default thread count, and the folders the server would use; ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import sdrest

__all__ = ["VersionAction", "collect", "format_info", "register", "run_info", "version_text"]

EXAMPLES = textwrap.dedent("""\
    examples:
      sdrest info                 # is this the CUDA build? does it see the GPU?
      sdrest info --json | jq .devices
      SDREST_DATA_DIR=/var/lib/sdrest sdrest info   # the folders a server with this setting uses
    """)


def register(subparsers: Any) -> None:
    """Add the ``info`` subcommand."""
    parser = subparsers.add_parser(
        "info", help="versions, backends, devices, CPU features, folders",
        description="Show what this sdrest is built with and what it runs on.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run_info)


def version_text() -> str:
    """``sdrest X (stable-diffusion.cpp from PIN, Python Y)``, for ``--version``."""
    from sdrest.system import SDCPP_PIN, sdcpp_source

    pin = sdcpp_source().get("pin", SDCPP_PIN)
    return f"sdrest {sdrest.__version__} (stable-diffusion.cpp from {pin}, Python {platform.python_version()})"


class VersionAction(argparse.Action):
    """``--version``: print :func:`version_text` and exit 0 (computed only when asked: it loads the extension)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: Optional[str] = None) -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        print(version_text())
        parser.exit(0)


def _folders(environ: Optional[dict[str, str]] = None) -> dict[str, Optional[str]]:
    """The server's folders as its settings (``SDREST_*`` env, ``SDREST_CONFIG``) resolve them here."""
    from sdrest.config import load_config
    from sdrest.testing.synthetic import cache_dir

    environ = dict(os.environ if environ is None else environ)
    config = load_config({}, environ)
    return {
        "config_file": environ.get("SDREST_CONFIG") or None,
        "data_dir": str(config.data_dir),
        "models_dir": str(config.models_dir) if config.models_dir else None,
        "models_cache": str(config.data_dir / "models-cache.json"),
        "synthetic_cache": str(cache_dir()),
    }


def collect() -> dict[str, Any]:
    """Everything ``sdrest info`` shows, as a JSON-friendly dict."""
    from sdrest import system
    from sdrest.threads import available_physical_cores

    return {
        "sdrest": {"version": sdrest.__version__, "location": str(Path(sdrest.__file__).parent),
                   "python": f"{platform.python_version()} ({sys.executable})"},
        "sdcpp": {**system.sdcpp_source(), "reported_version": system.sdcpp_version()["version"],
                  "reported_commit": system.sdcpp_version()["commit"]},
        "backends": system.backends(),
        "devices": system.devices(),
        "cpu_features": system.cpu_features(),
        "threads_default": available_physical_cores(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "folders": _folders(),
    }


def _memory(device: dict[str, Any]) -> str:
    total = device.get("memory_total") or 0
    if not total:
        return ""
    return f", {device['memory_free'] / 2**30:.1f} of {total / 2**30:.1f} GiB free"


def format_info(info: dict[str, Any]) -> str:
    """The text ``sdrest info`` prints: one ``key: value`` line per fact, devices indented."""
    sd = info["sdcpp"]
    source = (f"{sd['pin']} (sdist sha256 {sd['sha256']}, patches {sd.get('patches', '?')[:12]})"
              if "pin" in sd else "another checkout (built with -DSDREST_SDCPP_DIR)")
    lines = [
        f"sdrest:            {info['sdrest']['version']} ({info['sdrest']['location']})",
        f"python:            {info['sdrest']['python']}",
        f"stable-diffusion.cpp: {source}",
        f"  reports:         version {sd['reported_version']}, commit {sd['reported_commit']}",
        f"backends:          {', '.join(info['backends'])}",
        "devices:",
        *(f"  {d['backend']}: {d['name']} - {d['description']} ({d['type']}{_memory(d)})" for d in info["devices"]),
        f"cpu features:      {' '.join(info['cpu_features']) or 'none reported'}",
        f"threads (default): {info['threads_default']}",
        f"platform:          {info['platform']}",
    ]
    for key, value in info["folders"].items():
        lines.append(f"{key.replace('_', ' ') + ':':<19}{value if value is not None else '(not set)'}")
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    """Print the facts; exit 0."""
    info = collect()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0
