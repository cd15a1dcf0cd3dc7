"""Upstream credentials, `static` (issue 12 item 1): one header the gateway sends every request of the route, from
the configuration or a file; never from the client, never logged, refused when it would clash with a header the
gateway sets or guards."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from gateway.app_state import METRICS_KEY
from gateway.config import ConfigError, Settings
from tests.conftest import route
from tests.proxy.test_forwarding import echo_headers_via_sdk
from tests.support.mcp_wire import modern_call, tool_result_text
from tests.support.tokens import issue

SECRET = "Bearer upstream-key-0123456789"


def settings_with(auth: dict, **extra) -> Settings:
    return Settings(
        public_url="http://127.0.0.1:8080",
        routes=[route("alpha", "http://127.0.0.1:9000/mcp", upstream_auth=auth, **extra)],
    )


def problems(auth: dict, **extra) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        settings_with(auth, **extra)
    return caught.value.problems


def test_a_value_or_a_file_gives_the_header_line(tmp_path):
    given = settings_with({"type": "static", "value": SECRET}).routes[0].upstream_auth
    assert given.header_line() == ("Authorization", SECRET)
    secret_file = tmp_path / "key"
    secret_file.write_text("k-from-a-file\n")
    named = settings_with({"type": "static", "header": "X-Api-Key", "value_file": str(secret_file)})
    assert named.routes[0].upstream_auth.header_line() == ("X-Api-Key", "k-from-a-file")
    assert SECRET not in repr(given) and SECRET not in str(given.model_dump())


@pytest.mark.parametrize(
    ("auth", "says"),
    [
        ({"type": "static"}, "exactly one of value and value_file"),
        ({"type": "static", "value": "a", "value_file": "/x"}, "exactly one of value and value_file"),
        ({"type": "static", "value": "Bearer a\r\nX-Admin: 1"}, "no line breaks"),
        ({"type": "static", "value": " padded"}, "not at its ends"),
        ({"type": "static", "value": "k\u00e9y"}, "visible ASCII"),
        ({"type": "static", "value": ""}, "1 to 8192 characters"),
        ({"type": "static", "value_file": "/nonexistent/key"}, "cannot be read (FileNotFoundError)"),
        ({"type": "static", "value": "k", "header": "Host"}, "set or guarded by the gateway"),
        ({"type": "static", "value": "k", "header": "X-Forwarded-User"}, "set or guarded by the gateway"),
        ({"type": "static", "value": "k", "header": "x_forwarded_for"}, "set or guarded by the gateway"),
        ({"type": "static", "value": "k", "header": "Mcp-Method"}, "set or guarded by the gateway"),
        ({"type": "static", "value": "k", "header": "Mcp-Param-Region"}, "set or guarded by the gateway"),
        ({"type": "static", "value": "k", "header": "Transfer-Encoding"}, "set or guarded by the gateway"),
        ({"type": "static", "value": "k", "header": "Cookie"}, "set or guarded by the gateway"),
        ({"type": "static", "value": "k", "header": "Bad Header"}, "not a valid name"),
        ({"type": "oauth", "token_endpoint": "https://as.example/token"}, "give both authorization_endpoint"),
        (
            {"type": "oauth", "authorization_endpoint": "https://as/a", "token_endpoint": "https://as/t"},
            "needs client_id",
        ),
        (
            {
                "type": "oauth",
                "client_id": "c",
                "authorization_endpoint": "javascript:x",
                "token_endpoint": "https://t",
            },
            "absolute",
        ),
        ({"type": "oauth", "format": "Bearer"}, "format: must hold {token} once"),
        ({"type": "oauth", "format": "{token} {x}"}, "format: must hold {token} once"),
        ({"type": "oauth", "scopes": "read"}, "scopes"),
        ({"type": "oauth", "header": "Cookie"}, "set or guarded by the gateway"),
        ({"type": "token_exchange"}, "token_endpoint: Field required"),
        (
            {"type": "token_exchange", "client_id": "gw", "token_endpoint": "http://sts.example/token"},
            "https is required (http only on loopback)",
        ),
        ({"type": "token_exchange", "client_id": "gw", "token_endpoint": "sts/token"}, "an absolute http(s) URL"),
        ({"type": "kerberos"}, "does not match any of the expected tags"),
        ({"type": "provider_token"}, "provider: Field required"),
        ({"type": "provider_token", "provider": "corp"}, "'corp' is no login.providers[] entry"),
    ],
)
def test_unusable_credentials_are_refused_without_quoting_the_value(auth, says):
    found = problems(auth)
    assert any(says in p and p.startswith("routes[0].upstream_auth") for p in found), found
    assert not any("upstream-key" in p or "X-Admin" in p for p in found)


def test_the_header_may_not_be_one_the_route_forwards_or_an_identity_header():
    assert any(
        "also in forward_headers or forward_response_headers" in p
        for p in problems({"type": "static", "value": "k", "header": "X-Api-Key"}, forward_headers=["x-api-key"])
    )
    clash = problems({"type": "static", "value": "k", "header": "X-Tenant"}, identity_headers={"X-Tenant": "user"})
    assert any("set or guarded by the gateway" in p for p in clash)


def test_a_file_that_is_not_ascii_text_is_refused_without_its_content(tmp_path):
    secret_file = tmp_path / "key"
    secret_file.write_bytes(b"\xffsecret-bytes")
    found = problems({"type": "static", "value_file": str(secret_file)})
    assert any("holds more than ASCII text" in p for p in found) and not any("secret-bytes" in p for p in found)


async def test_the_upstream_gets_the_gateways_credential_never_the_clients_and_it_is_never_logged(
    start_gateway, upstream, store, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    log = tmp_path / "audit.jsonl"
    auth = {"type": "static", "header": "X-Api-Key", "value": "k-" + SECRET[7:]}
    server = await start_gateway(
        [
            route("alpha", upstream.url, upstream_auth=auth),
            route("beta", upstream.url, upstream_auth={"type": "static", "value": SECRET}),
        ],
        audit={"path": str(log)},
    )
    token = await issue(store, server, "alpha")
    spoofed = {"X-Api-Key": "client-chosen", "x_api_key": "client-chosen"}
    seen = await echo_headers_via_sdk(str(server.make_url("/alpha/mcp")), token, spoofed, "auto")
    assert seen["x-api-key"] == auth["value"]  # one line, the gateway's
    assert "x_api_key" not in seen and "client-chosen" not in json.dumps(seen)
    assert "authorization" not in seen and token not in json.dumps(seen)
    beta = await issue(store, server, "beta")
    seen = await echo_headers_via_sdk(str(server.make_url("/beta/mcp")), beta, {}, "legacy")
    assert seen["authorization"] == SECRET and beta not in json.dumps(seen)
    assert seen["x-forwarded-user"] == "local:alice"  # identity still travels beside the credential
    ours = [r.getMessage() for r in caplog.records if r.name.startswith(("gateway", "aiohttp.web", "aiohttp.server"))]
    written = log.read_text() + "\n".join(ours)  # (the test's own client logs the echoed headers it received)
    assert "upstream-key" not in written and "client-chosen" not in written


async def test_through_a_second_gateway_with_its_service_token_and_a_502_when_it_refuses_the_credential(
    start_gateway, upstream, store, aiohttp_client, caplog
):
    """A second gateway stands in for an OAuth-protected MCP server: with one of its service tokens as the route's
    static credential the tool call goes through both; with a credential it never issued it answers 401, which the
    first gateway turns into a 502 (relayed, the 401 would send the client back to sign in with the first gateway,
    in a loop) and a warning for the operator."""
    inner = await start_gateway([route("inner", upstream.url)])
    inner_url = str(inner.make_url("/inner/mcp"))
    service = await issue(store, inner, "inner", user="svc-upstream")
    outer = await start_gateway(
        [
            route("alpha", inner_url, upstream_auth={"type": "static", "value": f"Bearer {service}"}),
            route("wrong", inner_url, upstream_auth={"type": "static", "value": SECRET}),
        ]
    )
    client = await aiohttp_client(outer)
    headers, call = modern_call(3, "echo_headers", {})
    token = await issue(store, outer, "alpha")
    answer = await client.post("/alpha/mcp", json=call, headers={**headers, "Authorization": f"Bearer {token}"})
    assert answer.status == 200
    seen = json.loads(await tool_result_text(answer))
    assert seen["x-forwarded-user"] == "local:svc-upstream"  # the inner gateway's view: the service principal
    assert token not in json.dumps(seen) and service not in json.dumps(seen)  # (the inner strips its own token)

    wrong = await issue(store, outer, "wrong")
    headers, call = modern_call(4, "add", {"a": 1, "b": 2})
    answer = await client.post("/wrong/mcp", json=call, headers={**headers, "Authorization": f"Bearer {wrong}"})
    assert answer.status == 502 and "WWW-Authenticate" not in answer.headers
    body = await answer.json()
    assert body["id"] == 4 and "refused the gateway's credential" in body["error"]["message"]
    assert "route wrong refused the gateway's credential" in caplog.text
    assert "upstream-key" not in caplog.text and service not in caplog.text


def test_check_config_prints_the_credential_masked_and_never_quotes_a_bad_one(tmp_path):
    """From the environment through `${VAR}`: `check-config --print` shows it masked; a refused value is named by
    its key, never quoted."""
    import os
    import subprocess
    import sys

    import yaml

    from tests.test_config import REPO

    def check(value: str) -> subprocess.CompletedProcess[str]:
        data = {
            "public_url": "https://gw.example.com",
            "routes": [route("alpha", "http://127.0.0.1:9001/mcp", upstream_auth={"type": "static", "value": value})],
        }
        path = tmp_path / "gw.yaml"
        path.write_text(yaml.safe_dump(data))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_GATEWAY_")}
        env["UPSTREAM_KEY"] = "upstream-key-from-env"
        command = [sys.executable, "-m", "gateway", "check-config", "-c", str(path), "--print"]
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=30)

    printed = check("Bearer ${UPSTREAM_KEY}")
    assert printed.returncode == 0, printed.stderr
    auth = json.loads(printed.stdout)["routes"][0]["upstream_auth"]
    assert auth == {"type": "static", "header": "Authorization", "value": "**********", "value_file": None}
    assert "upstream-key" not in printed.stdout + printed.stderr
    refused = check("Bearer ${UPSTREAM_KEY}\u00e9")
    assert refused.returncode == 1 and "routes[0].upstream_auth" in refused.stderr
    assert "upstream-key" not in refused.stdout + refused.stderr and "Traceback" not in refused.stderr


def exchange_auth(sts_url: str, **extra) -> dict:
    from tests.support.token_service import CLIENT, SECRET

    return {
        "type": "token_exchange",
        "token_endpoint": sts_url,
        "client_id": CLIENT,
        "client_secret": SECRET,
        "audience": "https://api.example",
        **extra,
    }


async def test_token_exchange_gives_each_user_their_own_credential_once_until_it_expires(
    start_gateway, upstream, store, aiohttp_client, clock, tmp_path, caplog
):
    """RFC 8693 at a stand-in token service that trusts the gateway's signed assertions: the upstream sees the
    user's exchanged token (never the client's); concurrent requests of one user share one exchange; another user
    gets their own; an expired one is exchanged again; a refused user gets 403, an unreachable service 502."""
    from tests.support.token_service import token_service

    log = tmp_path / "audit.jsonl"
    async with token_service() as sts:
        server = await start_gateway(
            [route("alpha", upstream.url, upstream_auth=exchange_auth(sts.url, scopes=["api:read"]))],
            audit={"path": str(log)},
        )
        sts.gateway_origin, sts.delay = str(server.make_url("")).rstrip("/"), 0.2
        client = await aiohttp_client(server)

        async def call(token: str, tool: str = "echo_headers", request_id: int = 1):
            headers, body = modern_call(request_id, tool, {} if tool == "echo_headers" else {"a": 1, "b": 2})
            return await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})

        alice = await issue(store, server, "alpha", user="alice", ttl=7200)
        answers = await asyncio.gather(*(call(alice, request_id=i) for i in range(5)))
        assert [a.status for a in answers] == [200] * 5
        seen = [json.loads(await tool_result_text(a)) for a in answers]
        assert {s["authorization"] for s in seen} == {"Bearer sts.local:alice.1"}  # one exchange for five calls
        assert alice not in json.dumps(seen)
        assert sts.exchanges == [
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "audience": "https://api.example",
                "scope": "api:read",
                "sub": "local:alice",
            }
        ]

        bob = await issue(store, server, "alpha", user="bob", ttl=7200)
        seen = json.loads(await tool_result_text(await call(bob)))
        assert seen["authorization"] == "Bearer sts.local:bob.2" and seen["x-forwarded-user"] == "local:bob"

        clock.now += 3600  # alice's exchanged token is past its life (less the margin): exchanged anew
        seen = json.loads(await tool_result_text(await call(alice)))
        assert seen["authorization"] == "Bearer sts.local:alice.3" and len(sts.exchanges) == 3

        sts.refuse.add("local:mallory")
        mallory = await issue(store, server, "alpha", user="mallory")
        refused = await call(mallory, "add", 9)
        assert refused.status == 403
        body = await refused.json()
        assert body["id"] == 9 and "token service refused a credential for this user" in body["error"]["message"]
        added = await call(alice, "add", 10)  # (alice's cached token: the tool's answer carries none of it)
        assert added.status == 200 and "sts." not in await added.text()

    carol = await issue(store, server, "alpha", user="carol")  # the token service is gone now
    failed = await call(carol, "add", 11)
    assert failed.status == 502 and "could not be reached" in (await failed.json())["error"]["message"]
    ours = [r.getMessage() for r in caplog.records if r.name.startswith(("gateway", "aiohttp.web", "aiohttp.server"))]
    written = log.read_text() + "\n".join(ours)
    assert "sts.local" not in written and "sts-secret" not in written
    counted = server.app[METRICS_KEY].upstream_credentials
    outcomes = {o: counted.labels("alpha", o).value for o in ("exchanged", "cached", "refused", "failed")}
    assert outcomes == {"exchanged": 3, "cached": 1, "refused": 1, "failed": 1}  # (the four who waited: no row)


async def test_a_token_the_upstream_refuses_is_forgotten_and_the_next_request_exchanges_again(
    start_gateway, upstream, store, aiohttp_client
):
    """A second gateway stands in for the upstream: it knows none of the exchanged tokens, answers 401, and the
    first gateway answers 502 and drops the token (the next request exchanges again rather than reuse it)."""
    from tests.support.token_service import token_service

    inner = await start_gateway([route("inner", upstream.url)])
    async with token_service() as sts:
        server = await start_gateway(
            [route("alpha", str(inner.make_url("/inner/mcp")), upstream_auth=exchange_auth(sts.url))]
        )
        sts.gateway_origin = str(server.make_url("")).rstrip("/")
        client = await aiohttp_client(server)
        token = await issue(store, server, "alpha")
        headers, body = modern_call(1, "add", {"a": 1, "b": 2})
        for _ in range(2):
            answer = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
            assert answer.status == 502
        assert len(sts.exchanges) == 2


B = b'"token_type": "Bearer", '


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'["access_token"]', id="not-an-object"),
        pytest.param(b'{"token_type": "Bearer", "expires_in": 60}', id="no-token"),
        pytest.param(b"{" + B + b'"access_token": "a\\r\\nX-Admin: 1", "expires_in": 60}', id="line-break-in-token"),
        pytest.param(b"{" + B + b'"access_token": "two words", "expires_in": 60}', id="space-in-token"),
        pytest.param(b'{"access_token": "t", "token_type": "mac", "expires_in": 60}', id="not-bearer"),
        pytest.param(b'{"access_token": "t", "token_type": "N_A", "expires_in": 60}', id="not-an-access-token"),
        pytest.param(b'{"access_token": "t", "expires_in": 60}', id="no-token-type"),
        pytest.param(b'{"access_token": "t", "token_type": 7, "expires_in": 60}', id="numeric-token-type"),
        pytest.param(
            b"{" + B + b'"access_token": "t", "issued_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}',
            id="another-token-type-issued",
        ),
        pytest.param(b"{" + B + b'"access_token": "t", "expires_in": -5}', id="negative-lifetime"),
        pytest.param(b"{" + B + b'"access_token": "t", "expires_in": NaN}', id="nan-lifetime"),
        pytest.param(b"{" + B + b'"access_token": "t", "expires_in": true}', id="boolean-lifetime"),
        pytest.param(b"{" + B + b'"access_token": "t", "expires_in": "60"}', id="string-lifetime"),
        pytest.param(b"{" + B + b'"access_token": "' + b"t" * 9000 + b'"}', id="token-too-long"),
        pytest.param(b"{" + B + b'"access_token": "t", "pad": "' + b"x" * 70000 + b'"}', id="answer-too-large"),
    ],
)
async def test_a_token_service_answer_that_is_not_a_usable_token_is_a_502_and_reaches_no_upstream(
    start_gateway, upstream, store, aiohttp_client, answer
):
    from tests.support.token_service import token_service

    async with token_service() as sts:
        server = await start_gateway([route("alpha", upstream.url, upstream_auth=exchange_auth(sts.url))])
        sts.gateway_origin, sts.answer = str(server.make_url("")).rstrip("/"), answer
        client = await aiohttp_client(server)
        token = await issue(store, server, "alpha")
        headers, body = modern_call(5, "add", {"a": 1, "b": 2})
        refused = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
        assert refused.status == 502
        assert (await refused.json())["error"]["message"] == "The upstream's token service failed"


def test_a_value_file_that_is_no_regular_file_is_refused_at_once(tmp_path):
    """A FIFO (or a device) would hold the load until something writes to it: start-up, or a reload and every
    request with it. Refused without waiting, as is a directory and the mask `check-config --print` shows."""
    import os

    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    for path, says in ((fifo, "is not a regular file"), (tmp_path, "is not a regular file")):
        assert any(says in p for p in problems({"type": "static", "value_file": str(path)}))
    assert any("the mask check-config --print shows" in p for p in problems({"type": "static", "value": "**********"}))


def test_routes_given_as_models_are_checked_like_yaml_and_errors_never_quote_the_input():
    """Settings built from models (the demo, embedders) get the same header checks; pydantic's own errors leave
    the input out (a value may be a secret)."""
    from pydantic import ValidationError

    from gateway.config import Route, StaticUpstreamAuth

    auth = StaticUpstreamAuth(type="static", header="Host", value="k")
    with pytest.raises(ConfigError) as caught:
        Settings(
            public_url="http://127.0.0.1:8080",
            routes=[Route(name="a", upstream="http://127.0.0.1:9/mcp", upstream_auth=auth)],
        )
    assert any("routes[0].upstream_auth.header" in p and "guarded" in p for p in caught.value.problems)
    with pytest.raises(ValidationError) as refused:
        StaticUpstreamAuth(type="static", value="Bearer TOPSECRET-0123\r\n")
    assert "TOPSECRET" not in str(refused.value)


def test_the_credential_header_may_not_be_passed_back_to_clients():
    found = problems({"type": "static", "value": "k", "header": "X-Api-Key"}, forward_response_headers=["X-Api-Key"])
    assert any("also in forward_headers or forward_response_headers" in p for p in found)


@pytest.mark.parametrize("chunked", [False, True], ids=["one-write", "chunked-in-pieces"])
async def test_a_usable_answer_is_used_however_it_is_framed_and_a_huge_lifetime_is_capped(
    start_gateway, upstream, store, aiohttp_client, chunked
):
    from tests.support.token_service import token_service

    async with token_service() as sts:
        server = await start_gateway([route("alpha", upstream.url, upstream_auth=exchange_auth(sts.url))])
        sts.gateway_origin, sts.chunked = str(server.make_url("")).rstrip("/"), chunked
        sts.answer = b'{"access_token": "framed-token", "token_type": "bearer", "expires_in": 1' + b"0" * 400 + b"}"
        client = await aiohttp_client(server)
        token = await issue(store, server, "alpha")
        for request_id in (1, 2):
            headers, body = modern_call(request_id, "echo_headers", {})
            answer = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
            assert answer.status == 200
            assert json.loads(await tool_result_text(answer))["authorization"] == "Bearer framed-token"
        assert sts.calls == 1  # (cached: the lifetime capped at max_cache_seconds, not an overflow)


async def test_the_services_own_failures_are_502_and_a_changed_scope_gets_its_own_token(
    start_gateway, upstream, store, aiohttp_client
):
    """invalid_client (the gateway's client there is wrong) or throttling is no refusal of the user: 502. A token
    with other scopes for the same user is exchanged on its own (the assertion says other things)."""
    from tests.support.token_service import token_service

    async with token_service() as sts:
        server = await start_gateway(
            [route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"], upstream_auth=exchange_auth(sts.url))]
        )
        sts.gateway_origin = str(server.make_url("")).rstrip("/")
        client = await aiohttp_client(server)

        async def call(token: str) -> int:
            headers, body = modern_call(1, "add", {"a": 1, "b": 2})
            answer = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
            return answer.status

        wide = await issue(store, server, "alpha", scopes=("alpha:read", "alpha:write"))
        narrow = await issue(store, server, "alpha", scopes=("alpha:read",))
        assert [await call(wide), await call(narrow), await call(wide)] == [200, 200, 200]
        assert [e["sub"] for e in sts.exchanges] == ["local:alice", "local:alice"]  # two claim sets, two tokens
        for status, error in ((401, "invalid_client"), (429, "slow_down"), (400, "invalid_client"), (503, None)):
            sts.fail = (status, error)
            assert await call(await issue(store, server, "alpha", user=f"u{status}{error}")) == 502


def test_a_token_endpoint_with_a_password_is_refused_without_quoting_it():
    auth = {"type": "token_exchange", "client_id": "gw", "token_endpoint": "https://gw:hunter2@sts.example/token"}
    found = problems(auth)
    assert any("without user info" in p for p in found) and not any("hunter2" in p for p in found)
