"""Protected Resource Metadata served by the gateway for each route (RFC 9728; MCP RS-1, RS-2, RS-3, CORS-1)."""

from __future__ import annotations

from tests.conftest import route


async def test_route_metadata_names_the_canonical_resource_byte_for_byte(gateway, aiohttp_client):
    """RFC 9728 §3.2/§3.3 and MCP RS-1/RS-2: resource == the URL clients use; issuer == public_url."""
    client = await aiohttp_client(gateway)
    public_url = f"http://127.0.0.1:{gateway.port}"
    response = await client.get("/.well-known/oauth-protected-resource/alpha/mcp")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {
        "resource": f"{public_url}/alpha/mcp",
        "authorization_servers": [public_url],
        "scopes_supported": ["alpha:read"],
        "bearer_methods_supported": ["header"],
        "resource_name": "alpha",
        "dpop_signing_alg_values_supported": ["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"],
        "dpop_bound_access_tokens_required": False,  # RFC 9728 §2 (issue 13: routes[].require_dpop)
    }
    assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_metadata_with_trailing_slash_names_the_same_resource(gateway, aiohttp_client):
    """Our choice: a client that built the URL from `/alpha/mcp/` still finds the (slash-less) canonical resource."""
    client = await aiohttp_client(gateway)
    body = await (await client.get("/.well-known/oauth-protected-resource/alpha/mcp/")).json()
    assert body["resource"] == f"http://127.0.0.1:{gateway.port}/alpha/mcp"


async def test_root_metadata_is_404_when_several_routes_exist(gateway, aiohttp_client):
    """MCP RS-3: a root document cannot name one resource for several upstreams."""
    client = await aiohttp_client(gateway)
    response = await client.get("/.well-known/oauth-protected-resource")
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"


async def test_root_metadata_names_the_only_route(start_gateway, upstream, aiohttp_client):
    """MCP RS-3: with exactly one route the root document is unambiguous (clients fall back to it)."""
    server = await start_gateway([route("solo", upstream.url)])
    client = await aiohttp_client(server)
    body = await (await client.get("/.well-known/oauth-protected-resource")).json()
    assert body["resource"] == f"http://127.0.0.1:{server.port}/solo/mcp"


async def test_unknown_metadata_path_is_404(gateway, aiohttp_client):
    client = await aiohttp_client(gateway)
    assert (await client.get("/.well-known/oauth-protected-resource/gamma/mcp")).status == 404


async def test_metadata_preflight_allows_mcp_protocol_version(gateway, aiohttp_client):
    """CORS-1: browser clients send MCP-Protocol-Version on discovery requests (Inspector issue 817)."""
    client = await aiohttp_client(gateway)
    response = await client.options(
        "/.well-known/oauth-protected-resource/alpha/mcp",
        headers={
            "Origin": "http://localhost:6274",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "mcp-protocol-version",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "MCP-Protocol-Version" in response.headers["Access-Control-Allow-Headers"]


async def test_host_based_route_serves_its_metadata_on_its_host(start_gateway, upstream, aiohttp_client):
    """Contract: `host:` routes get resource https?://host/path and their PRM on that host."""
    server = await start_gateway(
        [route("alpha", upstream.url), {"name": "notes", "host": "notes.example.com", "upstream": upstream.url}]
    )
    client = await aiohttp_client(server)
    response = await client.get("/.well-known/oauth-protected-resource/mcp", headers={"Host": "notes.example.com"})
    assert (await response.json())["resource"] == "http://notes.example.com/mcp"
    root = await client.get("/.well-known/oauth-protected-resource", headers={"Host": "notes.example.com"})
    assert (await root.json())["resource"] == "http://notes.example.com/mcp"
    challenge = await client.post("/mcp", json={}, headers={"Host": "notes.example.com"})
    assert (
        'resource_metadata="http://notes.example.com/.well-known/oauth-protected-resource/mcp"'
        in challenge.headers["WWW-Authenticate"]
    )
