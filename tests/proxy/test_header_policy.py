"""The header allow-lists through a running gateway (issue 10 #9 and #12): what the real upstream receives
(`echo_headers`), what a hostile upstream can make the client's browser store, and ambiguous MCP headers."""

from __future__ import annotations

import json

from multidict import CIMultiDict

from tests.conftest import route
from tests.support.foreign_identity import OTHER_PROXIES_IDENTITY
from tests.support.hostile_upstream import hostile_upstream
from tests.support.mcp_wire import modern_call, tool_result_text
from tests.support.tokens import issue


async def echo_headers(client, path: str, token: str, extra: list[tuple[str, str]]) -> dict[str, str]:
    headers, body = modern_call(1, "echo_headers", {})
    sent = CIMultiDict({**headers, "Authorization": f"Bearer {token}"})
    for name, value in extra:
        sent.add(name, value)
    response = await client.post(path, json=body, headers=sent)
    assert response.status == 200, await response.text()
    return dict(json.loads(await tool_result_text(response)))


async def test_identity_headers_of_other_auth_proxies_never_reach_the_upstream(
    start_gateway, upstream, aiohttp_client, store
):
    """Issue 10 #9: `Cf-Access-Authenticated-User-Email`, `X-Goog-Authenticated-User-Email`, … from the client
    are dropped (an app moved from behind another auth proxy trusts them); a route's forward_headers let a named
    extra through, in its exact spelling only; cookies only when the route names them."""
    server = await start_gateway(
        [
            route("alpha", upstream.url),
            route("beta", upstream.url, forward_headers=["X-Tenant"], forward_cookies=["theme"]),
        ]
    )
    client = await aiohttp_client(server)
    spoofed = [(name, "mallory@example.com") for name in OTHER_PROXIES_IDENTITY]
    extras = [("X-Tenant", "acme"), ("X_Tenant", "evil"), ("Cookie", "theme=dark; mcpgw_session=secret; lang=en")]
    for name in ("alpha", "beta"):
        seen = await echo_headers(client, f"/{name}/mcp", await issue(store, server, name), spoofed + extras)
        assert not {n.lower() for n in OTHER_PROXIES_IDENTITY} & set(seen), name
        assert seen["x-forwarded-user"] == "local:alice" and seen["mcp-name"] == "echo_headers"
        assert "x_tenant" not in seen
        if name == "alpha":
            assert "x-tenant" not in seen and "cookie" not in seen
        else:
            assert seen["x-tenant"] == "acme" and seen["cookie"] == "theme=dark"


async def test_ambiguous_mcp_headers_get_a_400_json_rpc_error(gateway, aiohttp_client, store):
    """Issue 10 #9: a duplicate or underscore spelling of an Mcp-* header is refused before the upstream sees it."""
    token = await issue(store, gateway, "alpha")
    client = await aiohttp_client(gateway)
    headers, body = modern_call(5, "add", {"a": 1, "b": 2})
    for extra in (
        [("Mcp-Name", "delete_everything")],
        [("Mcp_Method", "tools/list")],
        [("MCP_Protocol_Version", "2025-11-25")],
        [("Mcp-Param_Region", "eu")],
    ):
        sent = CIMultiDict({**headers, "Authorization": f"Bearer {token}"})
        for name, value in extra:
            sent.add(name, value)
        response = await client.post("/alpha/mcp", json=body, headers=sent)
        assert response.status == 400, extra
        reply = await response.json()
        assert reply["jsonrpc"] == "2.0" and reply["error"]["code"] == -32020 and "header" in reply["error"]["message"]


async def test_a_hostile_upstream_cannot_set_cookies_cors_or_hsts_for_the_gateways_origin(
    start_gateway, aiohttp_server, aiohttp_client, store
):
    """Issue 10 #12: Set-Cookie (even named like the gateway's session), Access-Control-*, Clear-Site-Data, HSTS,
    Alt-Svc, Refresh, Location and the upstream's own WWW-Authenticate are dropped; a Set-Cookie passes only for a
    cookie the route forwards; response extras pass when the route names them."""
    hostile = await aiohttp_server(hostile_upstream())
    url = str(hostile.make_url("/mcp"))
    server = await start_gateway(
        [
            route("alpha", url),
            route("beta", url, forward_cookies=["theme"], forward_response_headers=["X-RateLimit-Remaining"]),
        ]
    )
    client = await aiohttp_client(server)
    headers, body = modern_call(3, "add", {"a": 1, "b": 2})
    for name in ("alpha", "beta"):
        token = await issue(store, server, name)
        response = await client.post(f"/{name}/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
        assert response.status == 200 and await tool_result_text(response) == "ok"
        got = {k.lower() for k in response.headers}
        assert not got & {
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "clear-site-data",
            "strict-transport-security",
            "alt-svc",
            "refresh",
            "location",
            "www-authenticate",
            "x-powered-by",
        }, name
        assert response.headers["Mcp-Session-Id"] == "s-1"
        cookies = response.headers.getall("Set-Cookie", [])
        if name == "alpha":
            assert cookies == [] and "x-ratelimit-remaining" not in got
        else:
            assert cookies == ["theme=dark; Path=/"] and response.headers["X-RateLimit-Remaining"] == "7"
