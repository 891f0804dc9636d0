"""``install.sh`` and ``uninstall.sh`` in a throwaway prefix: layout, config, unit, a running server, removal.

The install uses a wheel of this checkout: ``$SDREST_TEST_WHEEL`` when set, else one
built here with ``pip wheel`` (``--no-build-isolation`` when scikit-build-core and pybind11
are installed, as the test extra does). It reuses the checkout's ``build/`` folder and
ccache. Measured on 2 busy cores: a wheel of an already built checkout takes 8 s without
isolation (the first such build after an isolated one recompiles the extension's own sources
for the new pybind11 path: 2.5 min), and 4 min with isolation (every isolated build has a new
pybind11 path); the first build in a fresh checkout is the native build itself (6 to 20
minutes). The install proper then takes 30 s to 2 min (the venv's packages from pip's index
or cache).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sdrest.config import ServerConfig

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "install.sh"
UNINSTALL = REPO / "uninstall.sh"
PAM_SERVICE = REPO / "deploy" / "pam-service.sh"
PAM_HEADER = "# PAM service of sdrest (auth pam), written by its install.sh; uninstall.sh removes it unless edited\n"
DEBIAN_PAM = PAM_HEADER + "@include common-auth\n@include common-account\n"
SYSTEM_AUTH_PAM = PAM_HEADER + "auth     include  system-auth\naccount  include  system-auth\n"

pytestmark = pytest.mark.skipif(sys.platform != "linux" or shutil.which("bash") is None,
                                reason="install.sh is for Linux with bash")


def clean_env() -> dict[str, str]:
    """The environment of an operator's shell: nothing pointing Python at this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH", "VIRTUAL_ENV")
           and not k.startswith("SDREST_")}
    return {**env, "PYTHON": sys.executable}


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*cmd: str | Path, timeout: float = 1800, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a script as an operator would (with ``env`` added to its environment); output captured."""
    return subprocess.run([str(c) for c in cmd], env={**clean_env(), **(env or {})}, check=False,
                          capture_output=True, text=True, timeout=timeout)


def pam_dir(root: Path, *stack: str) -> Path:
    """A stand-in for /etc/pam.d holding the distribution's ``stack`` files (common-auth, system-auth ...)."""
    folder = root / "pam.d"
    folder.mkdir()
    for name in stack:
        (folder / name).write_text(f"# {name} of the distribution\n")
    return folder


