"""Regressions from the security review: each test pins one defect that was found and fixed."""

from __future__ import annotations

import gzip
import json
from urllib.parse import quote

import pytest

from gateway.accounts import add_user
from gateway.clients.cimd import special_use
from gateway.oauth.redirects import redirect_matches
from tests.conftest import route
from tests.mcp.test_tool_policy import POLICY
from tests.support.headless_oauth import Browser, parse_forms
from tests.support.mcp_wire import modern_call, tool_result_text
from tests.support.oauth_client import authorize_url, new_verifier, register, relative
from tests.support.token_flow import PASSWORD
from tests.support.tokens import issue


@pytest.mark.parametrize(
    "requested",
    [
        "http://evil.example\\@127.0.0.1:33418/callback",  # browsers: host evil.example; urlsplit: 127.0.0.1
        "http://evil.example%5C@127.0.0.1:33418/callback",
        "http://user@127.0.0.1:33418/callback",
        "http://127.0.0.1:33418/callback\t",
    ],
)
def test_loopback_port_rule_needs_an_exact_loopback_authority(requested):
    assert not redirect_matches(("http://127.0.0.1:33418/callback",), requested)


async def test_backslash_redirect_gets_an_error_page_even_with_remembered_consent(
    gateway, aiohttp_client, store, clock
):
    await add_user(store, "alice", PASSWORD, now=clock.now)
    client = await aiohttp_client(gateway)
    registered = await register(client)
    browser = Browser("alice", PASSWORD)
    assert "code" in await browser.authorize(authorize_url(gateway, registered["client_id"], verifier=new_verifier()))
    attack = authorize_url(
        gateway,
        registered["client_id"],
        verifier=new_verifier(),
        redirect_uri="http://evil.example\\@127.0.0.1:33418/callback",
    )
    result = await browser.authorize(attack)
    assert result == {"status": "400"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow_progress","arguments":{"x":"\xff"}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow_progress","arguments":'
        + b"[" * 5000
        + b"]" * 5000
        + b"}}",
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":'
        + b"[" * 200
        + b"]" * 200
        + b"}}",
        b"[" * 100_000,
    ],
)
async def test_bodies_the_gateway_cannot_read_are_refused_when_policy_applies(
    start_gateway, upstream, store, aiohttp_client, body
):
    """Fail closed: another JSON parser upstream might read what Python's refuses (invalid UTF-8, deep nesting)."""
    server = await start_gateway([route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"], policy=POLICY)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read", "alpha:write"), groups=("ops",))
    response = await client.post(
        "/alpha/mcp",
        data=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2026-07-28",
        },
    )
    assert response.status == 400 and (await response.json())["error"]["code"] == -32700


async def test_header_spellings_and_forwarding_claims_cannot_be_spoofed(gateway, store):
    from tests.proxy.test_forwarding import echo_headers_via_sdk

    token = await issue(store, gateway, "alpha")
    seen = await echo_headers_via_sdk(
        str(gateway.make_url("/alpha/mcp")),
        token,
        {
            "X_Forwarded_User": "local:mallory",
            "X-Forwarded-Prefix": "/admin",
            "Remote-User": "root",
            "X-Auth-Request-Email": "ceo@example.com",
            "True-Client-IP": "10.0.0.1",
        },
        "auto",
    )
    assert not any(k.replace("_", "-") == "x-forwarded-user" and v != "local:alice" for k, v in seen.items())
    for name in ("x-forwarded-prefix", "remote-user", "x-auth-request-email", "true-client-ip"):
        assert name not in seen


async def test_forwarded_host_is_the_configured_host_not_the_clients(gateway, store, aiohttp_client):
    token = await issue(store, gateway, "alpha")
    client = await aiohttp_client(gateway)
    headers, body = modern_call(1, "echo_headers", {})
    response = await client.post(
        "/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}", "Host": "evil.example"}
    )
    assert response.status == 200
    echoed = json.loads(await tool_result_text(response))
    assert echoed["x-forwarded-host"] == f"127.0.0.1:{gateway.port}"


