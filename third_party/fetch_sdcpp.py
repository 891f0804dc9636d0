#!/usr/bin/env python3
"""Fetch the pinned stable-diffusion.cpp source by package name and apply our patches.

The pinned copy travels inside the PyPI source distribution of
``stable-diffusion-cpp-python`` (folder ``vendor/stable-diffusion.cpp``, with ggml,
libwebp and libwebm). This script downloads that sdist with
``pip download --no-deps --no-binary :all:``, checks its sha256, unpacks only that
folder into ``third_party/stable-diffusion.cpp/`` and applies
``third_party/patches/*.patch`` in name order.

Run it by hand (``python third_party/fetch_sdcpp.py``) or let CMake run it when the
folder is missing. It is idempotent: a complete, patched folder is left alone.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "stable-diffusion-cpp-python"
VERSION = "0.4.7"
SHA256 = "998d1957260dd5ae4e18a8acc0c14b0a8757aaa9f96515197b6d5bbf46df9282"
INNER = "vendor/stable-diffusion.cpp"

HERE = Path(__file__).resolve().parent
DEFAULT_DEST = HERE / "stable-diffusion.cpp"
PATCHES = HERE / "patches"
STAMP = ".sdrest-fetched"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Variables pip sets for an isolated build; a nested pip must not inherit them.
_ISOLATION_VARIABLES = ("PYTHONPATH", "PYTHONNOUSERSITE", "PYTHONSAFEPATH", "PIP_BUILD_TRACKER")


def _clean_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ISOLATION_VARIABLES}
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    return env


def _pip_command() -> list[str]:
    """Return a command that runs pip, also from inside pip's isolated build env.

    There, ``sys.executable`` is the outer interpreter with pip's isolation
    variables set; without them it finds its own pip again.
    """
    interpreters = [sys.executable, getattr(sys, "_base_executable", sys.executable)]
    candidates = [[python, "-m", "pip"] for python in dict.fromkeys(interpreters)]
    candidates += [[found] for found in (shutil.which("pip3"), shutil.which("pip")) if found]
    for command in candidates:
        probe = subprocess.run(command + ["--version"], capture_output=True, text=True, env=_clean_environment())
        if probe.returncode == 0:
            return command
    raise SystemExit("fetch_sdcpp: pip is needed to download the pinned source and none was found")


def download_sdist(workdir: Path) -> Path:
    """Download the pinned sdist into ``workdir`` (or reuse a cached copy) and verify it."""
    cache = os.environ.get("SDREST_SDIST_CACHE")
    name = f"{PACKAGE.replace('-', '_')}-{VERSION}.tar.gz"
    if cache:
        cached = Path(cache) / name
        if cached.is_file() and _sha256(cached) == SHA256:
            return cached
    cmd = _pip_command() + [
        "download", "--no-deps", "--no-binary", ":all:",
        "--dest", str(workdir), f"{PACKAGE}=={VERSION}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=_clean_environment())
    archive = workdir / name
    if not archive.is_file():
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"fetch_sdcpp: pip download of {PACKAGE}=={VERSION} failed")
    digest = _sha256(archive)
    if digest != SHA256:
        raise SystemExit(f"fetch_sdcpp: sha256 mismatch for {name}: got {digest}, want {SHA256}")
    if cache:
        Path(cache).mkdir(parents=True, exist_ok=True)
        shutil.copy2(archive, Path(cache) / name)
    return archive


def unpack(archive: Path, dest: Path) -> None:
    """Unpack only ``vendor/stable-diffusion.cpp`` from ``archive`` into ``dest``."""
    top = f"{PACKAGE.replace('-', '_')}-{VERSION}/{INNER}/"
    staging = Path(tempfile.mkdtemp(prefix="sdcpp-", dir=dest.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = []
            for member in tar.getmembers():
                if not member.name.startswith(top) or member.issym() or member.islnk():
                    continue
                rel = member.name[len(top):]
                if not rel or rel.startswith("/") or ".." in Path(rel).parts:
                    continue
                member.name = rel
                members.append(member)
            tar.extractall(staging, members=members, filter="data")
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def apply_patches(dest: Path) -> list[str]:
    """Apply ``patches/*.patch`` in name order with ``patch -p1``; return their names."""
    applied = []
    for patch in sorted(PATCHES.glob("*.patch")):
        result = subprocess.run(
            ["patch", "-p1", "--forward", "--batch", "-i", str(patch)],
            cwd=dest, capture_output=True, text=True,
        )
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            raise SystemExit(f"fetch_sdcpp: patch {patch.name} does not apply")
        applied.append(patch.name)
    return applied


def patches_digest() -> str:
    """A digest of our patches, so a changed patch set triggers a fresh unpack."""
    digest = hashlib.sha256()
    for patch in sorted(PATCHES.glob("*.patch")):
        digest.update(patch.name.encode() + b"\0" + patch.read_bytes())
    return digest.hexdigest()


def fetch(dest: Path = DEFAULT_DEST, force: bool = False) -> Path:
    """Make ``dest`` hold the pinned, patched source; return it."""
    stamp = dest / STAMP
    want = f"{PACKAGE}=={VERSION} {SHA256} patches:{patches_digest()}\n"
    if not force and stamp.is_file() and stamp.read_text() == want:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sdcpp-dl-") as tmp:
        archive = download_sdist(Path(tmp))
        unpack(archive, dest)
    apply_patches(dest)
    stamp.write_text(want)
    return dest


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: fetch into the default or given folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--force", action="store_true", help="unpack again even if up to date")
    args = parser.parse_args(argv)
    path = fetch(args.dest, args.force)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
