"""System users: passwords checked through PAM (``auth: pam``) or against ``/etc/shadow`` (``auth: unix``).

Both checks block (a password hash costs tens of milliseconds; PAM may sleep seconds after a
failure, see :func:`verify_pam`): the server calls them from a worker thread. They return
``False`` for every wrong credential and raise :class:`SystemAuthUnavailable` only when the host
cannot check passwords at all, with a message that says what to change.

What the server process needs: ``unix`` reads ``/etc/shadow`` itself, so a server that is not root
must be able to read that file (group ``shadow`` on Debian and Ubuntu). ``pam`` with the usual
``pam_unix`` backend needs the same: its setgid helper ``unix_chkpwd`` only checks the password of
the user who runs it, so a server that is neither root nor able to read ``/etc/shadow`` is refused
every other user's password. Other PAM backends (sssd, LDAP, Kerberos) need no such access.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import grp
import hmac
import logging
import os
import pwd
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("sdrest.auth")

#: the local password database ``auth: unix`` reads
SHADOW_PATH = Path("/etc/shadow")
#: where Linux-PAM looks for a service's file, in its order (the vendor dir is used by openSUSE and others)
PAM_SERVICE_DIRS = (Path("/etc/pam.d"), Path("/usr/lib/pam.d"))
#: the single-file configuration Linux-PAM reads only where ``/etc/pam.d`` does not exist
PAM_CONF = Path("/etc/pam.conf")
#: the service used where the configured one has no file: every Linux with PAM has it
FALLBACK_PAM_SERVICE = "login"
#: longest user name accepted (useradd's own limit is 32; LDAP names can be longer)
MAX_USERNAME_CHARS = 64
#: longest password accepted, in UTF-8 bytes: PAM's PAM_MAX_RESP_SIZE, and libxcrypt's own limit
MAX_PASSWORD_BYTES = 512
#: a shadow field value at or past which password aging is off, as pam_unix treats it
_AGING_OFF = 99999
#: large enough for libxcrypt's ``struct crypt_data`` (32 KiB) and for glibc's older one (about 128 KiB)
_CRYPT_DATA_SIZE = 1 << 18
#: hashed when a user is unknown, locked or expired, so that the answer takes as long as a real check
#: (yescrypt at Debian's default cost; a libcrypt without yescrypt just answers at once)
_DUMMY_SETTING = b"$y$j9T$utmrqPJRPNiaxYFvW.wZA1$"
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\Z")


class SystemAuthUnavailable(Exception):
    """System users cannot be checked on this host; the message says what to change.

    Raised for a missing libpam or libcrypt, an ``/etc/shadow`` the server may not read, or a
    PAM stack that fails for reasons other than the credentials. Never raised for a wrong
    user name or password.
    """


# -- input checks shared by both modes -------------------------------------------------------------


def _acceptable(username: str, password: str) -> bool:
    """Whether the credentials are worth asking PAM or libcrypt about at all."""
    if not username or len(username) > MAX_USERNAME_CHARS or not password:
        return False
    if any(unicodedata.category(char) == "Cc" for char in username):  # NUL, newlines, escapes
        return False
    try:
        username.encode("utf-8")
        secret = password.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot reach a C library
        return False
    return b"\0" not in secret and len(secret) <= MAX_PASSWORD_BYTES


def _server_user() -> str:
    """The name of the user this process runs as (its uid when it has no name)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


# -- PAM ---------------------------------------------------------------------------------------------

_warned_services: set[str] = set()
_warned_lock = threading.Lock()

#: PAM results that mean the stack itself failed, not the credentials
_PAM_SETUP_ERRORS = {
    1: "PAM_OPEN_ERR", 2: "PAM_SYMBOL_ERR", 3: "PAM_SERVICE_ERR", 4: "PAM_SYSTEM_ERR", 5: "PAM_BUF_ERR",
    9: "PAM_AUTHINFO_UNAVAIL", 19: "PAM_CONV_ERR", 26: "PAM_ABORT", 28: "PAM_MODULE_UNKNOWN",
}


