"""Grant type and assertion type URIs the token endpoint knows (RFC 6749 §4, RFC 7523 §2, RFC 8693)."""

from __future__ import annotations

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"
CLIENT_CREDENTIALS = (
    "client_credentials"  # OAuth 2.1 §4.2; MCP extension io.modelcontextprotocol/oauth-client-credentials
)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523 §2.1: the ID-JAG of enterprise-managed auth
CLIENT_ASSERTION_JWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2: private_key_jwt
ID_JAG_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag"  # draft-ietf-oauth-identity-assertion-authz-grant §7.2
ID_JAG_TYP = "oauth-id-jag+jwt"
GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS, JWT_BEARER)
