"""Upstream credentials, `static` (issue 12 item 1): one header the gateway sends every request of the route, from
the configuration or a file; never from the client, never logged, refused when it would clash with a header the
gateway sets or guards."""

from __future__ import annotations

import json
import logging

import pytest

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
        ({"type": "oauth"}, "'oauth' is not available in this version"),
        ({"type": "token_exchange"}, "'token_exchange' is not available in this version"),
        ({"type": "provider_token"}, "'provider_token' is not available in this version"),
    ],
)
def test_unusable_credentials_are_refused_without_quoting_the_value(auth, says):
    found = problems(auth)
    assert any(says in p and p.startswith("routes[0].upstream_auth") for p in found), found
    assert not any("upstream-key" in p or "X-Admin" in p for p in found)


def test_the_header_may_not_be_one_the_route_forwards_or_an_identity_header():
    assert any(
        "also in forward_headers" in p
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