def _pam_service_exists(name: str) -> bool:
    """Whether Linux-PAM has a configuration for service ``name`` (a file, or lines in /etc/pam.conf)."""
    if any((folder / name).is_file() for folder in PAM_SERVICE_DIRS):
        return True
    if PAM_SERVICE_DIRS[0].is_dir() or not PAM_CONF.is_file():
        return False
    try:
        lines = PAM_CONF.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return False
    return any(line.split()[:1] == [name] for line in lines if not line.lstrip().startswith("#"))


def pam_service_name(configured: str) -> str:
    """The PAM service to authenticate with: ``configured`` when PAM has a file for it, else ``login``.

    A service has a file when ``/etc/pam.d/<name>`` or ``/usr/lib/pam.d/<name>`` exists, or, on the
    rare system without ``/etc/pam.d``, when ``/etc/pam.conf`` has lines for it. Without one, PAM
    would use its ``other`` service (which denies everyone on most distributions), so this falls
    back to ``login`` and logs a warning, once per configured name. install.sh writes
    ``/etc/pam.d/sdrest`` for the default name.

    Raises ValueError for a name that cannot be a PAM service (a path, spaces, control characters).
    """
    if not _SERVICE_NAME.match(configured):
        raise ValueError(f"pam_service: {configured!r} is not a PAM service name "
                         "(letters, digits, '.', '_', '+' and '-', at most 64)")
    if _pam_service_exists(configured):
        return configured
    with _warned_lock:
        first = configured not in _warned_services
        _warned_services.add(configured)
    if first:
        log.warning("PAM service %r has no file in %s: using %r instead (install.sh writes /etc/pam.d/sdrest; "
                    "or set pam_service)", configured, " or ".join(str(d) for d in PAM_SERVICE_DIRS),
                    FALLBACK_PAM_SERVICE)
    return FALLBACK_PAM_SERVICE


@functools.cache
def _warn_if_shadow_unreadable() -> None:
    """Say once, at the first PAM check, when pam_unix will not be able to check other users' passwords."""
    if os.geteuid() != 0 and not os.access(SHADOW_PATH, os.R_OK):
        user = _server_user()
        log.warning("sdrest runs as %s, which cannot read %s: PAM's pam_unix then refuses every other user's "
                    "password (add %s to group %s and restart; PAM backends such as sssd are not affected)",
                    user, SHADOW_PATH, user, _file_group(SHADOW_PATH))


@functools.cache
def _libpam_installed() -> bool:
    """Whether the dynamic linker knows libpam (asked once: find_library runs ldconfig)."""
    return ctypes.util.find_library("pam") is not None


def _pam_authenticator() -> Any:
    """A fresh python-pam authenticator (one per check: an instance must not be shared between threads)."""
    if not _libpam_installed():
        raise SystemAuthUnavailable("auth pam: libpam is not installed (libpam0g on Debian and Ubuntu, pam on "
                                    "Fedora); install it, or use auth unix or jwt")
    try:
        import pam  # type: ignore[import-untyped]
    except ImportError as exc:
        raise SystemAuthUnavailable(f"auth pam: python-pam cannot be imported ({exc}); reinstall sdrest") from exc
    try:
        return pam.pam()
    except (OSError, AttributeError) as exc:  # a libpam without the functions python-pam binds
        raise SystemAuthUnavailable(f"auth pam: libpam cannot be loaded ({exc})") from exc


