"""Held upstream credentials over time: refreshed at the upstream's server across expiry (once, however many
gateway instances need it at once), dropped when the upstream revokes them, and the user asked to connect again."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from gateway.app import create_app
from gateway.app_state import METRICS_KEY, SETTINGS_KEY
from gateway.vault import Vault
from tests.conftest import make_settings
from tests.support.gateway_server import GatewayServer
from tests.support.mcp_wire import modern_call
from tests.support.processes import free_port
from tests.support.tokens import issue
from tests.upstream.conftest import remote_route
from tests.upstream.flows import signed_in_at_both

LATER = 4000  # seconds: past the upstream gateway's access tokens (3600 s), within our own long-lived token


async def tool_call(server, token: str) -> tuple[int, dict]:
    headers, body = modern_call(1, "echo_headers", {})
    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            server.make_url("/remote/mcp"), json=body, headers={**headers, "Authorization": f"Bearer {token}"}
        )
        return answer.status, await answer.json(content_type=None)


def upstream_user(reply: dict) -> str:
    return json.loads(reply["result"]["content"][0]["text"])["x-forwarded-user"]


def counted(server, outcome: str) -> float:
    child = server.app[METRICS_KEY].held_credentials.children.get(("remote", outcome))
    return child.value if child is not None else 0.0


async def test_an_expired_upstream_token_is_refreshed_with_its_refresh_token(
    start_gateway, upstream_gateway, store, clock
):
    front, *_ = await signed_in_at_both(start_gateway, upstream_gateway, store, clock)
    token = await issue(store, front, "remote", ttl=10 * 86400, now=clock.now)
    before = await store.load_credential("local:alice", "route:remote")
    clock.now += LATER
    status, reply = await tool_call(front, token)
    assert status == 200 and upstream_user(reply) == "local:bob"
    assert counted(front, "refreshed") == 1
    after = await store.load_credential("local:alice", "route:remote")
    assert after != before  # the new access (and rotated refresh) token, sealed again
    status, reply = await tool_call(front, token)
    assert status == 200 and counted(front, "refreshed") == 1  # (fresh now: used as it is)


async def test_two_gateway_instances_refresh_one_credential_once(
    start_gateway, upstream_gateway, store, clock, redis_url, key_prefix, upstream
):
    front, *_ = await signed_in_at_both(start_gateway, upstream_gateway, store, clock)
    port = free_port()  # a second instance of the same deployment: same store, same public_url
    settings = make_settings(
        port, redis_url, key_prefix, [remote_route(upstream_gateway)], public_url=f"http://127.0.0.1:{front.port}"
    )
    second = GatewayServer(create_app(settings, clock=clock), port=port)
    await second.start_server()
    try:
        token = await issue(store, front, "remote", ttl=10 * 86400, now=clock.now)
        clock.now += LATER
        replies = await asyncio.gather(*[tool_call(server, token) for server in (front, second) * 4])
        assert all(status == 200 and upstream_user(reply) == "local:bob" for status, reply in replies), replies
        assert counted(front, "refreshed") + counted(second, "refreshed") == 1
    finally:
        await second.close()


async def test_a_credential_revoked_at_the_upstream_is_dropped_and_the_user_asked_to_connect(
    start_gateway, upstream_gateway, upstream_store, store, clock
):
    front, *_ = await signed_in_at_both(start_gateway, upstream_gateway, store, clock)
    token = await issue(store, front, "remote", ttl=10 * 86400, now=clock.now)
    for _, record in await upstream_store.list_access_tokens("local:bob"):  # bob's grant ends at the upstream
        assert record.grant_id is not None
        await upstream_store.revoke_grant(record.grant_id)
    for token_hash, _ in await upstream_store.list_access_tokens("local:bob"):
        await upstream_store.revoke_access_token(token_hash)
    status, reply = await tool_call(front, token)
    # 401 upstream -> refreshed once -> invalid_grant -> dropped -> connect (this raw client declared nothing)
    assert status == 400 and reply["error"]["code"] == -32021
    assert reply["error"]["data"]["url"].endswith("/upstream/connect/remote")
    assert await store.credentials_of("local:alice") == {}
    assert counted(front, "revoked") == 1


async def test_the_sealed_value_is_not_the_token_and_opens_only_for_its_user_and_slot(
    start_gateway, upstream_gateway, store, clock
):
    front, *_ = await signed_in_at_both(start_gateway, upstream_gateway, store, clock)
    sealed = await store.load_credential("local:alice", "route:remote")
    vault = Vault(front.app[SETTINGS_KEY].vault, store)
    held = await vault.load("local:alice", "route:remote")
    assert held is not None and held[0].access_token not in sealed and held[0].refresh_token not in sealed
    await store.save_credential("local:mallory", "route:remote", sealed)  # copied onto another user
    assert await vault.load("local:mallory", "route:remote") is None
    await store.save_credential("local:alice", "route:other", sealed)  # or another route
    assert await vault.load("local:alice", "route:other") is None
