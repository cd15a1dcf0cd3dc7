"""Seal a refresh token's successor under the old token's value (AES-256-GCM, key = HKDF-SHA256(old token)).

Only a holder of the old token can open it, and Redis never holds a usable token: during the rotation
grace window (RFC 9700 §4.14.2 allows a short one) a racing client receives the *same* successor.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"mcp-auth-gateway refresh successor v1"


def _key(old_token: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(old_token.encode("utf-8"))


def seal(old_token: str, successor: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_key(old_token)).encrypt(nonce, successor.encode("utf-8"), None)
    return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(old_token: str, sealed: str) -> str | None:
    """The successor, or None when `sealed` was not made with this token."""
    try:
        raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
        return AESGCM(_key(old_token)).decrypt(raw[:12], raw[12:], None).decode("utf-8")
    except (InvalidTag, ValueError):
        return None
