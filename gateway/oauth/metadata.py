"""Authorization server metadata (RFC 8414 §2; served at both RFC 8414 and OIDC discovery URLs)."""

from __future__ import annotations

from typing import Any

from gateway.oauth.scopes import OFFLINE_ACCESS

AUTH_METHODS = ["none", "client_secret_post", "client_secret_basic"]


def build_authorization_server_metadata(issuer: str, route_scopes: list[str], *, dcr_enabled: bool,
                                        cimd_enabled: bool) -> dict[str, Any]:
    """Every endpoint at the origin root (MCP AS-6); `issuer` byte-identical to public_url (AS-3)."""
    metadata: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "scopes_supported": [*dict.fromkeys(route_scopes), OFFLINE_ACCESS],  # offline_access: AS level only
        "authorization_response_iss_parameter_supported": True,  # RFC 9207; we always send iss
        "client_id_metadata_document_supported": cimd_enabled,
        "subject_types_supported": ["public"],
    }
    if dcr_enabled:
        metadata["registration_endpoint"] = f"{issuer}/register"
    return metadata
