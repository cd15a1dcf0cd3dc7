"""OAuth error values (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7591 §3.2.2, RFC 8707 §2).

Rendering lives in gateway.web.errors; here an error is only a code, a status and a description.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

ErrorCode = Literal[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "unsupported_response_type",
    "invalid_scope",
    "invalid_target",
    "access_denied",
    "server_error",
    "temporarily_unavailable",
    "invalid_token",
    "insufficient_scope",
    "invalid_redirect_uri",
    "invalid_client_metadata",
    "unsupported_token_type",
    "slow_down",
    "invalid_dpop_proof",
    "use_dpop_nonce",
]
_OUTSIDE_RFC6749_CHARSET = re.compile(r"[^\x20-\x21\x23-\x5B\x5D-\x7E]")  # RFC 6749 §5.2 error_description


class OAuthError(Exception):
    """Base of every protocol error; `description` is trimmed to RFC 6749's character set."""

    error: ClassVar[ErrorCode] = "invalid_request"
    status: ClassVar[int] = 400

    def __init__(self, description: str = "") -> None:
        self.description = _OUTSIDE_RFC6749_CHARSET.sub(" ", description).strip()[:500]
        self.headers: dict[str, str] = {}  # more response headers (a fresh `DPoP-Nonce`)
        super().__init__(self.description or self.error)


class InvalidRequestError(OAuthError):
    error = "invalid_request"


class InvalidClientError(OAuthError):
    error = "invalid_client"
    status = 401


class InvalidGrantError(OAuthError):
    error = "invalid_grant"


class UnauthorizedClientError(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantTypeError(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseTypeError(OAuthError):
    error = "unsupported_response_type"


class InvalidScopeError(OAuthError):
    error = "invalid_scope"


class InvalidTargetError(OAuthError):
    error = "invalid_target"


class AccessDeniedError(OAuthError):
    error = "access_denied"
    status = 403


class InvalidRedirectUriError(OAuthError):
    error = "invalid_redirect_uri"


class InvalidClientMetadataError(OAuthError):
    error = "invalid_client_metadata"


class SlowDownError(OAuthError):
    """Rate limited; rendered with 429 and Retry-After."""

    error = "slow_down"
    status = 429


class TemporarilyUnavailableError(OAuthError):
    error = "temporarily_unavailable"
    status = 503


class InvalidDpopProofError(OAuthError):
    """RFC 9449 §5.1 (token endpoint, 400) and §7.1 (resource, answered 401 with a DPoP challenge)."""

    error = "invalid_dpop_proof"


class UseDpopNonceError(OAuthError):
    """RFC 9449 §8: the proof must carry the server's current nonce (sent in `DPoP-Nonce`)."""

    error = "use_dpop_nonce"


class InvalidTokenError(OAuthError):
    error = "invalid_token"
    status = 401


class InsufficientScopeError(OAuthError):
    error = "insufficient_scope"
    status = 403


class UnsafeRedirectError(Exception):
    """The client or redirect URI cannot be trusted: show an error page, never redirect (RFC 6749 §4.1.2.1)."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(detail)
        self.title, self.detail = title, detail
