"""Reload and drain (issue #6 item 3) and worker processes (item 4), against a real `serve` process."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from gateway.ports import free_port, wait_for_port
from tests.support.mcp_wire import modern_call, read_sse_event

CLI = [sys.executable, "-m", "gateway"]


def write_config(path: Path, port: int, upstream_url: str, routes: tuple[str, ...] = ("alpha",),
                 extra: str = "") -> None:
    lines = "\n".join(f"  - {{name: {r}, path: /{r}/mcp, upstream: '{upstream_url}'}}" for r in routes)
    path.write_text(f"public_url: http://127.0.0.1:{port}\nlisten: {{host: 127.0.0.1, port: {port}, "
                    f"shutdown_grace: 20}}\nstore: {{data_dir: {path.parent / 'data'}}}\naudit: {{enabled: false}}\n"
                    f"{extra}routes:\n{lines}\n")


def service_token(config: Path) -> str:
    subprocess.run([*CLI, "users", "add", "ops", "--password-stdin", "-c", str(config)], input="correct-horse-1\n",
                   text=True, check=True, capture_output=True)
    return subprocess.run([*CLI, "tokens", "issue", "--user", "ops", "--route", "alpha", "-c", str(config)],
                          text=True, check=True, capture_output=True).stdout.strip()


async def poll(predicate, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while not await predicate():
        assert time.monotonic() < end, "condition not reached before the deadline"
        await asyncio.sleep(0.05)


@pytest.fixture
def gateway_process(tmp_path, upstream):
    processes: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(*args: str) -> tuple[int, Path, subprocess.Popen[bytes]]:
        port = free_port()
        config = tmp_path / "gateway.yaml"
        write_config(config, port, upstream.url)
        log = (tmp_path / "serve.log").open("wb")
        logs.append(log)
        process = subprocess.Popen([*CLI, "serve", "-c", str(config), *args], stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        wait_for_port(port, process, deadline=30)
        return port, config, process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()
    for log in logs:
        log.close()


async def test_sigterm_stops_accepting_lets_open_streams_finish_and_exits_0(gateway_process, tmp_path):
    port, config, process = gateway_process()
    token = service_token(config)
    headers, body = modern_call(1, "slow_progress", {"steps": 3, "delay": 0.5}, progress_token="p")
    async with aiohttp.ClientSession() as http:
        stream = await http.post(f"http://127.0.0.1:{port}/alpha/mcp", json=body,
                                 headers={**headers, "Authorization": f"Bearer {token}"})
        first = await read_sse_event(stream)
        assert first["method"] == "notifications/progress"
        process.send_signal(signal.SIGTERM)

        async def refused() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as probe:
                    await probe.read()
                return False
            except aiohttp.ClientConnectionError:
                return True

        await poll(refused)  # the listener closed while the stream is still open
        while "result" not in (event := await read_sse_event(stream)):
            pass
        stream.release()
        assert event["result"]["content"][0]["text"] == "done"
    assert await asyncio.to_thread(process.wait, 30) == 0


async def test_sighup_reloads_routes_and_refuses_an_invalid_config(gateway_process, upstream, tmp_path):
    port, config, process = gateway_process()
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        async def status(path: str) -> int:
            async with http.get(base + path) as response:
                return response.status

        assert await status("/.well-known/oauth-protected-resource/beta/mcp") == 404
        write_config(config, port, upstream.url, routes=("alpha", "beta"))
        process.send_signal(signal.SIGHUP)
        await poll(lambda: _is(status("/.well-known/oauth-protected-resource/beta/mcp"), 200))

        config.write_text(config.read_text().replace("public_url:", "publik_url:"))  # invalid
        process.send_signal(signal.SIGHUP)
        await poll(lambda: _contains(tmp_path / "serve.log", "reload refused"))
        assert await status("/.well-known/oauth-protected-resource/beta/mcp") == 200  # old config kept
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) == 0


async def test_workers_share_the_port_and_the_store(gateway_process):
    port, config, process = gateway_process("--workers", "2")
    token = service_token(config)
    headers, body = modern_call(1, "add", {"a": 2, "b": 2})
    async with aiohttp.ClientSession() as http:
        for _ in range(10):  # spread over both workers by the kernel
            async with http.post(f"http://127.0.0.1:{port}/alpha/mcp", json=body,
                                 headers={**headers, "Authorization": f"Bearer {token}"}) as response:
                assert response.status == 200
                await response.read()
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) == 0


async def _is(awaitable, expected: int) -> bool:
    return await awaitable == expected


async def _contains(path: Path, text: str) -> bool:
    return text in path.read_text(errors="replace")
