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


def write_config(
    path: Path,
    port: int,
    upstream_url: str,
    routes: tuple[str, ...] = ("alpha",),
    extra: str = "",
    listen_extra: str = "",
) -> None:
    lines = "\n".join(f"  - {{name: {r}, path: /{r}/mcp, upstream: '{upstream_url}'}}" for r in routes)
    if "metrics_port" not in listen_extra:  # (the default, 9464, is one port for every gateway on the machine)
        listen_extra += ", metrics_port: null"
    path.write_text(
        f"public_url: http://127.0.0.1:{port}\nlisten: {{host: 127.0.0.1, port: {port}, "
        f"shutdown_grace: 20{listen_extra}}}\nstore: {{data_dir: {path.parent / 'data'}}}\n"
        f"audit: {{enabled: false}}\n{extra}routes:\n{lines}\n"
    )


def service_token(config: Path) -> str:
    subprocess.run(
        [*CLI, "users", "add", "ops", "--password-stdin", "-c", str(config)],
        input="correct-horse-1\n",
        text=True,
        check=True,
        capture_output=True,
    )
    return subprocess.run(
        [*CLI, "tokens", "issue", "--user", "ops", "--route", "alpha", "-c", str(config)],
        text=True,
        check=True,
        capture_output=True,
    ).stdout.strip()


async def poll(predicate, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while not await predicate():
        assert time.monotonic() < end, "condition not reached before the deadline"
        await asyncio.sleep(0.05)


@pytest.fixture
def gateway_process(tmp_path, upstream):
    processes: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(*args: str, listen_extra: str = "") -> tuple[int, Path, subprocess.Popen[bytes]]:
        port = free_port()
        config = tmp_path / "gateway.yaml"
        write_config(config, port, upstream.url, listen_extra=listen_extra)
        log = (tmp_path / "serve.log").open("wb")
        logs.append(log)
        process = subprocess.Popen([*CLI, "serve", "-c", str(config), *args], stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        wait_for_port(port, process, deadline=30)
        return port, config, process

    yield start
    for process in processes:  # SIGTERM first: a SIGKILLed gateway leaves its embedded Redis running
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for log in logs:
        log.close()


async def test_sigterm_stops_accepting_lets_open_streams_finish_and_exits_0(gateway_process, tmp_path):
    port, config, process = gateway_process()
    token = service_token(config)
    headers, body = modern_call(1, "slow_progress", {"steps": 3, "delay": 0.5}, progress_token="p")
    async with aiohttp.ClientSession() as http:
        stream = await http.post(
            f"http://127.0.0.1:{port}/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"}
        )
        first = await read_sse_event(stream)
        assert first["method"] == "notifications/progress"
        process.send_signal(signal.SIGTERM)

        async def refused() -> bool:
            try:
                async with http.get(
                    f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=5)
                ) as probe:
                    await probe.read()
                return False
            except aiohttp.ClientConnectorError:
                return True  # refused at connect: the listening socket is closed, not merely unserved

        await poll(refused)  # the listener closed while the stream is still open
        assert process.poll() is None
        while "result" not in (event := await read_sse_event(stream)):
            pass
        stream.release()
        assert event["result"]["content"][0]["text"] == "done"
    assert await asyncio.to_thread(process.wait, 30) == 0


