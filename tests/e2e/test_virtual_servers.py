"""Virtual servers (`virtual_servers[]`): one MCP endpoint combining member routes in front of real upstream
processes (the Streamable HTTP demo server with SSE answers, the same with JSON answers, a stdio one); the real SDK
client of both revisions and raw HTTP (gateway.config.aggregate, gateway.mcp.namespacing, gateway.web.aggregate)."""

from __future__ import annotations

import base64
import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from aiohttp import ClientResponse
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import PromptReference

from gateway.config import ConfigError, Settings
from tests.conftest import route
from tests.support.challenge import parse_bearer
from tests.support.mcp_wire import MODERN, legacy_initialize, read_sse_event
from tests.support.processes import REPO, free_port
from tests.support.tokens import issue

IDENTITY_META = "dev.mcp-auth-gateway/identity"
HUB = {"name": "hub", "path": "/hub/mcp", "routes": ["alpha", "beta"]}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def members(upstream_url: str, other_url: str, **alpha: Any) -> list[dict[str, Any]]:
    return [route("alpha", upstream_url, **alpha), route("beta", other_url)]


@asynccontextmanager
async def connected(server, token: str, mode: str = "auto", path: str = "/hub/mcp") -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(str(server.make_url(path)), http_client=http), mode=mode) as c:
        yield c


