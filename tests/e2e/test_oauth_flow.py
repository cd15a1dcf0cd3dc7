"""The whole MCP authorization flow with the real `mcp` SDK client (OAuthClientProvider) against the gateway:
401 -> PRM -> AS metadata -> DCR -> /authorize (login + consent) -> /token -> MCP through to the upstream."""

from __future__ import annotations

import json

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.accounts import add_user
from tests.support.headless_oauth import Browser, MemoryStorage, oauth_provider


async def call_echo(url: str, provider, mode: str = "auto") -> dict[str, str]:
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        tools = await client.list_tools()
        assert "echo_headers" in {t.name for t in tools.tools}
        result = await client.call_tool("echo_headers", {})
    return json.loads(result.content[0].text)


async def test_sdk_client_registers_logs_in_and_reaches_the_upstream(gateway, store, clock):
    """MCP authorization end to end with DCR; the upstream sees the user who logged in, not the token."""
    await add_user(store, "alice", "correct-horse-battery", email="alice@example.com", groups=("eng",), now=clock.now)
    url = str(gateway.make_url("/alpha/mcp"))
    browser, storage = Browser("alice", "correct-horse-battery"), MemoryStorage()
    seen = await call_echo(url, oauth_provider(url, browser, storage))
    assert seen["x-forwarded-user"] == "local:alice"
    assert seen["x-mcp-client-id"] == storage.client_info.client_id
    assert seen["x-mcp-scopes"] == "alpha:read"
    assert "authorization" not in seen
    assert storage.tokens is not None and storage.tokens.refresh_token
    assert browser.result["iss"] == f"http://127.0.0.1:{gateway.port}"
    assert len(browser.pages) == 2  # login, then consent


async def test_second_connection_reuses_the_login_session(gateway, store, clock):
    """A live gateway session skips the login page; the SDK asks prompt=consent (it requests offline_access),
    so consent is shown again (remembered consent without prompt: tests/web/test_authorize.py)."""
    await add_user(store, "alice", "correct-horse-battery", now=clock.now)
    url = str(gateway.make_url("/alpha/mcp"))
    browser, storage = Browser("alice", "correct-horse-battery"), MemoryStorage()
    await call_echo(url, oauth_provider(url, browser, storage))
    storage.tokens = None  # force a new authorization with the same client registration
    await call_echo(url, oauth_provider(url, browser, storage), mode="legacy")
    assert len(browser.pages) == 3
    assert 'name="decision"' in browser.pages[2] and 'name="password"' not in browser.pages[2]


async def test_sdk_client_refreshes_an_expired_token_and_reauthorizes_after_revocation(gateway, store, clock):
    """TOK-3 / REV-1 with the real client: an access token past its expiry is refreshed by the SDK (the
    gateway rotates the refresh token); after the user's grant is revoked, the next connection signs in again."""
    await add_user(store, "alice", "correct-horse-battery", now=clock.now)
    url = str(gateway.make_url("/alpha/mcp"))
    browser, storage = Browser("alice", "correct-horse-battery"), MemoryStorage()
    provider = oauth_provider(url, browser, storage)
    await call_echo(url, provider)
    first = storage.tokens
    assert first is not None and first.refresh_token

    clock.now += 3601  # the gateway now sees the access token as expired …
    provider.context.token_expiry_time = 1.0  # … and so does the client (its own wall clock): it refreshes
    await call_echo(url, provider)
    second = storage.tokens
    assert second is not None and second.access_token != first.access_token
    assert second.refresh_token and second.refresh_token != first.refresh_token  # rotated
    assert len(browser.pages) == 2  # no new sign-in: the refresh did it

    async with httpx2.AsyncClient() as http:
        revoked = await http.post(
            str(gateway.make_url("/revoke")),
            data={"token": second.refresh_token, "client_id": storage.client_info.client_id},
        )
    assert revoked.status_code == 200
    seen = await call_echo(url, oauth_provider(url, browser, storage))  # 401 -> refresh fails -> sign in again
    assert seen["x-forwarded-user"] == "local:alice"
    assert storage.tokens.access_token not in (first.access_token, second.access_token)
    assert len(browser.pages) > 2
