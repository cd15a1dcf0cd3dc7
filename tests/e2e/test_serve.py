"""`mcp-auth-gateway serve` as users run it: a subprocess on the embedded store, in front of the real upstream."""

from __future__ import annotations

import subprocess
import sys

import aiohttp

from tests.support.processes import free_port, wait_for_port


async def test_serve_on_the_embedded_store_proxies_and_never_logs_tokens(upstream, tmp_path):
    """Issue #2: embedded store under data_dir; a token survives a gateway restart (nothing lost);
    the access log shows no query string, so a token sent there never reaches a log (RS-7)."""
    port = free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(f"public_url: http://127.0.0.1:{port}\nlisten: {{host: 127.0.0.1, port: {port}}}\n"
                      f"store: {{data_dir: {tmp_path / 'data'}}}\n"
                      f"routes:\n  - {{name: alpha, path: /alpha/mcp, upstream: '{upstream.url}'}}\n")
    cli = [sys.executable, "-m", "gateway"]
    subprocess.run([*cli, "users", "add", "erin", "--password-stdin", "-c", str(config)],
                   input="correct-horse-battery\n", text=True, check=True, capture_output=True)
    token = subprocess.run([*cli, "tokens", "issue", "--user", "erin", "--route", "alpha", "-c", str(config)],
                           text=True, check=True, capture_output=True).stdout.strip()
    log = tmp_path / "serve.log"
    for attempt in range(2):  # the second run proves the token outlived a restart
        with log.open("w") as out:
            serve = subprocess.Popen([*cli, "serve", "-c", str(config)], stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, serve, deadline=30)
            async with aiohttp.ClientSession() as http:
                ready = await http.get(f"http://127.0.0.1:{port}/readyz")
                assert ready.status == 200
                leaked = await http.post(f"http://127.0.0.1:{port}/alpha/mcp?access_token={token}", json={})
                assert leaked.status == 401
                ok = await http.post(f"http://127.0.0.1:{port}/alpha/mcp", headers={
                    "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
                    json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                        "protocolVersion": "2025-11-25", "capabilities": {},
                        "clientInfo": {"name": "t", "version": "1"}}})
                assert ok.status == 200, attempt
                await ok.read()
        finally:
            serve.terminate()
            serve.wait(timeout=30)
        output = log.read_text()
        assert f"route alpha: http://127.0.0.1:{port}/alpha/mcp -> {upstream.url}" in output
        assert '"POST /alpha/mcp" 401' in output
        assert token not in output and token[9:] not in output


async def test_metrics_count_requests_per_route(gateway, aiohttp_client):
    client = await aiohttp_client(gateway)
    await client.post("/alpha/mcp", json={})
    body = await (await client.get("/metrics")).text()
    assert 'mcpgw_auth_failures_total{reason="no_token",route="alpha"} 1.0' in body