@dataclasses.dataclass
class Install:
    """One installation made by install.sh, and what it printed."""

    prefix: Path
    data: Path
    port: int
    output: str
    seconds: float

    @property
    def config(self) -> Path:
        return self.prefix / "etc" / "sdrest.yaml"

    @property
    def unit(self) -> Path:
        return self.prefix / "etc" / "sdrest.service"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout (see the module's docstring)."""
    given = os.environ.get("SDREST_TEST_WHEEL")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("wheel")
    # With the build requirements at hand (the test extra has them), build without isolation: the
    # checkout's build/ folder then stays configured for the same pybind11, and nothing recompiles.
    have_build_deps = all(importlib.util.find_spec(name) for name in ("scikit_build_core", "pybind11"))
    isolation = ["--no-build-isolation"] if have_build_deps else []
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                           *isolation, "-w", str(out), str(REPO)], check=False, capture_output=True, text=True,
                          timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return next(out.glob("sdrest-*.whl"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Iterator[Install]:
    """sdrest installed by install.sh into a throwaway prefix, without the service; purged afterwards."""
    root = tmp_path_factory.mktemp("install")
    prefix, data, port = root / "prefix", root / "data", free_port()
    started = time.monotonic()
    done = run(INSTALL, "--prefix", prefix, "--no-service", "--user", subprocess.getoutput("id -un"),
               "--port", str(port), "--host", "127.0.0.1", "--data-dir", data, "--auth", "jwt", "--wheel", wheel)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield Install(prefix, data, port, done.stdout + done.stderr, seconds)
    if (prefix / "etc" / "install.state").exists():
        run(UNINSTALL, "--prefix", prefix, "--purge")


def test_layout_and_config(installed: Install) -> None:
    assert installed.seconds < 180, f"install took {installed.seconds:.0f} s"
    assert (installed.prefix / "venv" / "bin" / "sdrest").is_file()
    assert os.path.realpath(installed.prefix / "bin" / "sdrest") == str(installed.prefix / "venv" / "bin" / "sdrest")
    config = yaml.safe_load(installed.config.read_text())
    assert config == {"host": "127.0.0.1", "port": installed.port, "data_dir": str(installed.data),
                      "models_dir": str(installed.data / "models"), "auth": "jwt"}
    assert set(config) <= {f.name for f in dataclasses.fields(ServerConfig)}
    assert installed.config.stat().st_mode & 0o777 == 0o640
    for folder in (installed.data, installed.data / "models"):
        assert folder.stat().st_mode & 0o777 == 0o750
    assert "not written" not in installed.output  # --auth is a server setting
    assert "pam_file=\n" in (installed.prefix / "etc" / "install.state").read_text()  # no PAM file for jwt
    assert f"http://127.0.0.1:{installed.port}/" in installed.output
    assert "first admin:" in installed.output
    info = subprocess.run([str(installed.prefix / "bin" / "sdrest"), "info", "--json"], env=clean_env(),
                          check=False, capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    facts = json.loads(info.stdout)
    assert facts["sdrest"]["location"].startswith(str(installed.prefix / "venv"))
    assert "CPU" in facts["backends"] and facts["sdcpp"]["sha256"]


def test_unit_file(installed: Install) -> None:
    unit = installed.unit.read_text()
    for line in ("NoNewPrivileges=true", "ProtectSystem=strict", "PrivateTmp=true", "Restart=on-failure",
                 f"ReadWritePaths={installed.data} {installed.data / 'models'}",
                 f"ExecStart={installed.prefix}/venv/bin/sdrest serve --config {installed.config}"):
        assert line in unit.splitlines(), line
    assert not re.search(r"@[A-Z_]+@", unit), "every placeholder filled"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    done = subprocess.run([analyze, "verify", str(installed.unit)], check=False, capture_output=True, text=True,
                          timeout=120)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if str(installed.unit) in line]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr


def test_installed_server_answers(installed: Install) -> None:
    """The installed command, run as the unit runs it, serves /api/health."""
    proc = subprocess.Popen([str(installed.prefix / "bin" / "sdrest"), "serve", "--config", str(installed.config)],
                            env=clean_env(), cwd=installed.data, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:  # uvicorn says when it listens: that is the event to wait for
            lines.append(line)
            if "Uvicorn running on" in line:
                break
        else:
            raise AssertionError("the server stopped:\n" + "".join(lines))
        with urllib.request.urlopen(f"http://127.0.0.1:{installed.port}/api/health", timeout=30) as response:
            assert response.status == 200
            assert b'"status":"ok"' in response.read()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if proc.stderr is not None:
            proc.stderr.close()


def test_second_run_upgrades_in_place_then_uninstall(installed: Install, wheel: Path, tmp_path: Path) -> None:
    """Runs last: a second install keeps config and data; uninstall keeps data unless --purge.

    The second run asks for auth pam (the config keeps what the first wrote, but the PAM service file
    is written all the same, into a stand-in for /etc/pam.d); uninstall removes that file again.
    """
    marker = installed.data / "outputs-survive.txt"
    marker.write_text("mine")
    before = installed.config.read_text()
    pam = pam_dir(tmp_path, "common-auth", "common-account")
    again = run(INSTALL, "--prefix", installed.prefix, "--no-service", "--user", subprocess.getoutput("id -un"),
                "--port", "1", "--data-dir", installed.data, "--wheel", wheel, "--auth", "pam",
                env={"SDREST_PAM_DIR": str(pam)})
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "kept the existing config" in again.stdout
    assert installed.config.read_text() == before and marker.read_text() == "mine"
    assert (pam / "sdrest").read_text() == DEBIAN_PAM and (pam / "sdrest").stat().st_mode & 0o777 == 0o644
    assert f"wrote {pam / 'sdrest'} (debian)" in again.stdout
    assert f"pam_file={pam / 'sdrest'}\n" in (installed.prefix / "etc" / "install.state").read_text()

    removed = run(UNINSTALL, "--prefix", installed.prefix)
    assert removed.returncode == 0, removed.stderr
    assert not (installed.prefix / "venv").exists() and not (installed.prefix / "bin" / "sdrest").exists()
    assert marker.read_text() == "mine" and installed.config.read_text() == before
    assert not (pam / "sdrest").exists() and f"removed {pam / 'sdrest'}" in removed.stdout

    purged = run(UNINSTALL, "--prefix", installed.prefix, "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not installed.data.exists() and not installed.prefix.exists()


@pytest.mark.parametrize(("args", "words"), [
    (["--port", "http"], "--port: expected a number, got 'http'"),
    (["--port", "70000"], "--port: must be 1..65535, got 70000"),
    (["--frobnicate"], "unknown option: --frobnicate"),
    (["--wheel", "/nonexistent.whl"], "--wheel: no such file: /nonexistent.whl"),
    (["--prefix", "/tmp/with space"], "paths with spaces"),
    (["--auth", "ldap"], "--auth: expected none, api-key, jwt, pam, unix or optional, got 'ldap'"),
    (["--host", "0.0.0.0"], "--host 0.0.0.0 without --auth"),
    (["--host", "0.0.0.0", "--auth", "none"], "--host 0.0.0.0 without --auth"),
])
def test_bad_options(args: list[str], words: str, tmp_path: Path) -> None:
    done = run(INSTALL, "--no-service", "--prefix", tmp_path / "p", *args)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("install.sh: error: ") and words in lines[0], done.stderr
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(("stack", "written"), [
    (["common-auth", "common-account"], DEBIAN_PAM),
    (["system-auth"], SYSTEM_AUTH_PAM),
    (["common-auth", "common-account", "system-auth"], DEBIAN_PAM),
])
def test_pam_service_file_follows_the_distribution(stack: list[str], written: str, tmp_path: Path) -> None:
    folder = pam_dir(tmp_path, *stack)
    done = run(PAM_SERVICE, "write", folder / "sdrest")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (folder / "sdrest").read_text() == written
    assert sorted(p.name for p in folder.iterdir()) == sorted([*stack, "sdrest"])  # no temporary file left


def test_pam_service_file_is_not_written_without_a_stack(tmp_path: Path) -> None:
    folder = pam_dir(tmp_path, "login")
    done = run(PAM_SERVICE, "write", folder / "sdrest")
    assert done.returncode == 2
    assert "has neither common-auth nor system-auth" in done.stdout and "'login' service" in done.stdout
    assert not (folder / "sdrest").exists()
    absent = run(PAM_SERVICE, "write", tmp_path / "no-pam.d" / "sdrest")
    assert absent.returncode == 2 and "PAM is not set up here" in absent.stdout


def test_pam_service_file_of_the_admin_is_kept(tmp_path: Path) -> None:
    """An existing file is never overwritten, and removal spares a file that was edited after install.sh."""
    folder = pam_dir(tmp_path, "common-auth", "common-account")
    theirs = folder / "sdrest"
    theirs.write_text("auth required pam_sss.so\n")
    done = run(PAM_SERVICE, "write", theirs)
    assert done.returncode == 2 and f"kept the existing {theirs}" in done.stdout
    assert theirs.read_text() == "auth required pam_sss.so\n"
    kept = run(PAM_SERVICE, "remove", theirs)
    assert kept.returncode == 0 and f"kept {theirs}: it was edited" in kept.stdout and theirs.exists()

    theirs.unlink()
    assert run(PAM_SERVICE, "write", theirs).returncode == 0
    with theirs.open("a") as edit:
        edit.write("auth required pam_faillock.so\n")
    assert run(PAM_SERVICE, "remove", theirs).returncode == 0 and theirs.exists()
    theirs.write_text(DEBIAN_PAM)
    removed = run(PAM_SERVICE, "remove", theirs)
    assert removed.returncode == 0 and not theirs.exists()
    assert run(PAM_SERVICE, "remove", theirs).returncode == 0  # nothing there: nothing to do
