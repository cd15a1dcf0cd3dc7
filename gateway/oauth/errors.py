"""OAuth error values (RFC 6749 §5.2, RFC 6750 §3.1). Rendering lives in gateway.web.errors."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

ErrorCode = Literal[
    "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
    "invalid_scope", "invalid_target", "access_denied", "server_error", "temporarily_unavailable",
    "invalid_token", "insufficient_scope",
]
_OUTSIDE_RFC6749_CHARSET = re.compile(r"[^\x20-\x21\x23-\x5B\x5D-\x7E]")  # RFC 6749 §5.2 error_description


class OAuthError(Exception):
    """Base of every protocol error; `description` is trimmed to RFC 6749's character set."""

    error: ClassVar[ErrorCode] = "invalid_request"
    status: ClassVar[int] = 400

    def __init__(self, description: str = "") -> None:
        self.description = _OUTSIDE_RFC6749_CHARSET.sub(" ", description).strip()[:500]
        super().__init__(self.description or self.error)


class InvalidRequestError(OAuthError):
    error = "invalid_request"


class InvalidTokenError(OAuthError):
    error = "invalid_token"
    status = 401


class InsufficientScopeError(OAuthError):
    error = "insufficient_scope"
    status = 403
