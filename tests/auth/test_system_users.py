"""System users (auth pam and unix) against a real account this module creates, and the shadow rules on their own.

The account (``sdrt`` and six random letters, a random password, no home, no login shell) needs
root and the shadow tools (``useradd``, ``chpasswd``, ``usermod``, ``chage``, ``userdel``): CI runs as
root; elsewhere those tests skip. Failed PAM checks go through a service file of this module's own
(``pam_unix`` with ``nodelay``) so they do not sleep; one goes through ``login``, which sleeps about
3 s on a failure (pam_faildelay), as a real login does.
"""

from __future__ import annotations

import logging
import os
import pwd
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdrest.auth import system_users
from sdrest.testing.accounts import SystemUser, admin, random_letters, system_account
from sdrest.auth.system_users import (
    SystemAuthUnavailable,
    pam_service_name,
    verify_pam,
    verify_system_password,
    verify_unix,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="system users are checked on Linux")

#: "pw" hashed with SHA-512 and the salt "saltsalt" (by libcrypt), for the rules that need no real account
PW_SHA512 = "$6$saltsalt$pauPrmdmG4BTE9h2HPmywiw152IFch6BJCEsaY6D.PLTfpV8sqvXwWdyfsgVgozkYH9B80bAip/08R2BPH2xk/"


@pytest.fixture(scope="module")
def account() -> Iterator[SystemUser]:
    """A real system user with a random name and password, and a PAM service that checks it; removed after."""
    with system_account() as made:
        yield made


@pytest.fixture
def user(account: SystemUser) -> SystemUser:
    """The account reset for one test: its password hashed with yescrypt, unlocked, no expiry or aging."""
    set_password(account, "YESCRYPT")
    admin("chage", "--expiredate", "-1", "--maxdays", "-1", "--inactive", "-1", account.name)
    return account


