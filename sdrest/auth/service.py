"""The authentication policy: which credentials a mode accepts, who they name, and logins, refreshes, logouts.

Nothing here knows HTTP: :mod:`sdrest.server.auth` reads the headers and cookies and answers the errors.
Every method may block (SQLite, argon2, PAM): call them from a worker thread in async code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from sdrest.auth.limits import LoginThrottle, RequestRate
from sdrest.auth.passwords import MAX_PASSWORD, dummy_hash, needs_rehash, hash_password, verify_password
from sdrest.auth.store import ADMIN, KEY_PREFIX, USER, AuthStore, User
from sdrest.auth.tokens import ACCESS, REFRESH, GuestIds, TokenError, TokenIssuer, UrlSigner, load_secret
from sdrest.config import ServerConfig

log = logging.getLogger("sdrest.auth")

NONE, API_KEY, JWT, PAM, UNIX, OPTIONAL = "none", "api-key", "jwt", "pam", "unix", "optional"
#: the modes whose users log in with a password
PASSWORD_MODES = (JWT, PAM, UNIX, OPTIONAL)
#: a successful HTTP Basic password is not checked again (argon2, PAM) for this long
BASIC_CACHE_SECONDS = 60.0


class AuthFailure(Exception):
    """Credentials refused, or none where some are needed: ``status`` 401, 429 (with ``retry_after``) or 503."""

    def __init__(self, message: str, *, status: int = 401, code: str = "unauthorized", retry_after: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a user (by token, key, password or session cookie), a guest, or, with
    ``auth none``, the local user everyone is."""

    username: str
    role: str
    via: str
    owner: str | None
    guest: bool = False
    family: str | None = None
    jti: str | None = None
    expires: float | None = None
    session: str | None = None
    csrf: str | None = None

    @property
    def is_admin(self) -> bool:
        """Whether the principal may do everything and see every job."""
        return self.role == ADMIN

    def sees(self, owner: str | None) -> bool:
        """Whether the principal may see a job (or anything else) owned by ``owner``."""
        return self.is_admin or owner == self.owner

    def to_dict(self) -> dict[str, Any]:
        """What ``/api/auth/me`` says."""
        return {"username": self.username, "role": self.role, "guest": self.guest, "via": self.via}


#: everyone, with ``auth none``: an admin who owns nothing in particular
LOCAL = Principal(username="local", role=ADMIN, via="none", owner=None)


