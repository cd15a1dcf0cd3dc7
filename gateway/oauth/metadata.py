"""Authorization server metadata (RFC 8414 §2), served at the RFC 8414 URL only.

We are an OAuth 2.0 authorization server, not an OpenID Provider: no ID tokens, so no OIDC Discovery document
(OIDC Discovery 1.0 §3 requires `jwks_uri` and `id_token_signing_alg_values_supported` with RS256, which would
announce ID tokens we never issue). MCP 2025-11-25+ asks for RFC 8414 *or* OIDC Discovery; the SDK clients, the
conformance suite and the SDKs' own servers use RFC 8414. Every token is bound to one MCP route (RFC 8707); a
grant that asked for the `openid` scope makes /userinfo (`userinfo_endpoint`) a second audience of its tokens.
"""

from __future__ import annotations

from typing import Any

from gateway.oauth import dpop, jwt_assertions
from gateway.oauth.grant_types import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, ID_JAG_PROFILE, JWT_BEARER, REFRESH_TOKEN
from gateway.oauth.scopes import OFFLINE_ACCESS, OPENID

SECRET_METHODS = ["none", "client_secret_post", "client_secret_basic"]  # what DCR registers (no key sets kept)
AUTH_METHODS = [*SECRET_METHODS, "private_key_jwt"]  # pre-registered clients may also sign (RFC 7523 §2.2)


def build_authorization_server_metadata(
    issuer: str,
    route_scopes: list[str],
    *,
    dcr_enabled: bool,
    cimd_enabled: bool,
    introspection_enabled: bool,
    enterprise_enabled: bool = False,
) -> dict[str, Any]:
    """Every endpoint at the origin root (MCP AS-6); `issuer` byte-identical to public_url (AS-3). Endpoints that
    are closed (DCR off, no introspection credentials) are not announced. client_credentials with private_key_jwt
    (ext-auth OAuth Client Credentials: the auth methods and their signing algorithms) and DPoP (RFC 9449 §5.1)
    are always on; the ID-JAG grant profile (Enterprise-Managed Authorization §6) when an IdP is trusted."""
    grant_types = [AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS] + ([JWT_BEARER] if enterprise_enabled else [])
    metadata: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "revocation_endpoint": f"{issuer}/revoke",
        "userinfo_endpoint": f"{issuer}/userinfo",  # for tokens of grants that asked for `openid`
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grant_types,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(jwt_assertions.ALGORITHMS),
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": list(jwt_assertions.ALGORITHMS),
        "dpop_signing_alg_values_supported": list(dpop.ALGORITHMS),
        "scopes_supported": [*dict.fromkeys(route_scopes), OFFLINE_ACCESS, OPENID],  # the last two: AS level only
        "authorization_response_iss_parameter_supported": True,  # RFC 9207; we always send iss
        "client_id_metadata_document_supported": cimd_enabled,
    }
    if introspection_enabled:
        metadata["introspection_endpoint"] = f"{issuer}/introspect"
        metadata["introspection_endpoint_auth_methods_supported"] = ["client_secret_basic"]
    if dcr_enabled:
        metadata["registration_endpoint"] = f"{issuer}/register"
    if enterprise_enabled:
        metadata["authorization_grant_profiles_supported"] = [ID_JAG_PROFILE]
    return metadata