@pytest.mark.parametrize("trigger", ["sighup", "watch-config"])
async def test_reload_picks_up_new_routes_and_refuses_an_invalid_config(gateway_process, upstream, tmp_path, trigger):
    """SIGHUP, or with --watch-config an edit of the file alone (no signal), reloads; an invalid config is refused
    and the running one kept."""
    port, config, process = gateway_process(*(["--watch-config"] if trigger == "watch-config" else []))
    prm = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/beta/mcp"

    def changed() -> None:
        if trigger == "sighup":
            process.send_signal(signal.SIGHUP)

    async with aiohttp.ClientSession() as http:

        async def status() -> int:
            async with http.get(prm) as response:
                return response.status

        assert await status() == 404
        replacement = config.with_name("next.yaml")  # replaced by rename, as editors and ConfigMaps do
        write_config(replacement, port, upstream.url, routes=("alpha", "beta"))
        replacement.replace(config)
        changed()
        await poll(lambda: _is(status(), 200))

        config.write_text(config.read_text().replace("public_url:", "publik_url:"))  # invalid, edited in place
        changed()
        await poll(lambda: _contains(tmp_path / "serve.log", "reload refused"))
        assert await status() == 200  # old config kept
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) == 0


def _port_pair() -> int:
    """A port whose successor is free too (worker i serves metrics on metrics_port + i)."""
    import socket

    while True:
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


async def test_metrics_on_their_own_port_per_worker_and_not_on_the_public_one(gateway_process):
    metrics_port = _port_pair()
    port, config, process = gateway_process("--workers", "2", listen_extra=f", metrics_port: {metrics_port}")
    for worker in range(2):
        wait_for_port(metrics_port + worker, deadline=30)
    token = service_token(config)
    headers, body = modern_call(1, "add", {"a": 2, "b": 2})
    async with aiohttp.ClientSession() as http:
        for _ in range(6):
            async with http.post(
                f"http://127.0.0.1:{port}/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"}
            ) as response:
                assert response.status == 200
                await response.read()
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 404  # not on the public port
        served = 0.0
        for worker in range(2):
            async with http.get(f"http://127.0.0.1:{metrics_port + worker}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
            for line in text.splitlines():
                if line.startswith("mcpgw_mcp_requests_total{") and 'status="200"' in line:
                    served += float(line.rsplit(" ", 1)[1])
        assert served == 6  # every request counted once, by the worker that served it
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) == 0


async def test_a_reload_changes_the_metrics_token_on_both_listeners(gateway_process, upstream):
    """Security review 2, R7: `listen.metrics_token` is read again on SIGHUP, by the public port and by the
    metrics listener alike (which kept the token it started with): the old token stops working at once."""
    metrics_port = free_port()
    old, new = "old-metrics-token-0123456789", "new-metrics-token-9876543210"
    port, config, process = gateway_process(listen_extra=f", metrics_port: {metrics_port}, metrics_token: {old}")
    wait_for_port(metrics_port, deadline=30)
    urls = (f"http://127.0.0.1:{port}/metrics", f"http://127.0.0.1:{metrics_port}/metrics")
    async with aiohttp.ClientSession() as http:

        async def statuses(token: str) -> list[int]:
            answers = []
            for url in urls:
                async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
                    answers.append(response.status)
            return answers

        assert await statuses(old) == [200, 200] and await statuses(new) == [401, 401]
        replacement = config.with_name("next.yaml")
        write_config(
            replacement, port, upstream.url, listen_extra=f", metrics_port: {metrics_port}, metrics_token: {new}"
        )
        replacement.replace(config)
        process.send_signal(signal.SIGHUP)
        await poll(lambda: _is_list(statuses(new), [200, 200]))
        assert await statuses(old) == [401, 401]
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) == 0


async def _is_list(awaitable, expected: list[int]) -> bool:
    return await awaitable == expected


async def test_workers_share_the_port_and_the_store(gateway_process):
    port, config, process = gateway_process("--workers", "2")
    token = service_token(config)
    headers, body = modern_call(1, "add", {"a": 2, "b": 2})
    async with aiohttp.ClientSession() as http:
        for _ in range(10):  # spread over both workers by the kernel
            async with http.post(
                f"http://127.0.0.1:{port}/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"}
            ) as response:
                assert response.status == 200
                await response.read()
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) == 0


async def _is(awaitable, expected: int) -> bool:
    return await awaitable == expected


async def _contains(path: Path, text: str) -> bool:
    return text in path.read_text(errors="replace")
