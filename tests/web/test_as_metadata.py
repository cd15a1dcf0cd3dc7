"""Authorization server metadata (RFC 8414 §2-3; MCP AS-1..6, CIMD "Authorization Server Metadata", RFC 9207,
SEP-2207 / RS-6, CORS-1); no OIDC Discovery document (we are not an OpenID Provider)."""

from __future__ import annotations

import pytest

from tests.conftest import route

AS_METADATA_PATHS = ["/.well-known/oauth-authorization-server"]
OIDC_DISCOVERY = "/.well-known/openid-configuration"


@pytest.mark.parametrize("path", AS_METADATA_PATHS)
async def test_metadata_issuer_is_the_public_url_byte_for_byte_and_matches_the_prm(gateway, aiohttp_client, path):
    """MCP AS-3 (D26: clients MUST reject an issuer mismatch; Copilot CLI and opencode reject a trailing
    slash): PRM authorization_servers[0] and metadata issuer are the same byte string, with no slash."""
    client = await aiohttp_client(gateway)
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "application/json"
    issuer = (await response.json())["issuer"]
    assert issuer == f"http://127.0.0.1:{gateway.port}"
    prm = await (await client.get("/.well-known/oauth-protected-resource/alpha/mcp")).json()
    assert prm["authorization_servers"][0] == issuer