def set_password(user: SystemUser, method: str) -> None:
    """Set the account's password with chpasswd's crypt ``method``; skip when this chpasswd lacks it."""
    done = subprocess.run(["chpasswd", "--crypt-method", method], input=f"{user.name}:{user.password}\n",
                          capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0 and "method" in done.stderr.lower():
        pytest.skip(f"this chpasswd cannot hash with {method}: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr


# -- unix: /etc/shadow and libcrypt ----------------------------------------------------------------


@pytest.mark.parametrize(("method", "prefix"), [("YESCRYPT", "$y$"), ("SHA512", "$6$"), ("SHA256", "$5$")])
def test_unix_checks_each_hash_method(user: SystemUser, method: str, prefix: str) -> None:
    set_password(user, method)
    assert user.shadow_hash().startswith(prefix)
    assert verify_unix(user.name, user.password) is True
    assert verify_unix(user.name, user.password + "x") is False
    assert verify_unix(user.name, user.password.upper()) is False
    assert verify_unix(user.name, user.password[:-1]) is False


def test_unix_unknown_user(user: SystemUser) -> None:
    assert verify_unix("sdrt" + random_letters(8), user.password) is False


def test_unix_locked_then_unlocked(user: SystemUser) -> None:
    admin("usermod", "--lock", user.name)
    assert user.shadow_hash().startswith("!")
    assert verify_unix(user.name, user.password) is False
    admin("usermod", "--unlock", user.name)
    assert verify_unix(user.name, user.password) is True


# chage arguments and what they do: each refuses the right password
EXPIRED = {
    "account expired": ["--expiredate", "0"],
    "password must be changed": ["--lastday", "0"],
    "password past its maximum age": ["--lastday", "2001-01-01", "--maxdays", "30"],
}


@pytest.mark.parametrize("change", EXPIRED.values(), ids=EXPIRED.keys())
def test_expired_accounts_are_refused(user: SystemUser, change: list[str]) -> None:
    admin("chage", *change, user.name)
    assert verify_unix(user.name, user.password) is False
    assert verify_pam(user.name, user.password, user.pam_service) is False  # pam_unix's account check


def test_unix_through_the_setting(user: SystemUser) -> None:
    assert verify_system_password("unix", user.name, user.password, pam_service="unused") is True
    assert verify_system_password("unix", user.name, "wrong", pam_service="unused") is False
    with pytest.raises(ValueError, match="'jwt' has no system users"):
        verify_system_password("jwt", user.name, user.password, pam_service="sdrest")


# -- pam -------------------------------------------------------------------------------------------


def test_pam_right_wrong_unknown_locked(user: SystemUser) -> None:
    assert verify_pam(user.name, user.password, user.pam_service) is True
    assert verify_pam(user.name, user.password + "x", user.pam_service) is False
    assert verify_pam("sdrt" + random_letters(8), user.password, user.pam_service) is False
    admin("usermod", "--lock", user.name)
    assert verify_pam(user.name, user.password, user.pam_service) is False


def test_pam_login_service(user: SystemUser) -> None:
    """Debian's login stack, as a host without /etc/pam.d/sdrest uses it; its failure sleeps ~3 s."""
    if not (system_users.PAM_SERVICE_DIRS[0] / "login").is_file():
        pytest.skip("this host has no /etc/pam.d/login")
    assert verify_pam(user.name, user.password, "login") is True
    assert verify_pam(user.name, "wrong", "login") is False


def test_pam_through_the_default_setting(user: SystemUser) -> None:
    """The configured default, ``sdrest``: its own file where install.sh wrote it, else ``login``."""
    has_file = any((folder / "sdrest").is_file() for folder in system_users.PAM_SERVICE_DIRS)
    assert pam_service_name("sdrest") == ("sdrest" if has_file else "login")
    assert verify_system_password("pam", user.name, user.password, pam_service="sdrest") is True


def test_unreadable_shadow_says_what_to_do(user: SystemUser) -> None:
    """A server that is neither root nor in group shadow: both modes raise, naming its user and the group.

    The check runs as ``nobody``: pam_unix's setgid helper would check the test user's password
    for the test user itself, but for nobody else.
    """
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody here")
    group = system_users._file_group(system_users.SHADOW_PATH)
    code = textwrap.dedent(f"""
        import os
        from sdrest.auth import system_users as s
        s._pam_authenticator()  # libpam loaded while the interpreter may still read its own files
        os.setgroups([]); os.setgid({nobody.pw_gid}); os.setuid({nobody.pw_uid})
        for check in (lambda: s.verify_unix({user.name!r}, {user.password!r}),
                      lambda: s.verify_pam({user.name!r}, {user.password!r}, {user.pam_service!r})):
            try:
                print("answered", check())
            except s.SystemAuthUnavailable as exc:
                print("unavailable:", exc)
    """)
    package_root = Path(system_users.__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    unix, pam = done.stdout.splitlines()
    assert unix == ("unavailable: auth unix: sdrest runs as nobody, which may not read /etc/shadow: add it "
                    f"to group {group} (usermod -aG {group} nobody) and restart sdrest, run it as root, "
                    "or use auth pam")
    # pam_unix alone in the stack says it cannot get at the hash (a full stack just fails the login)
    assert pam.startswith(f"unavailable: auth pam: PAM service {user.pam_service!r} cannot check passwords"), pam
    assert f"sdrest runs as nobody, which cannot read /etc/shadow (add it to group {group})" in pam
    assert "cannot read /etc/shadow: PAM's pam_unix then refuses every other user's password" in done.stderr


# -- without an account: input limits, the service name, the shadow rules -------------------------


BAD_INPUT = {
    "empty password": ("root", ""),
    "empty name": ("", "pw"),
    "NUL in the name": ("ro\0ot", "pw"),
    "newline in the name": ("root\nx", "pw"),
    "escape in the name": ("root\x1b", "pw"),
    "name of 65 characters": ("r" * 65, "pw"),
    "NUL in the password": ("root", "p\0w"),
    "password over 512 bytes": ("root", "é" * 257),
    "lone surrogate": ("root", "\udcff"),
}


@pytest.mark.parametrize(("username", "password"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_refused_without_asking(username: str, password: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pam() -> None:
        raise AssertionError("PAM was asked")

    monkeypatch.setattr(system_users, "_pam_authenticator", no_pam)
    assert verify_pam(username, password, "login") is False
    assert verify_unix(username, password, shadow_path=tmp_path / "absent") is False  # never opened


@pytest.mark.parametrize("username", ["+root", "-root", "ro:ot"])
def test_unix_refuses_names_shadow_cannot_hold(username: str, tmp_path: Path) -> None:
    assert verify_unix(username, "pw", shadow_path=tmp_path / "absent") is False


def test_service_name_falls_back_to_login_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    absent = "sdrest-absent-" + random_letters(8)
    with caplog.at_level(logging.WARNING, logger="sdrest.auth"):
        assert pam_service_name(absent) == "login"
        assert pam_service_name(absent) == "login"
    warnings = [r.getMessage() for r in caplog.records if r.name == "sdrest.auth"]
    assert len(warnings) == 1 and f"PAM service {absent!r} has no file in /etc/pam.d" in warnings[0]
    assert "using 'login' instead" in warnings[0]


def test_service_name_kept_where_its_file_exists(caplog: pytest.LogCaptureFixture) -> None:
    present = next((path.name for path in sorted(system_users.PAM_SERVICE_DIRS[0].glob("*")) if path.is_file()),
                   None)
    if present is None:
        pytest.skip("no PAM service files in /etc/pam.d here")
    with caplog.at_level(logging.WARNING, logger="sdrest.auth"):
        assert pam_service_name(present) == present
    assert not caplog.records


@pytest.mark.parametrize("name", ["../shadow", "a/b", "", "log in", "login\n", "x" * 65])
def test_service_name_must_be_a_name(name: str) -> None:
    with pytest.raises(ValueError, match="is not a PAM service name"):
        pam_service_name(name)


def shadow_line(**fields: str) -> str:
    """A shadow line for ``root`` (present in every passwd) holding PW_SHA512, with fields replaced."""
    today = str(int(time.time() // 86400))
    values = {"hash": PW_SHA512, "last": today, "min": "0", "max": "99999", "warn": "7", "inactive": "",
              "expire": ""}
    values.update(fields)
    return "root:{hash}:{last}:{min}:{max}:{warn}:{inactive}:{expire}:\n".format(**values)


def days_ago(days: int) -> str:
    """A shadow day number ``days`` before today."""
    return str(int(time.time() // 86400) - days)


RULES = {
    "fresh": ({}, True),
    "aging off (empty max)": ({"last": days_ago(5000), "max": ""}, True),
    "aging off (empty last change)": ({"last": "", "max": "1"}, True),
    "within max age": ({"last": days_ago(30), "max": "30"}, True),
    "past max age": ({"last": days_ago(31), "max": "30"}, False),
    "past max age and inactive days": ({"last": days_ago(50), "max": "30", "inactive": "10"}, False),
    "must change": ({"last": "0"}, False),
    "expires tomorrow": ({"expire": days_ago(-1)}, True),
    "expired today": ({"expire": days_ago(0)}, False),
    "expire -1": ({"expire": "-1"}, True),
    "locked": ({"hash": "!" + PW_SHA512}, False),
    "no login": ({"hash": "*"}, False),
    "no password": ({"hash": ""}, False),
    "malformed day": ({"last": "soon"}, False),
    "unknown method": ({"hash": "$zz$salt$abc"}, False),
}


@pytest.mark.parametrize(("fields", "accepted"), RULES.values(), ids=RULES.keys())
def test_shadow_rules(fields: dict[str, str], accepted: bool, tmp_path: Path) -> None:
    """pam_unix's account rules, on a shadow file of the test's own (libcrypt is needed, root is not)."""
    shadow = tmp_path / "shadow"
    shadow.write_text("daemon:*:19000:0:99999:7:::\n" + shadow_line(**fields))
    assert verify_unix("root", "pw", shadow_path=shadow) is accepted
    assert verify_unix("root", "pW", shadow_path=shadow) is False


def test_user_not_in_passwd_is_refused(tmp_path: Path) -> None:
    absent = "sdrt" + random_letters(8)
    shadow = tmp_path / "shadow"
    shadow.write_text(shadow_line().replace("root:", f"{absent}:", 1))
    assert verify_unix(absent, "pw", shadow_path=shadow) is False


def test_missing_shadow_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SystemAuthUnavailable, match="does not exist: this host keeps no local passwords"):
        verify_unix("root", "pw", shadow_path=tmp_path / "absent")
