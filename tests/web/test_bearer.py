"""Bearer checks and challenges on MCP routes (RFC 6750 §3; MCP RS-4, RS-5, RS-7, RS-8, RS-10, RS-11, RS-12, RS-15)."""

from __future__ import annotations

import pytest

from tests.conftest import route
from tests.support.challenge import parse_bearer
from tests.support.mcp_wire import modern_call, tool_result_text
from tests.support.tokens import issue


def metadata_url(server, name: str) -> str:
    return f"http://127.0.0.1:{server.port}/.well-known/oauth-protected-resource/{name}/mcp"


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
async def test_request_without_token_gets_401_with_one_absolute_resource_metadata(gateway, aiohttp_client, method):
    """MCP RS-4/RS-5: 401, exactly one absolute resource_metadata, the route's scope, no error (RFC 6750 §3.1)."""
    client = await aiohttp_client(gateway)
    response = await client.request(
        method, "/alpha/mcp", json={"jsonrpc": "2.0", "id": 5, "method": "ping"} if method == "POST" else None
    )
    assert response.status == 401
    assert parse_bearer(response.headers["WWW-Authenticate"]) == [
        ("resource_metadata", metadata_url(gateway, "alpha")),
        ("scope", "alpha:read"),
    ]
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["code"] == -31401


@pytest.mark.parametrize("authorization", ["Bearer mcpgw_at_not-a-real-token", "Bearer ###", "bearer   "])
async def test_bad_token_gets_401_invalid_token(gateway, aiohttp_client, authorization):
    """RFC 6750 §3.1: a presented but unusable token -> error="invalid_token"; still one resource_metadata."""
    client = await aiohttp_client(gateway)
    response = await client.post("/alpha/mcp", json={}, headers={"Authorization": authorization})
    assert response.status == 401
    params = parse_bearer(response.headers["WWW-Authenticate"])
    assert [v for k, v in params if k == "resource_metadata"] == [metadata_url(gateway, "alpha")]
    assert ("error", "invalid_token") in params
    assert ("scope", "alpha:read") in params


async def test_basic_credentials_count_as_no_token(gateway, aiohttp_client):
    """RFC 6750 §3.1: a request with no Bearer credentials gets a challenge without an error code."""
    client = await aiohttp_client(gateway)
    response = await client.post("/alpha/mcp", json={}, headers={"Authorization": "Basic YTpi"})
    assert response.status == 401
    assert "error" not in dict(parse_bearer(response.headers["WWW-Authenticate"]))


async def test_valid_token_reaches_the_upstream_on_both_slash_forms(gateway, aiohttp_client, store):
    """MCP RS-15: /alpha/mcp and /alpha/mcp/ both served directly, never a redirect."""
    token = await issue(store, gateway, "alpha")
    client = await aiohttp_client(gateway)
    for path in ("/alpha/mcp", "/alpha/mcp/"):
        headers, body = modern_call(1, "add", {"a": 2, "b": 3})
        response = await client.post(
            path, json=body, headers={**headers, "Authorization": f"Bearer {token}"}, allow_redirects=False
        )
        assert response.status == 200, await response.text()
        assert await tool_result_text(response) == "5"


async def test_expired_token_is_rejected(gateway, aiohttp_client, store, clock):
    """MCP RS-8: exp in the past -> 401 invalid_token; expiry uses the injected clock, Redis TTL is only GC."""
    token = await issue(store, gateway, "alpha", ttl=60, now=clock.now)
    client = await aiohttp_client(gateway)
    headers, body = modern_call(1, "add", {"a": 1, "b": 1})
    ok = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert ok.status == 200
    clock.now += 61
    expired = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert expired.status == 401
    assert ("error", "invalid_token") in parse_bearer(expired.headers["WWW-Authenticate"])