def modern(method: str, params: dict[str, Any], request_id: Any = 1, name: str | None = None) -> tuple[dict, dict]:
    """Headers and body of a stateless 2026-07-28 request (mirrored headers included)."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = {**ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = name
    return headers, {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": meta}}


async def post(client, token: str, method: str, params: dict[str, Any], request_id: Any = 1, name: str | None = None):
    headers, body = modern(method, params, request_id, name)
    return await client.post("/hub/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})


async def answer(response: ClientResponse) -> dict[str, Any]:
    """The JSON-RPC response in a JSON or SSE body (notifications skipped)."""
    if response.content_type != "text/event-stream":
        return await response.json()
    while True:
        event = await read_sse_event(response)
        if "method" not in event:
            return event


async def tool_names(client, token: str) -> list[str]:
    response = await post(client, token, "tools/list", {})
    assert response.status == 200, await response.text()
    result = (await answer(response))["result"]
    assert "nextCursor" not in result  # (each demo server answers with one page)
    return [t["name"] for t in result["tools"]]


def audit_lines(log: Path, route_name: str = "hub") -> list[dict[str, Any]]:
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("event") == "mcp.request" and r.get("route") == route_name]


# -- both revisions through the SDK ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_both_revisions_list_every_members_tools_prefixed_and_each_call_reaches_its_owner(
    start_gateway, upstream, json_upstream, store, mode
):
    """The same tool on two members shows twice, under two prefixes; echo_headers tells which upstream answered
    (its Host); progress notifications come through a dispatched call."""
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    token = await issue(store, server, "hub", user="carol", groups=("sre",))
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with connected(server, token, mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        names = [t.name for t in (await client.list_tools()).tools]
        for tool in ("add", "echo_headers", "slow_progress"):
            assert names.count(f"alpha__{tool}") == 1 and names.count(f"beta__{tool}") == 1
        assert all(n.startswith(("alpha__", "beta__")) for n in names), names
        assert (await client.call_tool("alpha__add", {"a": 40, "b": 2})).content[0].text == "42"
        assert (await client.call_tool("beta__add", {"a": 1, "b": 2})).content[0].text == "3"
        via_alpha = json.loads((await client.call_tool("alpha__echo_headers", {})).content[0].text)
        via_beta = json.loads((await client.call_tool("beta__echo_headers", {})).content[0].text)
        result = await client.call_tool(
            "alpha__slow_progress", {"steps": 3, "delay": 0.05}, progress_callback=on_progress
        )
        progress.append("result")
    assert via_alpha["host"] == f"127.0.0.1:{upstream.port}"
    assert via_beta["host"] == f"127.0.0.1:{json_upstream.port}"
    for seen in (via_alpha, via_beta):
        assert seen["x-forwarded-user"] == "local:carol" and seen["x-forwarded-groups"] == "sre"
        assert "authorization" not in seen
    assert result.content[0].text == "done"
    assert progress == ["step 1", "step 2", "step 3", "result"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_resources_prompts_and_completion_go_through_namespaced_names(
    start_gateway, upstream, json_upstream, store, mode
):
    """Resources are `<prefix>+<uri>` in lists and reads (the read's contents carry the same name); prompts and
    completion refs are `<prefix><separator><name>`; custom prefixes and separator."""
    hub = {**HUB, "prefixes": {"alpha": "a", "beta": "b"}, "separator": "."}
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[hub])
    token = await issue(store, server, "hub")
    async with connected(server, token, mode) as client:
        assert {t.name for t in (await client.list_tools()).tools} >= {"a.add", "b.add"}
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert uris >= {"a+file:///public/readme.md", "b+file:///public/readme.md", "b+file:///secret/keys.txt"}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert templates == {"a+file:///{+path}", "b+file:///{+path}"}
        read = await client.read_resource("b+file:///public/readme.md")
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        prompt = await client.get_prompt("a.greeting", {"name": "Dana"})
        completed = await client.complete(
            PromptReference(type="ref/prompt", name="b.greeting"), {"name": "name", "value": "a"}
        )
    assert [str(c.uri) for c in read.contents] == ["b+file:///public/readme.md"]
    assert read.contents[0].text.startswith("# Public readme")
    assert prompts == {"a.greeting", "b.greeting"}
    assert "Say hello to Dana." in prompt.messages[0].content.text
    assert completed.completion.values == ["alice"]


async def test_a_stdio_member_answers_its_own_tools_with_the_callers_identity(start_gateway, upstream, store):
    files = {
        "name": "files",
        "path": "/files/mcp",
        "scopes": ["files:read"],
        "command": {"argv": [sys.executable, "-m", "gateway.demo_upstream", "--stdio"], "cwd": str(REPO)},
    }
    hub = {**HUB, "routes": ["alpha", "files"]}
    server = await start_gateway([route("alpha", upstream.url), files], virtual_servers=[hub])
    token = await issue(store, server, "hub")
    async with connected(server, token) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        seen = json.loads((await client.call_tool("files__whoami", {})).content[0].text)
    assert "files__whoami" in names and "alpha__whoami" not in names  # (only the stdio server has whoami)
    assert seen["meta"][IDENTITY_META]["user"] == "local:alice"


# -- the members' own rules -----------------------------------------------------------------------------------------


async def test_a_members_tool_policy_hides_and_refuses_its_tool_but_not_the_other_members(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    policy = {"tools": [{"match": "slow_*", "deny": True}]}
    server = await start_gateway(members(upstream.url, json_upstream.url, policy=policy), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    names = await tool_names(client, token)
    assert "alpha__slow_progress" not in names and "beta__slow_progress" in names and "alpha__add" in names
    params = {"name": "alpha__slow_progress", "arguments": {"steps": 1, "delay": 0}}
    refused = await post(client, token, "tools/call", params, "call-3", name="alpha__slow_progress")
    assert refused.status == 403
    body = await refused.json()
    assert body["id"] == "call-3" and "slow_progress" in body["error"]["message"] and "result" not in body
    params = {"name": "beta__slow_progress", "arguments": {"steps": 1, "delay": 0}}
    allowed = await post(client, token, "tools/call", params, 4, name="beta__slow_progress")
    assert allowed.status == 200 and (await answer(allowed))["result"]["content"][0]["text"] == "done"


async def test_a_members_resource_policy_applies_to_its_namespaced_uris(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    policy = {"resources": [{"match": "file:///secret/*", "deny": True}]}
    server = await start_gateway(members(upstream.url, json_upstream.url, policy=policy), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    listed = await post(client, token, "resources/list", {})
    uris = {r["uri"] for r in (await answer(listed))["result"]["resources"]}
    assert "alpha+file:///secret/keys.txt" not in uris and "beta+file:///secret/keys.txt" in uris
    # (an alternate spelling is refused as ambiguous, 400, as on the member route itself)
    for spelling, status in (("alpha+file:///secret/keys.txt", 403), ("alpha+file:///public/../secret/keys.txt", 400)):
        refused = await post(client, token, "resources/read", {"uri": spelling}, 5, name=spelling)
        assert refused.status == status, spelling
        body = await refused.json()
        assert body["id"] == 5 and "top-secret" not in json.dumps(body)
    beta_secret = "beta+file:///secret/keys.txt"
    read = await post(client, token, "resources/read", {"uri": beta_secret}, 6, name=beta_secret)
    assert (await answer(read))["result"]["contents"][0]["text"] == "top-secret-key-material"


async def test_a_members_required_scopes_apply_to_calls_through_the_virtual_server(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    """alpha requires alpha:write; a hub token without it reaches beta only."""
    routes = members(
        upstream.url, json_upstream.url, scopes=["alpha:read", "alpha:write"], required_scopes=["alpha:write"]
    )
    server = await start_gateway(routes, virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub", scopes=("alpha:read", "beta:read"))
    names = await tool_names(client, token)
    assert names and all(n.startswith("beta__") for n in names), names
    params = {"name": "alpha__add", "arguments": {"a": 1, "b": 2}}
    refused = await post(client, token, "tools/call", params, 7, name="alpha__add")
    assert refused.status == 403 and (await refused.json())["id"] == 7


async def test_a_members_access_rules_leave_it_out_for_a_user_they_do_not_admit(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    """alpha admits local:ops only: Bob (no such group) sees beta's tools, and a call of alpha's is 403."""
    server = await start_gateway(
        members(upstream.url, json_upstream.url, allow={"groups": ["local:ops"]}), virtual_servers=[HUB]
    )
    client = await aiohttp_client(server)
    alice = await issue(store, server, "hub", user="alice", groups=("ops",))
    bob = await issue(store, server, "hub", user="bob", groups=("sre",))
    assert {"alpha__add", "beta__add"} <= set(await tool_names(client, alice))
    assert all(n.startswith("beta__") for n in await tool_names(client, bob))
    params = {"name": "alpha__add", "arguments": {"a": 1, "b": 2}}
    refused = await post(client, bob, "tools/call", params, 9, name="alpha__add")
    assert refused.status == 403 and (await refused.json())["id"] == 9


async def test_the_virtual_servers_own_access_rules_apply_before_any_member(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    server = await start_gateway(
        members(upstream.url, json_upstream.url), virtual_servers=[{**HUB, "allow": {"users": ["local:alice"]}}]
    )
    client = await aiohttp_client(server)
    alice = await issue(store, server, "hub", user="alice")
    bob = await issue(store, server, "hub", user="bob")
    assert "beta__add" in await tool_names(client, alice)
    refused = await post(client, bob, "tools/list", {})
    assert refused.status == 403


async def test_a_mirrored_name_naming_another_members_tool_is_refused(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    """MCP 2026-07-28 mirrored headers: Mcp-Name says beta's tool, the body calls alpha's denied one: 400, sent to
    nobody."""
    policy = {"tools": [{"match": "slow_*", "deny": True}]}
    server = await start_gateway(members(upstream.url, json_upstream.url, policy=policy), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    params = {"name": "alpha__slow_progress", "arguments": {"steps": 1, "delay": 0}}
    response = await post(client, token, "tools/call", params, 10, name="beta__slow_progress")
    assert response.status == 400 and (await response.json())["error"]["code"] == -32020


async def test_batches_unknown_methods_and_ping_on_a_virtual_server(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    bearer = {**ACCEPT, "Authorization": f"Bearer {token}"}
    ping = await client.post("/hub/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=bearer)
    assert ping.status == 200 and (await ping.json()) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    unknown = await post(client, token, "tasks/list", {}, 2)
    assert (await unknown.json())["error"]["code"] == -32601
    batch = [{"jsonrpc": "2.0", "id": 3, "method": "ping"}, {"jsonrpc": "2.0", "id": 4, "method": "ping"}]
    refused = await client.post("/hub/mcp", json=batch, headers={**bearer, "MCP-Protocol-Version": "2025-03-26"})
    assert refused.status == 400


async def test_a_modern_list_is_one_complete_private_page(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    """2026-07-28 caching hints of a combined list: private (it is per caller), complete, no next page."""
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    result = (await answer(await post(client, token, "tools/list", {})))["result"]
    assert result["resultType"] == "complete" and result["cacheScope"] == "private"
    assert isinstance(result["ttlMs"], int) and "nextCursor" not in result


async def test_a_next_page_asks_only_the_members_its_cursor_names(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    """A virtual cursor carries each member's own cursor: a page for alpha alone reaches alpha alone."""
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    response = await post(client, token, "tools/list", {"cursor": cursor({"alpha": "0"})}, "page-2")
    assert response.status == 200
    names = [t["name"] for t in (await answer(response))["result"]["tools"]]
    assert not any(n.startswith("beta__") for n in names), names


# -- names, cursors, methods ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("tools/call", {"name": "add", "arguments": {}}),
        ("tools/call", {"name": "gamma__add", "arguments": {}}),
        ("tools/call", {"name": "alpha__", "arguments": {}}),
        ("tools/call", {"name": "alpha+add", "arguments": {}}),
        ("resources/read", {"uri": "file:///public/readme.md"}),
        ("resources/read", {"uri": "alpha__file:///public/readme.md"}),
        ("prompts/get", {"name": "greeting"}),
    ],
)
async def test_a_name_no_member_has_is_invalid_params(
    start_gateway, upstream, json_upstream, store, aiohttp_client, method, params
):
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    response = await post(client, token, method, params, "n-1", name=params.get("name") or params.get("uri"))
    assert response.status == 400
    body = await response.json()
    assert body["error"]["code"] == -32602 and body["id"] == "n-1"


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    "given", ["not base64 at all!", cursor({"gamma": "x"}), cursor(["alpha"]), cursor({}), cursor({"alpha": 1}), 7]
)
async def test_a_cursor_the_virtual_server_did_not_give_is_invalid_params(
    start_gateway, upstream, json_upstream, store, aiohttp_client, given
):
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    response = await post(client, token, "tools/list", {"cursor": given}, "page-2")
    assert response.status == 400
    body = await response.json()
    assert body["error"]["code"] == -32602 and body["id"] == "page-2"