async def test_consent_with_several_routes_lists_each_routes_scopes(
    start_gateway, upstream, store, aiohttp_client, clock
):
    await add_user(store, "alice", PASSWORD, now=clock.now)
    server = await start_gateway(
        [route("alpha", upstream.url), route("beta", upstream.url, scopes=["beta:read", "beta:admin"])]
    )
    client = await aiohttp_client(server)
    registered = await register(client)
    browser = Browser("alice", PASSWORD, decision="deny")
    await browser.authorize(authorize_url(server, registered["client_id"], verifier=new_verifier(), route=None))
    assert "beta:read, beta:admin" in browser.pages[-1] and "basic access" not in browser.pages[-1]


async def test_removed_names_cannot_be_signed_up_again(start_gateway, upstream, store, aiohttp_client, clock):
    await add_user(store, "alice", PASSWORD, now=clock.now)
    await store.delete_user("alice")
    server = await start_gateway(
        [route("alpha", upstream.url)],
        allow={"providers": ["local"]},
        login={"signup": {"enabled": True, "email_domains": ["example.com"]}},
    )
    client = await aiohttp_client(server)
    registered = await register(client)
    page = await client.get(relative(authorize_url(server, registered["client_id"], verifier=new_verifier())))
    form = next(f for f in parse_forms(await page.text()) if f["action"] == "/authorize/signup")
    taken = await client.post(
        "/authorize/signup",
        data={**form["fields"], "username": "alice", "email": "x@example.com", "password": "long-enough-1"},
    )
    assert taken.status == 400 and "not available" in await taken.text()


@pytest.mark.parametrize("path", ["/authorize/login", "/authorize/consent", "/authorize/provider", "/logout"])
async def test_non_ascii_csrf_token_is_refused_not_a_500(gateway, aiohttp_client, path):
    client = await aiohttp_client(gateway)
    registered = await register(client)
    await client.get(relative(authorize_url(gateway, registered["client_id"], verifier=new_verifier())))
    response = await client.post(path, data={"csrf_token": "é", "request_id": "x"})
    assert response.status == 403


async def test_malformed_inputs_are_client_errors_never_500(gateway, aiohttp_client):
    client = await aiohttp_client(gateway)
    bad_utf8 = await client.post(
        "/token", data=b"grant_type=\xff", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert bad_utf8.status == 400 and (await bad_utf8.json())["error"] == "invalid_request"
    bad_charset = await client.post(
        "/token", data=b"grant_type=x", headers={"Content-Type": "application/x-www-form-urlencoded; charset=nope"}
    )
    assert bad_charset.status == 400
    no_boundary = await client.post("/revoke", data=b"x", headers={"Content-Type": "multipart/form-data"})
    assert no_boundary.status == 400
    nested = await client.post("/register", data=b"[" * 30000, headers={"Content-Type": "application/json"})  # < cap
    assert nested.status == 400
    registered = await register(client)
    bad_resource = await client.get(
        relative(authorize_url(gateway, registered["client_id"], verifier="v" * 43, resource="http://[")),
        allow_redirects=False,
    )
    assert bad_resource.status == 400 and "invalid_target" in await bad_resource.text()  # DCR: a page (issue 10 #11)
    bad_client = await client.get("/authorize?client_id=" + quote("https://[x/p") + "&response_type=code")
    assert bad_client.status == 400
    introspect = await client.post(
        "/introspect", data={"token": "t"}, headers={"Authorization": "Basic " + "dXA6w6k="}
    )  # up:é
    assert introspect.status == 404  # no oauth.introspection credentials: the endpoint is closed


async def test_gzip_request_bodies_reach_the_upstream_decoded(gateway, store, aiohttp_client):
    token = await issue(store, gateway, "alpha")
    client = await aiohttp_client(gateway)
    headers, body = modern_call(1, "add", {"a": 20, "b": 22})
    response = await client.post(
        "/alpha/mcp",
        data=gzip.compress(json.dumps(body).encode()),
        headers={
            **headers,
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    assert response.status == 200 and '"42"' in await response.text()


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "2002:a9fe:a9fe::", "::ffff:10.0.0.1"])
def test_ipv4_embedded_in_ipv6_is_judged_by_its_ipv4(address):
    assert special_use(address)
