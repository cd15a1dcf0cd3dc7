"""Dynamic Client Registration (RFC 7591 §2-3), kept for clients without CIMD (Cursor, older VS Code …)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from gateway.oauth.errors import InvalidClientMetadataError, InvalidRedirectUriError
from gateway.oauth.metadata import AUTH_METHODS
from gateway.oauth.redirects import redirect_uri_problem
from gateway.oauth.tokens import hash_token
from gateway.store.records import ClientRecord

SUPPORTED_GRANTS = ("authorization_code", "refresh_token")
DCR_PREFIX = "mcpgw_c_"  # registered clients' ids: their idle expiry slides on use (never https://, CIMD-7)
_OPTIONAL_STRINGS = ("client_name", "client_uri", "logo_uri", "scope", "software_id", "software_version")


@dataclass(frozen=True)
class Registration:
    record: ClientRecord
    client_secret: str | None  # shown once, in the 201 response
    dropped_redirect_uris: tuple[str, ...]


def parse_registration(body: Any, *, now: float) -> Registration:
    """Validate a registration request and build the client.

    Disallowed redirect URIs are dropped and the rest kept (Cursor registers three at once; RFC 7591 §3.2.1
    lets the server replace requested metadata). Unsupported grant types are dropped likewise.

    Raises:
        InvalidClientMetadataError: not an object, wrong types, unsupported auth method or response type.
        InvalidRedirectUriError: no usable redirect URI remains.
    """
    if not isinstance(body, dict):
        raise InvalidClientMetadataError("the registration request must be a JSON object")
    uris = body.get("redirect_uris")
    if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        raise InvalidClientMetadataError("redirect_uris must be an array of strings")
    if not uris:
        raise InvalidRedirectUriError("at least one redirect URI is required")
    kept = tuple(dict.fromkeys(u for u in uris if redirect_uri_problem(u) is None))
    dropped = tuple(u for u in uris if u not in kept)
    if not kept:
        reasons = "; ".join(f"{u}: {redirect_uri_problem(u)}" for u in uris[:3])
        raise InvalidRedirectUriError(f"no acceptable redirect URI ({reasons})")

    method = body.get("token_endpoint_auth_method", "client_secret_basic")  # RFC 7591 §2 default
    if method not in AUTH_METHODS:
        raise InvalidClientMetadataError(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    grants = body.get("grant_types", ["authorization_code"])
    responses = body.get("response_types", ["code"])
    if not _strings(grants) or not _strings(responses):
        raise InvalidClientMetadataError("grant_types and response_types must be arrays of strings")
    if "code" not in responses:
        raise InvalidClientMetadataError("response_types must include code")
    grant_types = tuple(g for g in dict.fromkeys(grants) if g in SUPPORTED_GRANTS) or ("authorization_code",)
    if "authorization_code" not in grant_types:
        grant_types = ("authorization_code", *grant_types)
    application_type = body.get("application_type")
    if application_type is not None and application_type not in ("native", "web"):
        raise InvalidClientMetadataError("application_type must be native or web")
    optional = {}
    for name in _OPTIONAL_STRINGS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidClientMetadataError(f"{name} must be a string")
        optional[name] = value[:200] if isinstance(value, str) else None

    secret = None if method == "none" else "mcpgw_cs_" + secrets.token_urlsafe(32)
    record = ClientRecord(
        client_id=DCR_PREFIX + secrets.token_urlsafe(16),
        kind="dcr",
        client_secret_hash=None if secret is None else hash_token(secret),
        token_endpoint_auth_method=method,
        redirect_uris=kept,
        grant_types=grant_types,
        response_types=("code",),
        application_type=application_type,
        client_id_issued_at=int(now),
        **optional,
    )
    return Registration(record, secret, dropped)


def build_registration_response(registration: Registration) -> dict[str, Any]:
    """RFC 7591 §3.2.1: the client's metadata as registered, plus credentials."""
    record = registration.record
    response: dict[str, Any] = {
        "client_id": record.client_id,
        "client_id_issued_at": record.client_id_issued_at,
        "redirect_uris": list(record.redirect_uris),
        "token_endpoint_auth_method": record.token_endpoint_auth_method,
        "grant_types": list(record.grant_types),
        "response_types": list(record.response_types),
    }
    if registration.client_secret is not None:
        response["client_secret"] = registration.client_secret
        response["client_secret_expires_at"] = 0  # does not expire (RFC 7591 §3.2.1)
    for name in ("application_type", *_OPTIONAL_STRINGS):
        value = getattr(record, name)
        if value is not None:
            response[name] = value
    return response


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)

