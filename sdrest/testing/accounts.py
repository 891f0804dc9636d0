"""A real system account for the tests of auth pam and unix: made with the shadow tools, removed after.

It needs root and the shadow tools (``useradd``, ``chpasswd``, ``usermod``, ``chage``, ``userdel``); where they are
missing :func:`system_account` skips the test with the reason.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import string
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from sdrest.auth import system_users

SHADOW_TOOLS = ("useradd", "userdel", "usermod", "chpasswd", "chage")


@dataclasses.dataclass(frozen=True)
class SystemUser:
    """An account of this host made for the test, and the PAM service file made for it."""

    name: str
    password: str
    uid: int
    gid: int
    pam_service: str  # pam_unix without the failure delay

    def shadow_hash(self) -> str:
        """The account's password field in /etc/shadow as it is now."""
        for line in system_users.SHADOW_PATH.read_text().splitlines():
            fields = line.split(":")
            if fields[0] == self.name:
                return fields[1]
        raise AssertionError(f"{self.name} has no line in /etc/shadow")


def admin(*command: str, stdin: str | None = None) -> None:
    """Run a shadow tool; fail the test with its output when it fails."""
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stdout}{done.stderr}"


def random_letters(count: int) -> str:
    """Lowercase letters, for names nobody else uses."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(count))


@contextmanager
def system_account() -> Iterator[SystemUser]:
    """A real system user with a random name and password, and a PAM service that checks it; removed after."""
    if os.geteuid() != 0:
        pytest.skip("creating a system user needs root (CI runs the tests as root)")
    missing = [tool for tool in SHADOW_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"no {', '.join(missing)} here (the shadow tools, package passwd on Debian)")
    name = "sdrt" + random_letters(6)
    password = "Pw-" + secrets.token_urlsafe(12)
    service = "sdrest-test-" + random_letters(6)
    service_file = system_users.PAM_SERVICE_DIRS[0] / service
    admin("useradd", "--no-create-home", "--shell", shutil.which("nologin") or "/usr/sbin/nologin", name)
    try:
        service_file.write_text("# written by sdrest's tests, removed after them\n"
                                "auth     required pam_unix.so nodelay\n"
                                "account  required pam_unix.so\n")
        entry = subprocess.run(["id", "-u", name], capture_output=True, text=True, check=True)
        group = subprocess.run(["id", "-g", name], capture_output=True, text=True, check=True)
        yield SystemUser(name, password, int(entry.stdout), int(group.stdout), service)
    finally:
        service_file.unlink(missing_ok=True)
        admin("userdel", "--remove", name)
