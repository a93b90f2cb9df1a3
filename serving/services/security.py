"""Passwords hashed with argon2; bearer tokens opaque to clients and stored only as digests.

A token is 256 random bits. The database keeps its SHA-256 digest, so a leaked table cannot
be replayed; a fast digest suffices because the token, unlike a password, cannot be guessed.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str, email: str) -> str | None:
    """Why `password` is refused, or None when it meets the policy."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        return f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        return "a password needs at least one letter and one digit"
    name = email.split("@", 1)[0].casefold()
    if len(name) >= 4 and name in password.casefold():
        return "a password must not contain the name of its email address"
    return None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