class Authenticator:
    """The auth policy of one server: the store, the token issuer, the back-off and the system-user checks."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.mode = config.auth
        self.store = AuthStore(config.data_dir / "auth.sqlite3")
        secret = load_secret(config.data_dir, config.jwt_secret)
        self.tokens = TokenIssuer(secret, config.access_token_minutes * 60, config.refresh_token_days * 86400)
        self.urls = UrlSigner(secret, config.signed_url_seconds)
        self.guests = GuestIds(secret)
        self.throttle = LoginThrottle(config.login_attempts, config.login_backoff_seconds)
        self.generation_rate = RequestRate(config.requests_per_minute)
        self._basic_lock = threading.Lock()
        self._basic: dict[str, tuple[str, float]] = {}

    @property
    def enabled(self) -> bool:
        """Whether requests need credentials at all (not ``auth none``)."""
        return self.mode != NONE

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def needs_admin(self) -> bool:
        """True while ``auth jwt`` has no admin yet: protected calls are refused until one is made."""
        return self.mode == JWT and not self.store.has_admin()

    # -- passwords ----------------------------------------------------------------

    def check_password(self, username: str, password: str, address: str | None, method: str) -> User:
        """The user whose password this is, or AuthFailure (401; 429 while backing off). Audited."""
        if self.mode not in PASSWORD_MODES:
            raise AuthFailure(f"auth {self.mode} takes API keys, not passwords", status=400, code="no_passwords")
        keys = [f"user:{username}", f"addr:{address}"]
        wait = self.throttle.retry_after(keys)
        if wait:
            self.store.audit(username, address, method, "throttled")
            raise AuthFailure(f"too many failed logins; try again in {wait} s", status=429, code="too_many_attempts",
                              retry_after=wait)
        user = self._verify(username, password)
        if user is None:
            self.throttle.failed(keys)
            self.store.audit(username, address, method, "failure", "bad credentials")
            raise AuthFailure("wrong user name or password")
        if user.disabled:
            self.throttle.failed(keys)
            self.store.audit(username, address, method, "failure", "user disabled")
            raise AuthFailure("wrong user name or password")
        self.throttle.succeeded(keys[:1])
        self.store.touch_login(username)
        self.store.audit(username, address, method, "success")
        return user

    def _verify(self, username: str, password: str) -> User | None:
        if not username or not password or len(password) > MAX_PASSWORD or len(username) > 64:
            return None
        if self.mode in (PAM, UNIX):
            from sdrest.auth.system_users import SystemAuthUnavailable, verify_system_password

            try:
                ok = verify_system_password(self.mode, username, password, pam_service=self.config.pam_service)
            except SystemAuthUnavailable as exc:
                log.error("auth %s cannot check passwords: %s", self.mode, exc)
                raise AuthFailure(f"the server cannot check system passwords ({exc})", status=503,
                                  code="auth_unavailable") from None
            if not ok:
                return None
            return self.store.ensure_system_user(username, admin=username in self.config.admin_list)
        stored = self.store.password_hash(username)
        matched = verify_password(stored or dummy_hash(), password)  # unknown users take as long as known ones
        if stored is None or not matched:
            return None
        if needs_rehash(stored):
            self.store.set_password(username, hash_password(password))
        return self.store.user(username)

    # -- tokens -------------------------------------------------------------------

    def issue(self, user: User, family: str | None = None) -> dict[str, Any]:
        """A new access and refresh token pair for ``user`` (a new login unless ``family`` continues one)."""
        family = family or secrets.token_urlsafe(12)
        access, _ = self.tokens.issue(user.username, user.role, ACCESS, family, user.token_version)
        refresh, claims = self.tokens.issue(user.username, user.role, REFRESH, family, user.token_version)
        self.store.add_refresh(claims.jti, family, user.username, claims.exp)
        return {"access_token": access, "refresh_token": refresh, "token_type": "bearer",
                "expires_in": int(self.tokens.access_seconds), "refresh_expires_in": int(self.tokens.refresh_seconds),
                "user": {"username": user.username, "role": user.role}}

    def login(self, username: str, password: str, address: str | None) -> dict[str, Any]:
        """Tokens for a user name and password (``POST /api/auth/login``)."""
        return self.issue(self.check_password(username, password, address, "login"))

    def refresh(self, token: str, address: str | None) -> dict[str, Any]:
        """A new token pair for a refresh token, which is spent; reusing a spent one revokes the whole login."""
        try:
            claims = self.tokens.check(token, REFRESH)
        except TokenError as exc:
            self.store.audit(None, address, "refresh", "failure", str(exc))
            raise AuthFailure(str(exc)) from None
        user = self._live_user(claims.sub, claims.version)
        outcome = self.store.use_refresh(claims.jti) if user is not None else "unknown"
        if user is None or outcome != "ok" or self.store.is_revoked(claims.jti, claims.family):
            detail = "reused: the login is revoked" if outcome == "reused" else "revoked"
            self.store.audit(claims.sub, address, "refresh", "failure", detail)
            raise AuthFailure("the refresh token was revoked" + (" (it was used before: log in again)"
                                                                  if outcome == "reused" else ""))
        self.store.audit(user.username, address, "refresh", "success")
        return self.issue(user, claims.family)

    def logout(self, principal: Principal, address: str | None) -> None:
        """End the login the principal used: its tokens, or its browser session."""
        if principal.session is not None:
            self.store.end_session(principal.session)
        if principal.family is not None:
            expires = time.time() + self.tokens.refresh_seconds
            self.store.revoke_family(principal.family, expires)
        self.store.audit(principal.username, address, "logout", "success", principal.via)

    def _live_user(self, username: str, version: int | None = None) -> User | None:
        user = self.store.user(username)
        if user is None or user.disabled or (version is not None and user.token_version != version):
            return None
        return user

    # -- credentials of a request -------------------------------------------------

    def from_bearer(self, token: str, address: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer`` value: an API key or an access token."""
        if token.startswith(KEY_PREFIX):
            return self.from_key(token, address)
        if self.mode == API_KEY:
            raise AuthFailure("this server takes API keys only (auth api-key)")
        try:
            claims = self.tokens.check(token, ACCESS)
        except TokenError as exc:
            self.store.audit(None, address, "token", "failure", str(exc))
            raise AuthFailure(str(exc)) from None
        user = self._live_user(claims.sub, claims.version)
        if user is None or self.store.is_revoked(claims.jti, claims.family):
            self.store.audit(claims.sub, address, "token", "failure", "revoked")
            raise AuthFailure("the token was revoked")
        return Principal(username=user.username, role=user.role, via="token", owner=user.username,
                         family=claims.family, jti=claims.jti, expires=claims.exp)

    def from_key(self, key: str, address: str | None) -> Principal:
        """The principal of an API key."""
        found = self.store.check_key(key)
        user = self._live_user(found[0].username) if found is not None else None
        if found is None or user is None:
            self.store.audit(None, address, "api_key", "failure", "unknown or revoked key")
            raise AuthFailure("the API key is not valid")
        record, first_in_a_while = found
        if first_in_a_while:
            self.store.audit(user.username, address, "api_key", "success", f"key {record.id}")
        return Principal(username=user.username, role=user.role, via="api_key", owner=user.username)

    def from_basic(self, header_value: str, address: str | None) -> Principal:
        """The principal of an HTTP Basic value: ``apikey:<key>``, or a user name and password."""
        try:
            username, sep, password = base64.b64decode(header_value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise AuthFailure("malformed Basic credentials") from None
        if not sep:
            raise AuthFailure("malformed Basic credentials")
        if username == "apikey":
            return self.from_key(password, address)
        cache_key = hashlib.sha256(f"{username}\x00{password}".encode()).hexdigest()
        now = time.monotonic()
        with self._basic_lock:
            cached = self._basic.get(cache_key)
        user = self._live_user(cached[0]) if cached is not None and cached[1] > now else None
        if user is None:
            user = self.check_password(username, password, address, "basic")
            with self._basic_lock:
                if len(self._basic) > 1000:
                    self._basic.clear()
                self._basic[cache_key] = (user.username, now + BASIC_CACHE_SECONDS)
        return Principal(username=user.username, role=user.role, via="basic", owner=user.username)

    def from_session(self, session_id: str) -> Principal | None:
        """The principal of a session cookie; None when it names no live session."""
        found = self.store.session(session_id)
        user = self._live_user(found[0]) if found is not None else None
        if found is None or user is None:
            return None
        return Principal(username=user.username, role=user.role, via="cookie", owner=user.username,
                         session=session_id, csrf=found[1])

    def guest(self, guest_id: str) -> Principal:
        """A guest (``auth optional``), who owns the jobs made with the same guest cookie."""
        return Principal(username="guest", role=USER, via="guest", owner=f"guest:{guest_id}", guest=True)

    def start_session(self, user: User) -> tuple[str, str]:
        """A browser session for ``user``: the session cookie's value and the CSRF token."""
        return self.store.add_session(user.username, self.tokens.refresh_seconds)
