"""`upstream_auth: oauth` end to end: the SDK client signs in at the gateway, is sent on to the upstream's own
authorization server (a second gateway) as part of the same flow, and its tool call reaches the upstream as the
upstream's user; disconnect, in-band connect, retry; refresh across expiry; revocation at the upstream."""

from __future__ import annotations

import json

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.accounts import add_user
from tests.support.headless_oauth import Browser, MemoryStorage, oauth_provider
from tests.upstream.conftest import UPSTREAM_USER, origin, remote_route


async def call_echo(url: str, provider, **client_options) -> dict[str, str]:
    async with (
        httpx2.AsyncClient(auth=provider, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), **client_options) as client,
    ):
        result = await client.call_tool("echo_headers", {})
    return json.loads(result.content[0].text)


async def test_sign_in_connects_the_upstream_in_the_same_flow_and_the_upstream_sees_its_own_user(
    start_gateway, upstream_gateway, store, clock
):
    front = await start_gateway([remote_route(upstream_gateway)])
    await add_user(store, "alice", "correct-horse-battery", now=clock.now)
    url = str(front.make_url("/remote/mcp"))
    browser = Browser("alice", "correct-horse-battery", logins={origin(upstream_gateway): UPSTREAM_USER})
    seen = await call_echo(url, oauth_provider(url, browser, MemoryStorage()))
    assert seen["x-forwarded-user"] == "local:bob"  # the upstream gateway's user, not ours
    assert seen["x-forwarded-email"] == "bob@upstream.example"
    assert "authorization" not in seen  # (the upstream gateway never forwards a token)
    held = await store.credentials_of("local:alice")
    assert list(held) == ["route:remote"]
    assert "access_token" not in held["route:remote"]  # sealed, not the token
