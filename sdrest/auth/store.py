"""Users, API keys, sessions, refresh tokens, revocations and the audit log, in SQLite (``auth.sqlite3``).

One file beside the job store, in WAL mode: ``sdrest users`` changes it while the server runs, and the server
sees each change at the next request (nothing about a user is cached across requests).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdrest.database import Database

ADMIN, USER = "admin", "user"
ROLES = (ADMIN, USER)
#: where a user's password lives: a hash here, or the system (PAM, shadow)
LOCAL, SYSTEM = "local", "system"

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")
#: an API key: ``sdr_`` + a public id (12 hex digits, to find it) + ``_`` + 32 random bytes (the secret)
_KEY = re.compile(r"^sdr_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")
KEY_PREFIX = "sdr_"
#: a key's last-used time, and its audit line, are written at most this often
KEY_TOUCH_SECONDS = 60.0
#: audit lines older than this are dropped when the store opens
AUDIT_DAYS = 90

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'local',
    password_hash TEXT,
    created_at REAL NOT NULL,
    last_login REAL,
    disabled INTEGER NOT NULL DEFAULT 0,
    token_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    label TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_used REAL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    jti TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    username TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);
CREATE INDEX IF NOT EXISTS refresh_family ON refresh_tokens (family);
CREATE TABLE IF NOT EXISTS revoked (
    id TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    username TEXT,
    address TEXT,
    method TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT
);
"""


class AuthStoreError(ValueError):
    """A change the store refuses (unknown user, name taken, bad name or role); the message says which."""


@dataclass(frozen=True)
class User:
    """A user as stored (never with the password hash)."""

    username: str
    role: str
    source: str
    created_at: float
    last_login: float | None
    disabled: bool
    token_version: int
    has_password: bool

    def to_dict(self) -> dict[str, Any]:
        """The user as the API shows it."""
        return {"username": self.username, "role": self.role, "source": self.source, "created_at": self.created_at,
                "last_login": self.last_login, "disabled": self.disabled}


@dataclass(frozen=True)
class ApiKey:
    """An API key's record (never the key itself: only its hash is kept)."""

    id: str
    username: str
    label: str
    created_at: float
    last_used: float | None
    revoked_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """The key as the API shows it."""
        return {"id": self.id, "username": self.username, "label": self.label, "created_at": self.created_at,
                "last_used": self.last_used, "revoked": self.revoked_at is not None}