async def test_revoked_token_is_rejected(gateway, aiohttp_client, store):
    from gateway.oauth.token_values import hash_token

    token = await issue(store, gateway, "alpha")
    assert await store.revoke_access_token(hash_token(token))
    client = await aiohttp_client(gateway)
    response = await client.post("/alpha/mcp", json={}, headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401


async def test_token_for_another_route_is_rejected(gateway, aiohttp_client, store):
    """MCP RS-8 (audience): a token bound to alpha's resource is refused on beta, with beta's challenge."""
    token = await issue(store, gateway, "alpha")
    client = await aiohttp_client(gateway)
    response = await client.post("/beta/mcp", json={}, headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401
    params = parse_bearer(response.headers["WWW-Authenticate"])
    assert ("resource_metadata", metadata_url(gateway, "beta")) in params
    assert ("error", "invalid_token") in params


async def test_token_in_query_string_is_ignored(gateway, aiohttp_client, store):
    """MCP RS-7: only the Authorization header counts; a query token is as good as none."""
    token = await issue(store, gateway, "alpha")
    client = await aiohttp_client(gateway)
    response = await client.post(f"/alpha/mcp?access_token={token}", json={})
    assert response.status == 401
    assert "error" not in dict(parse_bearer(response.headers["WWW-Authenticate"]))


async def test_missing_required_scope_gets_403_insufficient_scope(start_gateway, upstream, aiohttp_client, store):
    """MCP RS-10: 403 with error="insufficient_scope" and every scope the operation needs, in one challenge."""
    server = await start_gateway(
        [
            route(
                "alpha",
                upstream.url,
                scopes=["alpha:read", "alpha:write"],
                required_scopes=["alpha:read", "alpha:write"],
            )
        ]
    )
    token = await issue(store, server, "alpha", scopes=("alpha:read",))
    client = await aiohttp_client(server)
    response = await client.post("/alpha/mcp", json={}, headers={"Authorization": f"Bearer {token}"})
    assert response.status == 403
    params = dict(parse_bearer(response.headers["WWW-Authenticate"]))
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "alpha:read alpha:write"
    assert params["resource_metadata"] == metadata_url(server, "alpha")


async def test_foreign_browser_origin_is_refused(gateway, aiohttp_client, store):
    """MCP RS-12 (transport security): an Origin not on the allowlist -> 403, even with a valid token."""
    token = await issue(store, gateway, "alpha")
    client = await aiohttp_client(gateway)
    response = await client.post(
        "/alpha/mcp", json={}, headers={"Authorization": f"Bearer {token}", "Origin": "https://evil.example"}
    )
    assert response.status == 403
    assert (await response.json())["error"]["message"] == "Origin not allowed"


async def test_allowed_origin_gets_cors_exposing_challenge_and_session_headers(start_gateway, upstream, aiohttp_client):
    """CORS-2: allowlisted origins see WWW-Authenticate and Mcp-Session-Id; the preflight names MCP headers."""
    server = await start_gateway([route("alpha", upstream.url)], allowed_origins=["http://localhost:6274"])
    client = await aiohttp_client(server)
    preflight = await client.options(
        "/alpha/mcp",
        headers={
            "Origin": "http://localhost:6274",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, mcp-protocol-version",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:6274"
    for name in ("Authorization", "MCP-Protocol-Version", "Mcp-Session-Id", "Last-Event-ID"):
        assert name in preflight.headers["Access-Control-Allow-Headers"]
    challenge = await client.post("/alpha/mcp", json={}, headers={"Origin": "http://localhost:6274"})
    assert challenge.status == 401
    assert challenge.headers["Access-Control-Allow-Origin"] == "http://localhost:6274"
    exposed = challenge.headers["Access-Control-Expose-Headers"]
    assert "WWW-Authenticate" in exposed and "Mcp-Session-Id" in exposed


async def test_preflight_allows_the_requested_mcp_param_headers_and_the_routes_extras(
    start_gateway, upstream, aiohttp_client
):
    """CORS-2 with the header allow-list (issue 10 #9): `Mcp-Param-*` is no wildcard in Access-Control-Allow-Headers
    (only a lone `*` is), so a browser could not send `Mcp-Param-Region`; the requested names the gateway forwards
    (Mcp-Param-…, routes[].forward_headers) are echoed, and nothing the upstream would never see."""
    server = await start_gateway(
        [route("alpha", upstream.url, forward_headers=["X-Tenant"])], allowed_origins=["http://localhost:6274"]
    )
    client = await aiohttp_client(server)
    preflight = await client.options(
        "/alpha/mcp",
        headers={
            "Origin": "http://localhost:6274",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "mcp-param-region, x-tenant, x-goog-authenticated-user-email",
        },
    )
    assert preflight.status == 204
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "mcp-protocol-version", "mcp-param-region", "x-tenant"} <= allowed
    assert "x-goog-authenticated-user-email" not in allowed and "mcp-param-*" not in allowed
