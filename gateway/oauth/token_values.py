"""Opaque bearer tokens: random values, stored and logged only by hash (RFC 6750, RFC 9700 §4.14)."""

from __future__ import annotations

import hashlib
import secrets

ACCESS_TOKEN_PREFIX = "mcpgw_at_"


def new_access_token() -> str:
    """256 bits from the OS CSPRNG; the prefix lets secret scanners recognise a leaked token."""
    return ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 hex digest: the only form a token takes in Redis."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id(token_hash: str) -> str:
    """Short, non-secret handle for logs and `tokens list` (first 8 hex digits of the hash)."""
    return token_hash[:8]


def parse_scopes(value: str | None) -> tuple[str, ...]:
    """Space-delimited scope string (RFC 6749 §3.3) -> ordered, de-duplicated tuple."""
    return tuple(dict.fromkeys((value or "").split()))


REFRESH_TOKEN_PREFIX = "mcpgw_rt_"
CODE_PREFIX = "mcpgw_ac_"


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_code() -> str:
    return CODE_PREFIX + secrets.token_urlsafe(32)
