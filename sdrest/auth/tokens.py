"""JSON Web Tokens (HS256 only), the server's secret, and signed URLs.

One secret (``jwt_secret``, or 32 random bytes generated into the data dir with mode 0600) is never used as is:
each purpose (tokens, signed URLs, guest ids) signs with its own key derived from it, so a value signed for one
purpose is worthless for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

ALGORITHM = "HS256"
ACCESS, REFRESH = "access", "refresh"
_CLAIMS = ("sub", "role", "iat", "exp", "jti", "typ")


class TokenError(Exception):
    """A token that is refused; the message says why (for the client and the audit log)."""


@dataclass(frozen=True)
class Claims:
    """What a valid token says."""

    sub: str
    role: str
    typ: str
    jti: str
    exp: float
    family: str
    version: int


def load_secret(data_dir: Path, configured: str | None) -> bytes:
    """The configured secret, else the one in ``data_dir/auth-secret`` (made on first start, mode 0600)."""
    if configured:
        return configured.encode()
    path = data_dir / "auth-secret"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret.hex())
    return secret


def derive_key(secret: bytes, purpose: str) -> bytes:
    """The key for one purpose (``"jwt"``, ``"url"``, ``"guest"``)."""
    return hmac.new(secret, f"sdrest {purpose}".encode(), hashlib.sha256).digest()


class TokenIssuer:
    """Issues and checks access and refresh tokens."""

    def __init__(self, secret: bytes, access_seconds: float, refresh_seconds: float) -> None:
        self._key = derive_key(secret, "jwt")
        self.access_seconds = access_seconds
        self.refresh_seconds = refresh_seconds

    def issue(self, username: str, role: str, typ: str, family: str, version: int) -> tuple[str, Claims]:
        """A signed token and its claims. ``family`` ties the tokens of one login together."""
        now = int(time.time())
        lifetime = self.access_seconds if typ == ACCESS else self.refresh_seconds
        claims = Claims(sub=username, role=role, typ=typ, jti=secrets.token_urlsafe(16), exp=now + int(lifetime),
                        family=family, version=version)
        payload: dict[str, Any] = {"sub": username, "role": role, "iat": now, "nbf": now, "exp": claims.exp,
                                   "jti": claims.jti, "typ": typ, "fam": family, "ver": version}
        return jwt.encode(payload, self._key, algorithm=ALGORITHM), claims

    def check(self, token: str, typ: str) -> Claims:
        """The claims of a valid token of type ``typ``; TokenError saying why not otherwise.

        Only HS256 with this server's key: ``alg: none``, any other algorithm (HS512, RS256 keys confused for
        HMAC secrets), bad signatures, expired or not-yet-valid tokens and tokens of the other type are refused.
        Revocation is the caller's part (the store knows it).
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenError("the token is malformed") from None
        if header.get("alg") != ALGORITHM:
            raise TokenError(f"the token's algorithm must be {ALGORITHM}")
        try:
            payload = jwt.decode(token, self._key, algorithms=[ALGORITHM], options={"require": list(_CLAIMS)})
        except jwt.ExpiredSignatureError:
            raise TokenError("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("the token is not valid yet") from None
        except jwt.InvalidSignatureError:
            raise TokenError("the token's signature is not valid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"the token lacks the claim {exc.claim!r}") from None
        except jwt.InvalidTokenError:
            raise TokenError("the token is malformed") from None
        if payload["typ"] != typ:
            raise TokenError(f"expected an {typ} token, got a {payload['typ']!r} one")
        fields = (payload["sub"], payload["role"], payload["jti"], payload.get("fam"), payload.get("ver"))
        if not all(isinstance(v, str) for v in fields[:4]) or not isinstance(fields[4], int):
            raise TokenError("the token is malformed")
        return Claims(sub=payload["sub"], role=payload["role"], typ=typ, jti=payload["jti"],
                      exp=float(payload["exp"]), family=payload["fam"], version=payload["ver"])


class UrlSigner:
    """HMAC signatures over a path and an expiry time: a URL that works without a header, for a while."""

    def __init__(self, secret: bytes, lifetime: float) -> None:
        self._key = derive_key(secret, "url")
        self.lifetime = lifetime

    def _signature(self, path: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, path: str) -> str:
        """``path`` with ``expires`` and ``signature`` query parameters."""
        expires = int(time.time() + self.lifetime)
        return f"{path}?expires={expires}&signature={self._signature(path, expires)}"

    def valid(self, path: str, expires: str | None, signature: str | None) -> bool:
        """Whether ``signature`` signs ``path`` until ``expires``, which has not passed."""
        if not expires or not signature or not expires.isdigit() or len(expires) > 12:
            return False
        if int(expires) < time.time():
            return False
        return hmac.compare_digest(self._signature(path, int(expires)), signature)


class GuestIds:
    """Signed guest ids for ``auth optional``: a guest's jobs are theirs by the id in their cookie."""

    def __init__(self, secret: bytes) -> None:
        self._key = derive_key(secret, "guest")

    def _mac(self, guest: str) -> str:
        return hmac.new(self._key, guest.encode(), hashlib.sha256).hexdigest()[:32]

    def new(self) -> str:
        """A new cookie value."""
        guest = secrets.token_hex(8)
        return f"{guest}.{self._mac(guest)}"

    def check(self, value: str) -> str | None:
        """The guest id in a cookie value, if its signature holds."""
        guest, _, mac = value.partition(".")
        if len(guest) != 16 or not hmac.compare_digest(self._mac(guest), mac):
            return None
        return guest