def verify_pam(username: str, password: str, service: str) -> bool:
    """Whether PAM service ``service`` accepts ``password`` for ``username`` and lets the account in.

    Runs PAM's authentication and then its account management (python-pam calls
    ``pam_acct_mgmt`` after a successful ``pam_authenticate``), so an expired or locked
    account, or one whose password must be changed first, is refused. Credentials are not
    established (no ``pam_setcred``: modules such as pam_group would change this process's
    groups). Empty passwords, passwords over 512 bytes or holding NUL, and user names that are
    empty, longer than 64 characters or hold control characters are refused without asking PAM.

    Blocks: a PAM stack usually sleeps after a failure (pam_unix about 2 s, Debian's ``login``
    3 s through pam_faildelay, both varied by a quarter either way).

    Raises SystemAuthUnavailable when libpam is missing or the stack fails for reasons other
    than the credentials (a broken service file, an unreachable directory server).
    """
    if not _acceptable(username, password):
        return False
    authenticator = _pam_authenticator()
    _warn_if_shadow_unreadable()
    accepted = bool(authenticator.authenticate(username, password, service=service, resetcreds=False))
    if accepted:
        return True
    code = int(getattr(authenticator, "code", 0))
    if code in _PAM_SETUP_ERRORS:
        reason = getattr(authenticator, "reason", "") or ""
        hint = ""
        if os.geteuid() != 0 and not os.access(SHADOW_PATH, os.R_OK):
            hint = f"; sdrest runs as {_server_user()}, which cannot read {SHADOW_PATH} (add it to group " \
                   f"{_file_group(SHADOW_PATH)})"
        raise SystemAuthUnavailable(f"auth pam: PAM service {service!r} cannot check passwords: {reason} "
                                    f"({_PAM_SETUP_ERRORS[code]}){hint}")
    return False


# -- /etc/shadow and libcrypt ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _ShadowEntry:
    """The fields of one ``/etc/shadow`` line that decide a login (days count from 1970-01-01)."""

    password_hash: str
    last_change: int | None
    max_days: int | None
    inactive_days: int | None
    expire_day: int | None

    @classmethod
    def parse(cls, fields: list[str]) -> _ShadowEntry:
        """From a line's fields; ValueError for a malformed one (which getspnam would skip too)."""
        if len(fields) < 8:
            raise ValueError("fewer than 8 fields")

        def day(text: str) -> int | None:
            value = int(text) if text.strip() else -1
            return None if value < 0 else value  # empty and -1 both mean "not set"

        return cls(fields[1], day(fields[2]), day(fields[4]), day(fields[6]), day(fields[7]))

    def refusal(self, today: int) -> str | None:
        """Why this account may not log in today, or None; the rules of pam_unix's account check."""
        if not self.password_hash:
            return "no password set"
        if self.password_hash[0] in "!*":
            return "account locked"
        if self.expire_day is not None and today >= self.expire_day:
            return "account expired"
        if self.last_change == 0:
            return "password must be changed first"
        if self.last_change is not None and self.max_days is not None and self.max_days < _AGING_OFF:
            if (self.inactive_days is not None and self.inactive_days < _AGING_OFF
                    and self.last_change + self.max_days + self.inactive_days < today):
                return "account inactive since its password expired"
            if self.last_change + self.max_days < today:
                return "password expired"
        return None


def _file_group(path: Path) -> str:
    """The group that owns ``path`` (``shadow`` on Debian), or a description when it cannot be told."""
    try:
        return grp.getgrgid(path.stat().st_gid).gr_name
    except (OSError, KeyError):
        return "that owns it"


def _shadow_entry(username: str, path: Path) -> _ShadowEntry | None:
    """``username``'s line of the shadow file, None when it has none or the line is malformed."""
    try:
        with path.open(encoding="utf-8", errors="surrogateescape") as lines:
            for line in lines:
                fields = line.rstrip("\n").split(":")
                if fields[0] == username:
                    try:
                        return _ShadowEntry.parse(fields)
                    except ValueError as exc:
                        log.warning("%s: the entry of %s is malformed (%s): refused", path, username, exc)
                        return None
    except PermissionError:
        user = _server_user()
        raise SystemAuthUnavailable(
            f"auth unix: sdrest runs as {user}, which may not read {path}: add it to group {_file_group(path)} "
            f"(usermod -aG {_file_group(path)} {user}) and restart sdrest, run it as root, or use auth pam"
        ) from None
    except FileNotFoundError:
        raise SystemAuthUnavailable(f"auth unix: {path} does not exist: this host keeps no local "
                                    "passwords; use auth pam") from None
    except OSError as exc:
        raise SystemAuthUnavailable(f"auth unix: cannot read {path}: {exc}") from exc
    return None


