"""What an Idempotency-Key keeps of its first answer, without keeping the key or a secret.

The database holds only a digest of the key. A create's generated root password is kept
sealed with a key derived (scrypt) from the raw Idempotency-Key, which only the client knows:
a repeated request gets the same password back, a copy of the database does not.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["key_digest", "open_password", "seal_password"]


def key_digest(key: str) -> str:
    """What the database stores and looks up instead of the raw key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _fernet(key: str, *, scope: str) -> Fernet:
    # scrypt makes guessing a weak client-chosen key costly; the scope binds it to one request.
    derived = hashlib.scrypt(key.encode(), salt=scope.encode(), n=2**14, r=8, p=1, dklen=32)
    return Fernet(base64.urlsafe_b64encode(derived))


def seal_password(password: str, *, key: str, scope: str) -> str:
    """``password`` sealed under the raw Idempotency-Key."""
    return _fernet(key, scope=scope).encrypt(password.encode()).decode()


def open_password(sealed: str, *, key: str, scope: str) -> str | None:
    """The sealed password, or None if ``key`` is not the one it was sealed with."""
    try:
        return _fernet(key, scope=scope).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None
