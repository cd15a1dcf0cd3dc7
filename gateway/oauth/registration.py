"""Dynamic Client Registration (RFC 7591 §2-3), kept for clients without CIMD (Cursor, older VS Code …)."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from gateway.oauth.client_metadata import optional_string, parse_redirect_uris, string_array
from gateway.oauth.errors import InvalidClientMetadataError
from gateway.oauth.metadata import SECRET_METHODS
from gateway.oauth.redirects import DEFAULT_PRIVATE_USE_SCHEMES
from gateway.oauth.token_values import hash_token
from gateway.store.records import ClientRecord

SUPPORTED_GRANTS = ("authorization_code", "refresh_token")
DCR_PREFIX = "mcpgw_c_"  # registered clients' ids: their idle expiry slides on use (never https://, CIMD-7)
# a registration body: real ones are < 1 KiB; 32 KiB holds the largest one the bounds allow (10 redirect URIs
# of 2000 characters and the other fields gateway.oauth.client_metadata bounds). Its own cap, not proxy.max_body_bytes.
MAX_REGISTRATION_BYTES = 32 * 1024
_OPTIONAL_STRINGS = ("client_name", "client_uri", "logo_uri", "scope", "software_id", "software_version")


@dataclass(frozen=True)
class Registration:
    record: ClientRecord
    client_secret: str | None  # shown once, in the 201 response
    dropped_redirect_uris: tuple[str, ...]


def parse_registration(
    body: Any, *, now: float, private_use_schemes: Collection[str] = DEFAULT_PRIVATE_USE_SCHEMES
) -> Registration:
    """Validate a registration request (parsed by `client_metadata.parse_metadata_json`) and build the client.

    Disallowed redirect URIs are dropped and the rest kept (Cursor registers three at once; RFC 7591 §3.2.1
    lets the server replace requested metadata). Unsupported grant types are dropped likewise. Every collection
    and string is bounded (`gateway.oauth.client_metadata`); a value over its bound is refused, never cut.

    Raises:
        InvalidClientMetadataError: not an object, wrong types, values over their bounds, unsupported auth method
            or response type.
        InvalidRedirectUriError: no usable redirect URI remains, or too many were sent.
    """
    if not isinstance(body, dict):
        raise InvalidClientMetadataError("the registration request must be a JSON object")
    kept, dropped = parse_redirect_uris(body.get("redirect_uris"), private_use_schemes=private_use_schemes)

    method = optional_string(body, "token_endpoint_auth_method")
    method = "client_secret_basic" if method is None else method  # RFC 7591 §2 default
    if method not in SECRET_METHODS:  # (private_key_jwt: pre-registered clients only, `clients[]`, `clients add`)
        raise InvalidClientMetadataError(f"token_endpoint_auth_method must be one of {', '.join(SECRET_METHODS)}")
    grants = string_array(body, "grant_types", ["authorization_code"])
    responses = string_array(body, "response_types", ["code"])
    if "code" not in responses:
        raise InvalidClientMetadataError("response_types must include code")
    grant_types = tuple(g for g in dict.fromkeys(grants) if g in SUPPORTED_GRANTS) or ("authorization_code",)
    if "authorization_code" not in grant_types:
        grant_types = ("authorization_code", *grant_types)
    application_type = optional_string(body, "application_type")
    if application_type is not None and application_type not in ("native", "web"):
        raise InvalidClientMetadataError("application_type must be native or web")
    optional = {name: optional_string(body, name) for name in _OPTIONAL_STRINGS}
    dpop_bound = body.get("dpop_bound_access_tokens", False)
    if not isinstance(dpop_bound, bool):
        raise InvalidClientMetadataError("dpop_bound_access_tokens must be a boolean (RFC 9449 §5.2)")

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
        dpop_bound_access_tokens=dpop_bound,
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
    if record.dpop_bound_access_tokens:
        response["dpop_bound_access_tokens"] = True
    if registration.client_secret is not None:
        response["client_secret"] = registration.client_secret
        response["client_secret_expires_at"] = 0  # does not expire (RFC 7591 §3.2.1)
    for name in ("application_type", *_OPTIONAL_STRINGS):
        value = getattr(record, name)
        if value is not None:
            response[name] = value
    return response
