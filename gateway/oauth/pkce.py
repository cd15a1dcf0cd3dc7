"""PKCE with S256 only (RFC 7636 §4; OAuth 2.1 §4.1.1; MCP "Authorization Code Protection")."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

from gateway.oauth.errors import InvalidGrantError, InvalidRequestError

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 §4.1
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")  # base64url(SHA-256) without padding


def parse_challenge(challenge: str | None, method: str | None) -> str:
    """Raises:
    InvalidRequestError: no challenge, a method other than S256 (plain is refused), or a malformed value."""
    if not challenge:
        raise InvalidRequestError("code_challenge is required (PKCE S256)")
    if method != "S256":
        raise InvalidRequestError("code_challenge_method must be S256")
    if not _CHALLENGE.fullmatch(challenge):
        raise InvalidRequestError("code_challenge is not a base64url SHA-256 value")
    return challenge


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def verify(verifier: str | None, challenge: str) -> None:
    """Raises:
    InvalidGrantError: missing or malformed verifier, or one that does not hash to the challenge."""
    if not verifier or not _VERIFIER.fullmatch(verifier):
        raise InvalidGrantError("code_verifier missing or malformed")
    if not secrets.compare_digest(s256(verifier), challenge):
        raise InvalidGrantError("code_verifier does not match the code_challenge")