@functools.cache
def _crypt_function() -> Callable[[bytes, bytes], bytes | None]:
    """libcrypt's hash function, thread-safe: ``crypt_r`` with its own buffer per call, else ``crypt`` under a lock."""
    name = ctypes.util.find_library("crypt")
    if name is None:
        raise SystemAuthUnavailable("auth unix: libcrypt is not installed (libcrypt1 on Debian and Ubuntu, "
                                    "libxcrypt on Fedora); install it, or use auth pam")
    try:
        library = ctypes.CDLL(name)
    except OSError as exc:
        raise SystemAuthUnavailable(f"auth unix: {name} cannot be loaded ({exc}); use auth pam") from exc
    if hasattr(library, "crypt_r"):
        crypt_r = library.crypt_r
        crypt_r.restype = ctypes.c_char_p
        crypt_r.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]

        def reentrant(phrase: bytes, setting: bytes) -> bytes | None:
            data = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)  # zeroed, as crypt_r wants it the first time
            return crypt_r(phrase, setting, data)

        return reentrant
    crypt = library.crypt
    crypt.restype = ctypes.c_char_p
    crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lock = threading.Lock()

    def locked(phrase: bytes, setting: bytes) -> bytes | None:
        with lock:  # crypt returns a static buffer; the bytes are copied out before the lock goes
            return crypt(phrase, setting)

    return locked


def _hash(password: str, setting: bytes) -> bytes | None:
    """``password`` hashed with ``setting`` (a whole stored hash works), None when libcrypt cannot do it."""
    result = _crypt_function()(password.encode("utf-8"), setting)
    return None if not result or result.startswith(b"*") else result


def verify_unix(username: str, password: str, *, shadow_path: Path = SHADOW_PATH) -> bool:
    """Whether ``password`` is ``username``'s, by the local shadow file and libcrypt, and the account may log in.

    Only local users count: the user must have a line in ``shadow_path`` and exist for ``pwd``
    (users from LDAP or sssd need auth pam). Refused without a hash check, but after the same
    time spent: locked accounts (a hash starting with ``!`` or ``*``), accounts without a
    password, accounts past their expiry day, and passwords past their maximum age (or unused
    past the inactive days after it) or marked for change (last change 0), as pam_unix's account
    check refuses them. The hash may be any method the host's libcrypt knows: yescrypt (``$y$``,
    Debian's default), SHA-512 (``$6$``), SHA-256 (``$5$``) and the rest; it is compared in
    constant time. The same input limits as :func:`verify_pam` apply.

    Raises SystemAuthUnavailable when the shadow file cannot be read (a server that is not root
    needs group ``shadow``) or libcrypt is missing.
    """
    if not _acceptable(username, password) or ":" in username or username[0] in "+-":
        return False
    entry = _shadow_entry(username, shadow_path)
    if entry is None:
        refusal: str | None = "no such local user"
    else:
        try:
            pwd.getpwnam(username)
            refusal = entry.refusal(int(time.time() // 86400))
        except KeyError:
            refusal = "no such user in the passwd database"
    if refusal is not None or entry is None:
        _hash(password, _DUMMY_SETTING)
        log.debug("auth unix: %s refused: %s", username, refusal)
        return False
    stored = entry.password_hash.encode("utf-8", errors="surrogateescape")
    computed = _hash(password, stored)
    if computed is None:
        method = entry.password_hash.split("$")[1] if entry.password_hash.startswith("$") else "traditional"
        log.warning("auth unix: this host's libcrypt cannot check the %s password hash of %s: refused",
                    method, username)
        return False
    return hmac.compare_digest(computed, stored)


# -- the setting ---------------------------------------------------------------------------------------


def verify_system_password(mode: str, username: str, password: str, *, pam_service: str) -> bool:
    """Check a system user's password for auth ``mode``: ``pam`` (through ``pam_service``) or ``unix``.

    ``pam_service`` is the configured name: :func:`pam_service_name` picks ``login`` where it has
    no file. Blocks; raises SystemAuthUnavailable as the mode's own check does, and ValueError
    for any other mode.
    """
    if mode == "pam":
        return verify_pam(username, password, pam_service_name(pam_service))
    if mode == "unix":
        return verify_unix(username, password)
    raise ValueError(f"auth mode {mode!r} has no system users (expected 'pam' or 'unix')")