def check_username(name: str) -> str:
    """``name`` if it is a valid user name; AuthStoreError saying what is allowed otherwise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise AuthStoreError("a user name has 1-64 characters: letters, digits and _ . @ -, not starting with . @ -")
    return name


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AuthStore(Database):
    """The auth tables. Thread-safe; every method is one short transaction."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA, foreign_keys=True)
        path.chmod(0o600)
        now = time.time()
        with self._write():
            self._db.execute("DELETE FROM audit WHERE time < ?", (now - AUDIT_DAYS * 86400,))
            self._db.execute("DELETE FROM revoked WHERE expires_at < ?", (now,))
            self._db.execute("DELETE FROM refresh_tokens WHERE expires_at < ?", (now,))
            self._db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    # -- users --------------------------------------------------------------------

    @staticmethod
    def _user(row: sqlite3.Row) -> User:
        return User(username=row["username"], role=row["role"], source=row["source"], created_at=row["created_at"],
                    last_login=row["last_login"], disabled=bool(row["disabled"]), token_version=row["token_version"],
                    has_password=row["password_hash"] is not None)

    def user(self, username: str) -> User | None:
        """The user, or None."""
        row = self._one("SELECT * FROM users WHERE username = ?", username)
        return self._user(row) if row is not None else None

    def password_hash(self, username: str) -> str | None:
        """The stored hash of a local user's password; None for an unknown or system user."""
        row = self._one("SELECT password_hash FROM users WHERE username = ? AND source = ?", username, LOCAL)
        return row["password_hash"] if row is not None else None

    def users(self) -> list[User]:
        """Every user, by name."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM users ORDER BY username").fetchall()
        return [self._user(r) for r in rows]

    def has_admin(self) -> bool:
        """Whether an enabled admin exists."""
        return self._one("SELECT 1 FROM users WHERE role = ? AND disabled = 0 LIMIT 1", ADMIN) is not None

    def add_user(self, username: str, role: str, password_hash: str | None, *, source: str = LOCAL) -> User:
        """A new user; AuthStoreError when the name is taken or invalid."""
        check_username(username)
        if role not in ROLES:
            raise AuthStoreError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
        try:
            with self._write() as db:
                db.execute("INSERT INTO users (username, role, source, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                           (username, role, source, password_hash, time.time()))
        except sqlite3.IntegrityError:
            raise AuthStoreError(f"a user named {username!r} already exists") from None
        return self.user(username)  # type: ignore[return-value]

    def ensure_system_user(self, username: str, admin: bool) -> User:
        """The row of a system (PAM/shadow) user, made at their first login; ``admin`` promotes an existing one."""
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO users (username, role, source, created_at) VALUES (?, ?, ?, ?)",
                       (username, ADMIN if admin else USER, SYSTEM, time.time()))
            if admin:
                db.execute("UPDATE users SET role = ? WHERE username = ?", (ADMIN, username))
        return self.user(username)  # type: ignore[return-value]

    def _update(self, username: str, sql: str, *args: Any) -> None:
        with self._write() as db:
            if db.execute(f"UPDATE users SET {sql} WHERE username = ?", (*args, username)).rowcount == 0:
                raise AuthStoreError(f"no user named {username!r}")

    def set_password(self, username: str, password_hash: str) -> None:
        """Replace a user's password; every token and session they hold stops working."""
        self._update(username, "password_hash = ?, source = ?, token_version = token_version + 1", password_hash, LOCAL)
        self._end_sessions(username)

    def set_role(self, username: str, role: str) -> None:
        """Change a user's role (their tokens stop working: they carry the old role)."""
        if role not in ROLES:
            raise AuthStoreError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
        self._update(username, "role = ?, token_version = token_version + 1", role)
        self._end_sessions(username)

    def set_disabled(self, username: str, disabled: bool) -> None:
        """Disable (every token, key and session stops working) or enable a user."""
        self._update(username, "disabled = ?, token_version = token_version + 1", int(disabled))
        self._end_sessions(username)

    def touch_login(self, username: str) -> None:
        """Record a successful login."""
        self._update(username, "last_login = ?", time.time())

    def remove_user(self, username: str) -> None:
        """Delete a user with their keys and sessions (their jobs stay, owned by the name)."""
        with self._write() as db:
            db.execute("DELETE FROM refresh_tokens WHERE username = ?", (username,))
            if db.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount == 0:
                raise AuthStoreError(f"no user named {username!r}")

    def _end_sessions(self, username: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM sessions WHERE username = ?", (username,))
            db.execute("UPDATE refresh_tokens SET used_at = COALESCE(used_at, ?) WHERE username = ?",
                       (time.time(), username))

    # -- API keys -----------------------------------------------------------------

    @staticmethod
    def _key(row: sqlite3.Row) -> ApiKey:
        return ApiKey(id=row["id"], username=row["username"], label=row["label"], created_at=row["created_at"],
                      last_used=row["last_used"], revoked_at=row["revoked_at"])

    def add_key(self, username: str, label: str) -> tuple[ApiKey, str]:
        """A new key for ``username``: its record and the key itself (shown once, never stored)."""
        label = label.strip()
        if not label or len(label) > 100:
            raise AuthStoreError("a key's label has 1-100 characters")
        if self.user(username) is None:
            raise AuthStoreError(f"no user named {username!r}")
        key_id = secrets.token_hex(6)
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        with self._write() as db:
            db.execute("INSERT INTO api_keys (id, username, label, key_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                       (key_id, username, label, _digest(key), time.time()))
        return self._key(self._one("SELECT * FROM api_keys WHERE id = ?", key_id)), key  # type: ignore[arg-type]

    def keys(self, username: str | None = None) -> list[ApiKey]:
        """The keys of ``username`` (every key when None), newest first."""
        sql, args = "SELECT * FROM api_keys", ()
        if username is not None:
            sql, args = sql + " WHERE username = ?", (username,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at DESC", args).fetchall()
        return [self._key(r) for r in rows]

    def revoke_key(self, key_id: str, username: str | None = None) -> bool:
        """Revoke a key (of ``username`` when given); False when there is no such live key."""
        sql, args = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [time.time(), key_id]
        if username is not None:
            sql += " AND username = ?"
            args.append(username)
        with self._write() as db:
            return db.execute(sql, args).rowcount == 1

    def check_key(self, key: str) -> tuple[ApiKey, bool] | None:
        """The live key ``key`` is, and whether this use was recorded (at most once a minute); None otherwise."""
        match = _KEY.match(key)
        if match is None:
            return None
        row = self._one("SELECT * FROM api_keys WHERE id = ? AND revoked_at IS NULL", match.group(1))
        if row is None or not hmac.compare_digest(row["key_hash"], _digest(key)):
            return None
        now = time.time()
        recorded = row["last_used"] is None or now - row["last_used"] >= KEY_TOUCH_SECONDS
        if recorded:
            with self._write() as db:
                db.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (now, row["id"]))
        return self._key(row), recorded

    # -- refresh tokens and revocations -------------------------------------------

    def add_refresh(self, jti: str, family: str, username: str, expires_at: float) -> None:
        """Record an issued refresh token."""
        with self._write() as db:
            db.execute("INSERT INTO refresh_tokens (jti, family, username, expires_at) VALUES (?, ?, ?, ?)",
                       (jti, family, username, expires_at))

    def use_refresh(self, jti: str) -> str:
        """Spend a refresh token: ``"ok"``; ``"reused"`` when it was spent before (its whole family is then
        revoked); ``"unknown"``."""
        with self._write() as db:
            row = db.execute("SELECT * FROM refresh_tokens WHERE jti = ?", (jti,)).fetchone()
            if row is None:
                return "unknown"
            if row["used_at"] is not None:
                self._revoke_family(db, row["family"], row["expires_at"])
                return "reused"
            db.execute("UPDATE refresh_tokens SET used_at = ? WHERE jti = ?", (time.time(), jti))
            return "ok"

    def revoke_family(self, family: str, expires_at: float) -> None:
        """Revoke every token of a login (its refresh tokens and its access tokens)."""
        with self._write() as db:
            self._revoke_family(db, family, expires_at)

    @staticmethod
    def _revoke_family(db: sqlite3.Connection, family: str, expires_at: float) -> None:
        db.execute("UPDATE refresh_tokens SET used_at = COALESCE(used_at, ?) WHERE family = ?", (time.time(), family))
        db.execute("INSERT OR IGNORE INTO revoked (id, expires_at) VALUES (?, ?)", (f"family:{family}", expires_at))

    def revoke(self, jti: str, expires_at: float) -> None:
        """Revoke one token until it would have expired anyway."""
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO revoked (id, expires_at) VALUES (?, ?)", (f"jti:{jti}", expires_at))

    def is_revoked(self, jti: str, family: str) -> bool:
        """Whether a token, or the login it belongs to, was revoked."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM revoked WHERE id IN (?, ?) LIMIT 1",
                                   (f"jti:{jti}", f"family:{family}")).fetchone()
        return row is not None

    # -- browser sessions ---------------------------------------------------------

    def add_session(self, username: str, lifetime: float) -> tuple[str, str]:
        """A new session: its id (the cookie's value, stored only as a hash) and its CSRF token."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = time.time()
        with self._write() as db:
            db.execute("INSERT INTO sessions (id_hash, username, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                       (_digest(session_id), username, csrf, now, now + lifetime))
        return session_id, csrf

    def session(self, session_id: str) -> tuple[str, str] | None:
        """The user and CSRF token of a live session; None otherwise."""
        row = self._one("SELECT username, csrf FROM sessions WHERE id_hash = ? AND expires_at > ?",
                        _digest(session_id), time.time())
        return (row["username"], row["csrf"]) if row is not None else None

    def end_session(self, session_id: str) -> None:
        """Log a session out."""
        with self._write() as db:
            db.execute("DELETE FROM sessions WHERE id_hash = ?", (_digest(session_id),))

    # -- audit --------------------------------------------------------------------

    def audit(self, username: str | None, address: str | None, method: str, outcome: str,
              detail: str | None = None) -> None:
        """Record one authentication event (never a password)."""
        with self._write() as db:
            db.execute("INSERT INTO audit (time, username, address, method, outcome, detail) VALUES (?, ?, ?, ?, ?, ?)",
                       (time.time(), (username or "")[:100] or None, address, method, outcome, detail))

    def audit_log(self, limit: int = 100, username: str | None = None) -> list[dict[str, Any]]:
        """The newest audit lines (of ``username`` when given)."""
        sql, args = "SELECT * FROM audit", []
        if username is not None:
            sql += " WHERE username = ?"
            args.append(username)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [dict(r) for r in rows]
