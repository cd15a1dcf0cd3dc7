"""`upstream_auth: oauth` end to end: the SDK client signs in at the gateway, is sent on to the upstream's own
authorization server (a second gateway) as part of the same flow, and its tool call reaches the upstream as the
upstream's user; disconnect, in-band connect, retry."""

from __future__ import annotations

import json

import aiohttp
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from gateway.accounts import add_user
from tests.support.headless_oauth import Browser, MemoryStorage, oauth_provider
from tests.support.mcp_wire import modern_call
from tests.support.oauth_client import REDIRECT, authorize_url, new_verifier
from tests.support.tokens import issue
from tests.upstream.conftest import UPSTREAM_USER, origin, remote_route
from tests.upstream.flows import call_echo, connecting, disconnect, innermost, signed_in_at_both


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


async def test_after_a_disconnect_the_next_call_asks_to_connect_in_band_and_the_retry_succeeds(
    start_gateway, upstream_gateway, store, clock
):
    """2026-07-28: an input-required result asking for a URL elicitation of the connect page; the SDK opens it
    (here: the headless browser walks it) and retries with the gateway's requestState, which succeeds."""
    front, url, browser, storage = await signed_in_at_both(start_gateway, upstream_gateway, store, clock)
    asked: list[str] = []
    async with (
        httpx2.AsyncClient(auth=oauth_provider(url, browser, storage), timeout=60) as http,
        Client(
            streamable_http_client(url, http_client=http), elicitation_callback=connecting(browser, asked)
        ) as client,
    ):
        assert not (await client.call_tool("echo_headers", {})).is_error
        page = await disconnect(browser, front)
        assert "No connections." in page and await store.credentials_of("local:alice") == {}
        result = await client.call_tool("echo_headers", {})
    assert asked == [f"http://127.0.0.1:{front.port}/upstream/connect/remote"]
    assert json.loads(result.content[0].text)["x-forwarded-user"] == "local:bob"
    assert list(await store.credentials_of("local:alice")) == ["route:remote"]


async def test_a_client_without_url_elicitation_gets_an_error_naming_the_connect_page(
    start_gateway, upstream_gateway, store, clock
):
    front, url, browser, storage = await signed_in_at_both(start_gateway, upstream_gateway, store, clock)
    await disconnect(browser, front)
    connect = f"http://127.0.0.1:{front.port}/upstream/connect/remote"
    for mode in ("auto", "legacy"):  # 2026-07-28, 2025-11-25 (already at discovery / initialize)
        with pytest.raises(BaseException) as refused:
            await call_echo(url, oauth_provider(url, browser, storage), mode=mode)
        assert connect in innermost(refused.value).error.message, mode


async def test_a_2025_11_25_client_that_declared_url_elicitation_gets_the_url_elicitation_error(
    start_gateway, upstream_gateway, store, clock
):
    front, url, browser, storage = await signed_in_at_both(start_gateway, upstream_gateway, store, clock)
    async with (
        httpx2.AsyncClient(auth=oauth_provider(url, browser, storage), timeout=60) as http,
        Client(
            streamable_http_client(url, http_client=http), mode="legacy", elicitation_callback=connecting(browser, [])
        ) as client,
    ):
        assert not (await client.call_tool("echo_headers", {})).is_error
        await disconnect(browser, front)
        with pytest.raises(MCPError) as refused:  # in the session whose initialize declared URL elicitation
            await client.call_tool("echo_headers", {})
    assert refused.value.error.code == -32042
    with pytest.raises(BaseException) as refused:  # and at the next initialize
        await call_echo(
            url, oauth_provider(url, browser, storage), mode="legacy", elicitation_callback=connecting(browser, [])
        )
    error = innermost(refused.value).error
    assert error.code == -32042
    (elicitation,) = error.data["elicitations"]
    assert elicitation["mode"] == "url" and elicitation["url"].endswith("/upstream/connect/remote")
    assert elicitation["elicitationId"]
    result = await browser.authorize(elicitation["url"])  # the person opens it; the retry then succeeds
    assert result == {"status": "200"}
    seen = await call_echo(url, oauth_provider(url, browser, storage), mode="legacy")
    assert seen["x-forwarded-user"] == "local:bob"


async def test_connect_on_request_only_answers_a_raw_call_with_input_required_then_the_retry_succeeds(
    start_gateway, upstream_gateway, store, clock
):
    """`connect_on_authorize: false`: signing in gives the client its code at once; the first tool call is answered
    in-band; the retry with the gateway's requestState succeeds once the person connected, a forged one does not
    count as such a retry."""
    front = await start_gateway([remote_route(upstream_gateway, connect_on_authorize=False)])
    token = await issue(store, front, "remote", now=clock.now)
    assert await store.credentials_of("local:alice") == {}
    headers, body = modern_call(7, "echo_headers", {})
    body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = {"elicitation": {"url": {}}}
    status, reply = await raw_post(front, token, headers, body)
    assert status == 200 and reply["id"] == 7
    result = reply["result"]
    assert result["resultType"] == "input_required"
    (request,) = result["inputRequests"].values()
    assert request["method"] == "elicitation/create" and request["params"]["mode"] == "url"
    url = request["params"]["url"]
    assert url == f"http://127.0.0.1:{front.port}/upstream/connect/remote"

    for state in (result["requestState"][:-4] + "AAAA", "mcpgw-connect1.\u00b2\u00b2.x", "mcpgw-connect1."):
        forged = {**body, "params": {**body["params"], "requestState": state}}
        status, again = await raw_post(front, token, headers, forged)
        assert status == 200 and again["result"]["resultType"] == "input_required"  # not a retry: asked again

    browser = Browser("alice", "correct-horse-battery", logins={origin(upstream_gateway): UPSTREAM_USER})
    await sign_in(browser, front)  # (the connect page keeps the credential for whoever is signed in there)
    assert await browser.authorize(url) == {"status": "200"} and "Connected" in browser.pages[-1]
    retry = {
        **body,
        "id": 8,
        "params": {
            **body["params"],
            "requestState": result["requestState"],
            "inputResponses": {next(iter(result["inputRequests"])): {"action": "accept"}},
        },
    }
    status, done = await raw_post(front, token, headers, retry)
    assert status == 200 and done["id"] == 8, done
    assert json.loads(done["result"]["content"][0]["text"])["x-forwarded-user"] == "local:bob"


async def raw_post(server, token: str, headers: dict, body: dict) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            server.make_url("/remote/mcp"), json=body, headers={**headers, "Authorization": f"Bearer {token}"}
        )
        return answer.status, await answer.json(content_type=None)


async def sign_in(browser: Browser, server) -> None:
    """The person signs in at the gateway in this browser (an authorization for a raw client)."""
    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            server.make_url("/register"), json={"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}
        )
        client_id = (await answer.json())["client_id"]
    result = await browser.authorize(authorize_url(server, client_id, verifier=new_verifier(), route="remote"))
    assert "code" in result, result
