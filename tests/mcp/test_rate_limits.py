"""Rate limits (issue #5 item 3): atomic in Redis, so exact across gateway instances sharing it."""

from __future__ import annotations

import asyncio

from gateway.app import create_app
from gateway.ports import free_port
from tests.conftest import make_settings, route
from tests.support.mcp_wire import modern_call
from tests.support.tokens import issue


async def two_instances(aiohttp_server, upstream, redis_url, key_prefix, clock, **extra):
    """Two gateways with one public_url and one store (a scaled-out deployment)."""
    port = free_port()
    settings = make_settings(port, redis_url, key_prefix, [route("alpha", upstream.url)], **extra)
    first = await aiohttp_server(create_app(settings, clock=clock), port=port)
    second = await aiohttp_server(create_app(settings, clock=clock), port=free_port())
    return first, second


async def test_per_user_limit_is_exact_across_two_instances(
    aiohttp_server, aiohttp_client, upstream, redis_url, key_prefix, clock, store
):
    first, second = await two_instances(
        aiohttp_server,
        upstream,
        redis_url,
        key_prefix,
        clock,
        rate_limits={"mcp_per_user": {"limit": 50, "period": 3600}, "tool_calls_per_user": None},
    )
    token = await issue(store, first, "alpha")
    clients = [await aiohttp_client(first), await aiohttp_client(second)]
    headers, body = modern_call(1, "add", {"a": 1, "b": 2})
    headers["Authorization"] = f"Bearer {token}"

    async def call(i: int) -> tuple[int, str | None, dict]:
        response = await clients[i % 2].post("/alpha/mcp", json=body, headers=headers)
        payload = await response.json() if response.status == 429 else {}
        await response.read()
        return response.status, response.headers.get("Retry-After"), payload

    results = await asyncio.gather(*(call(i) for i in range(200)))
    statuses = [status for status, _, _ in results]
    assert statuses.count(200) == 50 and statuses.count(429) == 150, sorted(set(statuses))
    limited = [r for r in results if r[0] == 429]
    assert all(int(retry) >= 1 for _, retry, _ in limited)
    assert all(p["error"]["code"] == -31429 and p["id"] == 1 for _, _, p in limited)


async def test_per_tool_limit_counts_calls_of_that_tool_only(start_gateway, upstream, store, aiohttp_client):
    server = await start_gateway(
        [route("alpha", upstream.url)],
        rate_limits={"mcp_per_user": None, "tool_calls_per_user": {"limit": 3, "period": 3600}},
    )
    token = await issue(store, server, "alpha")
    client = await aiohttp_client(server)

    async def call(tool: str, arguments: dict) -> int:
        headers, body = modern_call(1, tool, arguments)
        response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
        await response.read()
        return response.status

    adds = await asyncio.gather(*(call("add", {"a": 1, "b": 1}) for _ in range(8)))
    assert sorted(adds) == [200] * 3 + [429] * 5
    assert await call("echo_headers", {}) == 200  # another tool has its own budget


async def test_oauth_endpoints_limit_each_client_ip(start_gateway, upstream, aiohttp_client):
    """Per client IP; behind a trusted proxy the address comes from X-Forwarded-For."""
    server = await start_gateway(
        [route("alpha", upstream.url)],
        trusted_proxies=["127.0.0.0/8"],
        rate_limits={"oauth_per_ip": {"limit": 3, "period": 3600}},
    )
    client = await aiohttp_client(server)

    async def token_call(ip: str) -> tuple[int, dict, str | None]:
        response = await client.post(
            "/token",
            data={"grant_type": "refresh_token", "client_id": "x", "refresh_token": "y"},
            headers={"X-Forwarded-For": ip},
        )
        return response.status, await response.json(), response.headers.get("Retry-After")

    first = [await token_call("198.51.100.7") for _ in range(4)]
    assert [s for s, _, _ in first] == [401, 401, 401, 429]
    assert first[-1][1]["error"] == "slow_down" and int(first[-1][2]) >= 1
    other, _, _ = await token_call("198.51.100.8")
    assert other == 401  # another address, its own bucket
    page = await client.get("/authorize?client_id=x", headers={"X-Forwarded-For": "198.51.100.7"})
    assert page.status == 429 and page.content_type == "text/html"


async def test_forwarded_for_is_ignored_without_trusted_proxies(start_gateway, upstream, aiohttp_client):
    server = await start_gateway(
        [route("alpha", upstream.url)], rate_limits={"oauth_per_ip": {"limit": 2, "period": 3600}}
    )
    client = await aiohttp_client(server)
    statuses = []
    for i in range(3):  # a spoofed header per request must not buy a fresh bucket
        response = await client.post(
            "/revoke", data={"token": "t", "client_id": "x"}, headers={"X-Forwarded-For": f"203.0.113.{i}"}
        )
        statuses.append(response.status)
    assert statuses[-1] == 429


async def test_a_rate_limited_user_is_refused_before_policy_judges_the_body(
    start_gateway, upstream, store, aiohttp_client
):
    """Security review 2, R1: the per-user limit is checked right after the (bounded) strict read and before the
    costly policy decisions, so a limited user's flood of calls to protected tools is a 429, not 403 after 403."""
    policy = {"tools": [{"match": f"guarded_{i}_*", "groups": ["local:admins"]} for i in range(50)]}
    server = await start_gateway(
        [route("alpha", upstream.url, policy=policy)],
        rate_limits={"mcp_per_user": {"limit": 1, "period": 3600}, "tool_calls_per_user": None},
    )
    token = await issue(store, server, "alpha")
    client = await aiohttp_client(server)

    async def call(tool: str) -> tuple[int, dict]:
        headers, body = modern_call(1, tool, {})
        response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
        return response.status, await response.json()

    status, reply = await call("guarded_7_x")
    assert status == 403 and reply["error"]["code"] == -31403  # within the limit: policy decides
    status, reply = await call("guarded_7_x")
    assert status == 429 and reply["error"]["code"] == -31429 and reply["id"] == 1
