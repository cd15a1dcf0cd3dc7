"""Metrics, request ids and structured logs (issue #6 item 2)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.ports import free_port, wait_for_port
from tests.conftest import route
from tests.support.mcp_wire import modern_call
from tests.support.tokens import issue

METRICS_TOKEN = "metrics-token-0123456789"


def sample(text: str, name: str) -> float:
    """The value of one Prometheus sample `name{labels} value` (0 when absent)."""
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == name:
            return float(value)
    return 0.0


async def test_metrics_cover_validations_overhead_streams_limits_and_oauth(
    start_gateway, upstream, store, aiohttp_client
):
    server = await start_gateway(
        [route("alpha", upstream.url)],
        listen={"metrics_token": METRICS_TOKEN},
        rate_limits={"tool_calls_per_user": {"limit": 1, "period": 3600}},
    )
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    headers, call = modern_call(1, "add", {"a": 1, "b": 2})
    headers["Authorization"] = f"Bearer {token}"
    for _ in range(2):  # the second is rate limited
        await (await client.post("/alpha/mcp", json=call, headers=headers)).read()
    await (await client.post("/alpha/mcp", json=call)).read()  # no token
    await (
        await client.post("/token", data={"grant_type": "refresh_token", "client_id": "x", "refresh_token": "y"})
    ).read()
    text = await (await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})).text()
    assert sample(text, 'mcpgw_token_validations_total{outcome="valid"}') == 2
    assert sample(text, 'mcpgw_rate_limited_total{limit="mcp"}') == 1
    assert sample(text, 'mcpgw_gateway_overhead_seconds_count{route="alpha"}') == 1
    assert sample(text, 'mcpgw_upstream_response_seconds_count{route="alpha"}') == 1
    assert sample(text, 'mcpgw_sse_streams_open{route="alpha"}') == 0  # the SSE answer was relayed and closed
    assert sample(text, 'mcpgw_oauth_events_total{event="oauth.token",outcome="invalid_client"}') == 1
    assert sample(text, 'mcpgw_auth_failures_total{reason="no_token",route="alpha"}') == 1


async def test_metrics_are_not_on_the_public_port_by_default(gateway, aiohttp_client):
    """Issue 10 #17: /metrics (route names, traffic, auth failures) is not for the internet: by default it is
    served only on the loopback metrics listener (`listen.metrics_port`), never on the public port."""
    client = await aiohttp_client(gateway)
    assert (await client.get("/metrics")).status == 404


async def test_public_metrics_need_the_metrics_token(start_gateway, upstream, aiohttp_client):
    """Issue 10 #17: with `listen.metrics_token`, the public /metrics answers only that bearer token (RFC 6750 §3:
    a 401 names the scheme; a wrong token gets error="invalid_token")."""
    client = await aiohttp_client(
        await start_gateway([route("alpha", upstream.url)], listen={"metrics_token": METRICS_TOKEN})
    )
    missing = await client.get("/metrics")
    assert missing.status == 401 and missing.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "mcpgw_" not in await missing.text()
    for wrong in (f"Bearer {METRICS_TOKEN}x", f"Basic {METRICS_TOKEN}", f"Bearer {METRICS_TOKEN[:-1]}", "Bearer"):
        refused = await client.get("/metrics", headers={"Authorization": wrong})
        assert refused.status == 401, wrong
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="metrics", error="invalid_token"'
    allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert allowed.status == 200 and allowed.headers["Content-Type"].startswith("text/plain")
    assert "mcpgw_token_validations_total" in await allowed.text()


async def test_a_metrics_token_that_is_not_utf8_is_refused_not_a_500(start_gateway, upstream):
    """Security review 2, R7: bytes that are not UTF-8 in the bearer token raised inside the comparison (a 500).
    On the public port every such header is refused first, as an invalid request (RFC 6750 §3.1), before any
    handler reads it; the metrics listener's own comparison hashes the bytes as sent."""
    server = await start_gateway([route("alpha", upstream.url)], listen={"metrics_token": METRICS_TOKEN})
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe" + METRICS_TOKEN.encode() + b"\r\n"
        b"Connection: close\r\n\r\n"
    )
    async with asyncio.timeout(5):
        answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b'"error": "invalid_request"' in answer and b"mcpgw_" not in answer


async def test_the_request_id_reaches_the_upstream_and_the_client(gateway, store):
    token = await issue(store, gateway, "alpha")
    seen: dict[str, str] = {}

    async def remember(response: httpx2.Response) -> None:
        seen.setdefault("returned", response.headers.get("x-request-id", ""))

    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}", "X-Request-Id": "trace-42"},
        event_hooks={"response": [remember]},
        timeout=30,
    )
    async with http, Client(streamable_http_client(str(gateway.make_url("/alpha/mcp")), http_client=http)) as c:
        echoed = json.loads((await c.call_tool("echo_headers", {})).content[0].text)
    assert echoed["x-request-id"] == "trace-42" and seen["returned"] == "trace-42"


async def json_log_of_one_request(upstream, tmp_path, *options: str) -> list[dict]:
    """`serve --log-format json [options]` (audit lines to stdout, logs to stderr: both kept), one tokenless MCP
    POST with `X-Request-Id: abc-123`; every JSON line written."""
    port = free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"public_url: http://127.0.0.1:{port}\nlisten: {{host: 127.0.0.1, port: {port}, "
        "metrics_port: null}\n"
        f"store: {{data_dir: {tmp_path / 'data'}}}\n"
        f"routes:\n  - {{name: alpha, path: /alpha/mcp, upstream: '{upstream.url}'}}\n"
    )
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "-c", str(config), "--log-format", "json", *options],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, serve, deadline=30)
        async with aiohttp.ClientSession() as http:
            await (
                await http.post(f"http://127.0.0.1:{port}/alpha/mcp", json={}, headers={"X-Request-Id": "abc-123"})
            ).read()
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        log.close()
    return [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines() if line.startswith("{")]


async def test_serve_writes_json_logs_with_request_ids(upstream, tmp_path):
    entries = await json_log_of_one_request(upstream, tmp_path, "--access-log")
    access = [e for e in entries if e.get("path") == "/alpha/mcp"]
    assert access and access[0]["request_id"] == "abc-123" and access[0]["status"] == 401


async def test_serve_writes_no_access_log_unless_asked(upstream, tmp_path):
    """The audit log is the record of MCP requests; the per-request access line is opt-in (`--access-log`)."""
    entries = await json_log_of_one_request(upstream, tmp_path)
    assert not [e for e in entries if e.get("path") == "/alpha/mcp"]  # no access line
    audited = [e for e in entries if e.get("event") == "mcp.request"]
    assert audited and audited[0]["request_id"] == "abc-123" and audited[0]["status"] == 401
