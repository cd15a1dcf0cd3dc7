"""The flows the upstream-credential tests share: a signed-in and connected client, the connections page."""

from __future__ import annotations

import json

import aiohttp
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from gateway.accounts import add_user
from tests.support.headless_oauth import Browser, MemoryStorage, oauth_provider, parse_forms
from tests.upstream.conftest import UPSTREAM_USER, origin, remote_route


async def call_echo(url: str, provider, **client_options) -> dict[str, str]:
    async with (
        httpx2.AsyncClient(auth=provider, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), **client_options) as client,
    ):
        result = await client.call_tool("echo_headers", {})
    return json.loads(result.content[0].text)


def innermost(error: BaseException) -> MCPError:
    """The MCPError inside the task groups a failed `Client` start wraps it in."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    assert isinstance(error, MCPError), error
    return error


async def signed_in_at_both(start_gateway, upstream_gateway, store, clock, **auth):
    """The gateway under test in front of the upstream gateway, and a client that signed in (and connected)."""
    front = await start_gateway([remote_route(upstream_gateway, **auth)])
    await add_user(store, "alice", "correct-horse-battery", now=clock.now)
    url = str(front.make_url("/remote/mcp"))
    browser = Browser("alice", "correct-horse-battery", logins={origin(upstream_gateway): UPSTREAM_USER})
    storage = MemoryStorage()
    seen = await call_echo(url, oauth_provider(url, browser, storage))
    assert seen["x-forwarded-user"] == "local:bob"
    return front, url, browser, storage


async def disconnect(browser: Browser, front, slot: str = "route:remote") -> str:
    """The user's connections page, and its Disconnect button for `slot`; the page after."""
    async with aiohttp.ClientSession(cookie_jar=browser.jar) as http:
        page = await http.get(front.make_url("/upstream/connections"))
        assert page.status == 200
        form = next(f for f in parse_forms(await page.text()) if f["fields"].get("slot") == slot)
        after = await http.post(front.make_url(form["action"]), data=form["fields"])
        assert after.status == 200
        return await after.text()


def connecting(browser: Browser, seen: list[str]):
    """An elicitation callback that walks the connect page in the browser, as a person would."""

    async def on_elicit(context, params):
        assert params.mode == "url"
        seen.append(params.url)
        result = await browser.authorize(params.url)
        assert result == {"status": "200"}, result
        assert "Connected" in browser.pages[-1]
        return types.ElicitResult(action="accept")

    return on_elicit