async def test_server_discover_is_answered_for_all_members_and_get_is_405(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    response = await post(client, token, "server/discover", {})
    assert response.status == 200
    result = (await answer(response))["result"]
    assert MODERN in result["supportedVersions"]
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "hub"
    assert {"tools", "resources", "prompts"} <= set(result["capabilities"])
    got = await client.get("/hub/mcp", headers={"Accept": "text/event-stream", "Authorization": f"Bearer {token}"})
    assert got.status == 405


async def test_a_legacy_session_opens_member_sessions_is_bound_to_its_user_and_ends_with_delete(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    """initialize (2025-11-25) answers with the virtual server's own Mcp-Session-Id; another user presenting it gets
    404; DELETE ends it (and its members' sessions), after which it is unknown."""
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    alice = await issue(store, server, "hub", user="alice")
    bob = await issue(store, server, "hub", user="bob")
    init = await client.post(
        "/hub/mcp", json=legacy_initialize(), headers={**ACCEPT, "Authorization": f"Bearer {alice}"}
    )
    assert init.status == 200
    assert (await answer(init))["result"]["serverInfo"]["name"] == "hub"
    session = {"Mcp-Session-Id": init.headers["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-11-25"}
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}

    async def as_user(token: str, message: dict[str, Any] | None = None, method: str = "POST") -> ClientResponse:
        headers = {**ACCEPT, **session, "Authorization": f"Bearer {token}"}
        return await client.request(method, "/hub/mcp", json=message, headers=headers)

    done = await as_user(alice, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert done.status == 202
    listed = await as_user(alice, listing)
    assert listed.status == 200
    names = {t["name"] for t in (await answer(listed))["result"]["tools"]}
    assert {"alpha__add", "beta__add"} <= names  # (each member found its own session: a stateful upstream)
    called = await as_user(
        alice,
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "beta__add", "arguments": {"a": 2, "b": 2}},
        },
    )
    assert (await answer(called))["result"]["content"][0]["text"] == "4"
    assert (await as_user(bob, listing)).status == 404
    assert (await as_user(alice, method="DELETE")).status == 204
    assert (await as_user(alice, listing)).status == 404
    assert (await as_user(alice, method="DELETE")).status == 404


async def test_delete_ends_each_members_upstream_session_and_a_members_session_id_is_no_virtual_one(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    """The member sessions stay the gateway's: the client sees only the virtual id; presenting a member's id on the
    virtual server is 404 (another route's session); after DELETE the upstream itself no longer knows it."""
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    bearer = {**ACCEPT, "Authorization": f"Bearer {token}", "MCP-Protocol-Version": "2025-11-25"}
    init = await client.post("/hub/mcp", json=legacy_initialize(), headers=bearer)
    virtual = init.headers["Mcp-Session-Id"]
    await init.read()
    echo = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "alpha__echo_headers"}}
    seen = await client.post("/hub/mcp", json=echo, headers={**bearer, "Mcp-Session-Id": virtual})
    own = json.loads((await answer(seen))["result"]["content"][0]["text"])["mcp-session-id"]
    assert own != virtual
    listing = {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}
    assert (await client.post("/hub/mcp", json=listing, headers={**bearer, "Mcp-Session-Id": own})).status == 404
    direct = {**ACCEPT, "MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": own}
    async with httpx2.AsyncClient(timeout=5) as raw:
        assert (await raw.post(upstream.url, json=listing, headers=direct)).status_code == 200
        assert (await client.delete("/hub/mcp", headers={**bearer, "Mcp-Session-Id": virtual})).status == 204
        assert (await raw.post(upstream.url, json=listing, headers=direct)).status_code == 404