@pytest.mark.parametrize("path", AS_METADATA_PATHS)
async def test_metadata_publishes_every_field_mcp_clients_check(gateway, aiohttp_client, path):
    """MCP AS-4: RFC 8414 §2 REQUIRED fields, S256 (clients MUST refuse without it, S26), DCR-2's three auth
    methods, CIMD support (R26 "Advertising CIMD Support"), RFC 9207 iss, query response mode."""
    client = await aiohttp_client(gateway)
    body = await (await client.get(path)).json()
    issuer = f"http://127.0.0.1:{gateway.port}"
    assert body["issuer"] == issuer
    assert body["authorization_endpoint"] == f"{issuer}/authorize"
    assert body["token_endpoint"] == f"{issuer}/token"
    assert body["registration_endpoint"] == f"{issuer}/register"
    assert body["revocation_endpoint"] == f"{issuer}/revoke"
    assert body["response_types_supported"] == ["code"]
    assert body["response_modes_supported"] == ["query"]
    # client_credentials (ext-auth OAuth Client Credentials); jwt-bearer only with an enterprise IdP (issue 13)
    assert set(body["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    assert "authorization_grant_profiles_supported" not in body
    assert body["code_challenge_methods_supported"] == ["S256"]
    methods = {"none", "client_secret_post", "client_secret_basic", "private_key_jwt"}
    assert set(body["token_endpoint_auth_methods_supported"]) == methods
    assert set(body["revocation_endpoint_auth_methods_supported"]) == methods
    assert "ES256" in body["token_endpoint_auth_signing_alg_values_supported"]
    assert "none" not in body["token_endpoint_auth_signing_alg_values_supported"]
    assert "ES256" in body["dpop_signing_alg_values_supported"]  # RFC 9449 §5.1
    assert not {"none", "HS256"} & set(body["dpop_signing_alg_values_supported"])
    assert body["client_id_metadata_document_supported"] is True
    assert body["authorization_response_iss_parameter_supported"] is True


async def test_openid_configuration_is_not_served_and_says_where_the_metadata_is(gateway, aiohttp_client):
    """Our choice (issue 10, finding 20): we issue no ID tokens, and OIDC Discovery 1.0 §3 REQUIRES jwks_uri and
    id_token_signing_alg_values_supported (with RS256) of an OpenID Provider, so serving it would announce ID
    tokens. MCP 2025-11-25+ asks for RFC 8414 *or* OIDC Discovery; the TS/PY SDK clients and the conformance suite
    try RFC 8414 first, and the SDKs' own servers serve only it. A 404 JSON with CORS, so browsers read it too."""
    client = await aiohttp_client(gateway)
    response = await client.get(OIDC_DISCOVERY, headers={"Origin": "http://localhost:6274"})
    assert response.status == 404
    assert response.content_type == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    body = await response.json()
    assert body["error"] == "not_found"
    assert "/.well-known/oauth-authorization-server" in body["error_description"]
    assert "issuer" not in body
    preflight = await client.options(
        OIDC_DISCOVERY, headers={"Origin": "http://localhost:6274", "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status == 204


async def test_metadata_announces_no_oidc_fields_and_no_closed_endpoint(gateway, aiohttp_client):
    """RFC 8414 §2 fields only: no OIDC subject_types_supported or ID-token fields (finding 20: we are no OpenID
    Provider); with `oauth.introspection` empty, no introspection endpoint (finding 4: the endpoint is closed)."""
    client = await aiohttp_client(gateway)
    body = await (await client.get(AS_METADATA_PATHS[0])).json()
    assert body["userinfo_endpoint"].endswith("/userinfo")  # for tokens of grants that asked for `openid`
    for absent in (
        "subject_types_supported",
        "introspection_endpoint",
        "jwks_uri",
        "introspection_endpoint_auth_methods_supported",
        "id_token_signing_alg_values_supported",
    ):
        assert absent not in body, absent


async def test_metadata_announces_introspection_only_with_credentials_configured(
    start_gateway, upstream, aiohttp_client
):
    """RFC 8414 §2 / RFC 7662: introspection_endpoint (Basic only) once `oauth.introspection` names a caller."""
    server = await start_gateway(
        [route("alpha", upstream.url)], oauth={"introspection": [{"name": "notes", "secret": "s3cret-introspect"}]}
    )
    client = await aiohttp_client(server)
    body = await (await client.get(AS_METADATA_PATHS[0])).json()
    assert body["introspection_endpoint"] == f"http://127.0.0.1:{server.port}/introspect"
    assert body["introspection_endpoint_auth_methods_supported"] == ["client_secret_basic"]


async def test_every_endpoint_is_mounted_at_the_origin_root(gateway, aiohttp_client):
    """MCP AS-6: claude.ai synthesizes /authorize, /token and /register on the MCP server's origin when
    discovery fails, as do 2025-03-26 clients; so the advertised endpoints are exactly those paths."""
    client = await aiohttp_client(gateway)
    body = await (await client.get(AS_METADATA_PATHS[0])).json()
    issuer = f"http://127.0.0.1:{gateway.port}"
    for name, path in (
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("registration_endpoint", "/register"),
        ("revocation_endpoint", "/revoke"),
    ):
        assert body[name] == issuer + path
    for path in ("/token", "/register", "/revoke"):  # they answer there (a CORS preflight is the cheapest probe)
        response = await client.options(
            path, headers={"Origin": "http://localhost:6274", "Access-Control-Request-Method": "POST"}
        )
        assert response.status == 204, path
    authorize = await client.get("/authorize", allow_redirects=False)
    assert authorize.status == 400  # an error page for a request without client_id: the endpoint exists
    assert authorize.content_type == "text/html"


@pytest.mark.parametrize("path", AS_METADATA_PATHS)
async def test_metadata_answers_cors_star_on_get_and_preflight(gateway, aiohttp_client, path):
    """MCP CORS-1: Access-Control-Allow-Origin * without credentials; the preflight allows
    MCP-Protocol-Version, which TS and PY clients send on discovery (Inspector issue 817)."""
    client = await aiohttp_client(gateway)
    got = await client.get(path, headers={"Origin": "http://localhost:6274", "MCP-Protocol-Version": "2025-11-25"})
    assert got.status == 200
    assert got.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in got.headers

    preflight = await client.options(
        path,
        headers={
            "Origin": "http://localhost:6274",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "mcp-protocol-version",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"mcp-protocol-version", "authorization", "content-type"} <= allowed
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]


async def test_offline_access_is_advertised_by_the_as_but_by_no_protected_resource(gateway, aiohttp_client):
    """SEP-2207 / MCP AS-4 and RS-6: offline_access may appear in the AS scopes_supported; a resource
    SHOULD NOT advertise it. The AS list also carries every route's scopes."""
    client = await aiohttp_client(gateway)
    scopes = (await (await client.get(AS_METADATA_PATHS[0])).json())["scopes_supported"]
    assert "offline_access" in scopes and "openid" in scopes
    assert {"alpha:read", "beta:read"} <= set(scopes)
    for name in ("alpha", "beta"):
        prm = await (await client.get(f"/.well-known/oauth-protected-resource/{name}/mcp")).json()
        assert "offline_access" not in prm["scopes_supported"] and "openid" not in prm["scopes_supported"]
