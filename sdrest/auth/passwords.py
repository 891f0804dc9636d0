"""Password hashing: argon2id (memory-hard), through argon2-cffi, with its recommended parameters."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: argon2-cffi's RFC 9106 "low memory" profile: 64 MiB, 3 passes, 4 lanes (about 50-100 ms on one core)
_HASHER = PasswordHasher()

#: shortest password ``sdrest users`` and the API accept
MIN_PASSWORD = 8
#: longest (argon2 takes any length; this keeps requests small)
MAX_PASSWORD = 1024


def check_new_password(password: str) -> None:
    """ValueError saying what is wrong with a password someone is setting."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"the password must have at most {MAX_PASSWORD} characters")
    if "\x00" in password:
        raise ValueError("the password may not contain a NUL character")


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (a PHC string with its salt and parameters)."""
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash; False for a malformed hash too."""
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with weaker parameters than today's (rehash it at the next login)."""
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


@functools.cache
def dummy_hash() -> str:
    """A hash nobody's password matches: verified against for unknown users, so they take as long as known ones."""
    return hash_password(secrets.token_urlsafe(16))