async def test_each_member_gets_its_own_upstream_credential_and_rate_limits(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    auth = {"type": "static", "value": "alpha-upstream-key-0123", "header": "X-Api-Key"}
    limits = {"mcp_per_user": None, "tool_calls_per_user": {"limit": 1, "period": 3600}}
    routes = members(upstream.url, json_upstream.url, upstream_auth=auth, rate_limits=limits)
    server = await start_gateway(routes, virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")

    async def echo(tool: str, request_id: int) -> ClientResponse:
        return await post(client, token, "tools/call", {"name": tool, "arguments": {}}, request_id, name=tool)

    via_alpha = json.loads((await answer(await echo("alpha__echo_headers", 1)))["result"]["content"][0]["text"])
    via_beta = json.loads((await answer(await echo("beta__echo_headers", 2)))["result"]["content"][0]["text"])
    assert via_alpha["x-api-key"] == "alpha-upstream-key-0123" and "x-api-key" not in via_beta
    assert token not in json.dumps([via_alpha, via_beta])
    limited = await echo("alpha__echo_headers", 3)
    assert limited.status == 429 and (await limited.json())["id"] == 3
    assert (await echo("beta__echo_headers", 4)).status == 200  # (beta's limits are its own)


async def test_a_subscription_to_several_members_at_once_is_invalid_params(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    uris = ["alpha+file:///public/readme.md", "beta+file:///public/readme.md"]
    params = {"notifications": {"resourceSubscriptions": uris}}
    response = await post(client, token, "subscriptions/listen", params, "sub-1")
    assert response.status == 400
    body = await response.json()
    assert body["error"]["code"] == -32602 and body["id"] == "sub-1"


async def test_a_subscription_naming_too_many_resources_is_invalid_params_before_any_member_is_asked(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    params = {"notifications": {"resourceSubscriptions": ["alpha+file:///public/readme.md"] * 101}}
    response = await post(client, token, "subscriptions/listen", params, "sub-2")
    assert response.status == 400
    body = await response.json()
    assert body["error"]["code"] == -32602 and body["id"] == "sub-2"


async def test_the_legacy_sse_endpoints_of_a_virtual_server_are_404(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/hub/mcp/sse", headers=bearer)).status == 404
    posted = await client.post("/hub/mcp/messages?session_id=x", json=legacy_initialize(), headers=bearer)
    assert posted.status == 404
    assert (await client.get("/alpha/mcp/sse", headers=bearer)).status == 401  # (the hub's token: not alpha's)


# -- a member down, audience, metadata -------------------------------------------------------------------------------


async def test_a_member_that_is_down_is_left_out_with_a_warning_and_named_in_the_audit_line(
    start_gateway, upstream, store, aiohttp_client, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="gateway.web.aggregate")
    log = tmp_path / "audit.jsonl"
    down = f"http://127.0.0.1:{free_port()}/mcp"
    server = await start_gateway(members(upstream.url, down), virtual_servers=[HUB], audit={"path": str(log)})
    client = await aiohttp_client(server)
    token = await issue(store, server, "hub")
    names = await tool_names(client, token)
    assert "alpha__add" in names and not any(n.startswith("beta__") for n in names)
    lines = audit_lines(log)
    assert len(lines) == 1 and lines[0]["status"] == 200
    assert lines[0]["members_failed"] == ["beta"]
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("beta" in message for message in warned), [r.getMessage() for r in caplog.records]
    assert any(r.name == "gateway.web.aggregate" and "beta left out" in r.getMessage() for r in caplog.records)
    params = {"name": "beta__add", "arguments": {"a": 1, "b": 2}}
    failed = await post(client, token, "tools/call", params, 8, name="beta__add")
    assert failed.status == 502 and (await failed.json())["id"] == 8


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_sdk_client_works_with_the_members_that_answer_when_one_is_down(start_gateway, upstream, store, mode):
    """legacy: initialize opens a session on the member that answers; auto: server/discover from it alone."""
    down = f"http://127.0.0.1:{free_port()}/mcp"
    server = await start_gateway(members(upstream.url, down), virtual_servers=[HUB])
    token = await issue(store, server, "hub")
    async with connected(server, token, mode) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        assert "alpha__add" in names and not any(n.startswith("beta__") for n in names)
        assert (await client.call_tool("alpha__add", {"a": 20, "b": 22})).content[0].text == "42"


async def test_a_member_that_requires_dpop_is_not_reached_with_a_bearer_token_through_a_virtual_server(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    """alpha accepts DPoP-bound tokens only (require_dpop, RFC 9449): a plain Bearer token, refused on /alpha/mcp,
    must not reach alpha's upstream by way of the virtual server either (or such a member is refused by the
    configuration check)."""
    routes = [route("alpha", upstream.url, require_dpop=True), route("beta", json_upstream.url)]
    try:
        server = await start_gateway(routes, virtual_servers=[HUB])
    except ConfigError:
        return  # (refused at configuration: fine too)
    client = await aiohttp_client(server)
    alpha = await issue(store, server, "alpha")
    headers, body = modern("tools/list", {})
    direct = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {alpha}"})
    assert direct.status == 401  # (the member itself)
    hub = await issue(store, server, "hub")
    assert not any(n.startswith("alpha__") for n in await tool_names(client, hub))
    params = {"name": "alpha__add", "arguments": {"a": 1, "b": 2}}
    called = await post(client, hub, "tools/call", params, 11, name="alpha__add")
    assert called.status in (401, 403), await called.text()
    assert "result" not in await called.json()


async def test_a_virtual_servers_token_is_refused_on_a_member_route_and_a_members_on_the_virtual_server(
    start_gateway, upstream, json_upstream, store, aiohttp_client
):
    """Each is its own resource (RFC 8707 audience)."""
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    hub, alpha = await issue(store, server, "hub"), await issue(store, server, "alpha")
    for path, token in (("/alpha/mcp", hub), ("/beta/mcp", hub), ("/hub/mcp", alpha)):
        headers, body = modern("tools/list", {})
        response = await client.post(path, json=body, headers={**headers, "Authorization": f"Bearer {token}"})
        assert response.status == 401, path
        assert dict(parse_bearer(response.headers["WWW-Authenticate"]))["error"] == "invalid_token"


async def test_the_virtual_servers_metadata_names_its_own_resource_and_its_members_scopes(
    start_gateway, upstream, json_upstream, aiohttp_client
):
    server = await start_gateway(members(upstream.url, json_upstream.url), virtual_servers=[HUB])
    client = await aiohttp_client(server)
    response = await client.get("/.well-known/oauth-protected-resource/hub/mcp")
    assert response.status == 200
    metadata = await response.json()
    assert metadata["resource"] == str(server.make_url("/hub/mcp"))
    assert metadata["scopes_supported"] == ["alpha:read", "beta:read"]


# -- configuration --------------------------------------------------------------------------------------------------


def problems(routes: list[dict[str, Any]], virtual: list[dict[str, Any]] | None = None) -> list[str]:
    extra = {} if virtual is None else {"virtual_servers": virtual}
    with pytest.raises(ConfigError) as caught:
        Settings(public_url="http://127.0.0.1:8080", routes=routes, **extra)
    return caught.value.problems


ROUTES = members("http://127.0.0.1:9001/mcp", "http://127.0.0.1:9002/mcp")


@pytest.mark.parametrize(
    ("virtual", "where", "says"),
    [
        ({**HUB, "routes": ["alpha", "nope"]}, "virtual_servers[0].routes", "'nope' is not a route"),
        ({**HUB, "routes": ["alpha", "alpha"]}, "virtual_servers[0].routes", "a route is named twice"),
        ({**HUB, "prefixes": {"alpha": "x", "beta": "X"}}, "virtual_servers[0].prefixes", "the same prefix"),
        ({**HUB, "prefixes": {"beta": "alpha"}}, "virtual_servers[0].prefixes", "the same prefix"),
        ({**HUB, "prefixes": {"gamma": "g"}}, "virtual_servers[0].prefixes", "'gamma' is not one of its routes"),
        ({**HUB, "prefixes": {"alpha": "my-alpha"}, "separator": "-"}, "virtual_servers[0].separator", "appears in"),
        ({**HUB, "prefixes": {"alpha": "a+b"}}, "virtual_servers[0].prefixes", "needs a prefix"),
        ({**HUB, "prefixes": {"alpha": "1st"}}, "virtual_servers[0].prefixes", "needs a prefix"),
        ({**HUB, "name": "alpha", "path": "/other/mcp"}, "routes[2].name", "duplicate route name"),
        ({**HUB, "path": "/alpha/mcp"}, "routes[2].path", "duplicate route path"),
    ],
)
def test_virtual_servers_that_cannot_work_are_refused(virtual, where, says):
    found = problems(ROUTES, [virtual])
    assert any(p.startswith(where + ": ") and says in p for p in found), found


def test_a_member_whose_name_cannot_be_a_prefix_needs_one():
    routes = [route("my_api", "http://127.0.0.1:9001/mcp"), route("beta", "http://127.0.0.1:9002/mcp")]
    found = problems(routes, [{**HUB, "routes": ["my_api", "beta"]}])
    assert any(p.startswith("virtual_servers[0].prefixes: 'my_api' needs a prefix") for p in found), found
    Settings(
        public_url="http://127.0.0.1:8080",
        routes=routes,
        virtual_servers=[{**HUB, "routes": ["my_api", "beta"], "prefixes": {"my_api": "api"}}],
    )


def test_a_virtual_server_is_not_a_member_of_another():
    found = problems(ROUTES, [HUB, {"name": "outer", "path": "/outer/mcp", "routes": ["hub", "alpha"]}])
    assert any(p.startswith("virtual_servers[1].routes: 'hub' is not a route") for p in found), found


def test_a_route_with_aggregate_set_by_hand_is_refused():
    hand_made = {**route("gamma", "virtual://gamma"), "aggregate": {"members": ["alpha", "beta"]}}
    found = problems([*ROUTES, hand_made])
    assert any(p.startswith("routes[2].aggregate: ") for p in found), found


def test_a_virtual_server_becomes_a_route_with_its_members_scopes():
    settings = Settings(public_url="http://127.0.0.1:8080", routes=ROUTES, virtual_servers=[HUB])
    made = settings.routes[-1]
    assert made.name == "hub" and made.path == "/hub/mcp" and made.aggregate is not None
    assert made.aggregate.members == ["alpha", "beta"] and made.scopes == ["alpha:read", "beta:read"]
