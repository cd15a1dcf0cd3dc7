"""Slow and greedy clients against a real `serve` process (issue 10 #8, Slowloris): header and body deadlines,
the per-IP connection cap, and what they must leave alone (a normal client, an open SSE stream).

Short deadlines in the gateway's config; the tests only check that a connection is closed before a generous
bound (`BOUND`), never how fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.ports import free_port, wait_for_port
from tests.support.mcp_wire import legacy_initialize, modern_call, read_sse_event

CLI = [sys.executable, "-m", "gateway"]
BOUND = 20.0  # seconds: far beyond every deadline configured here (1-2 s), far below "stays open for minutes"


class Gateway:
    def __init__(self, port: int, config: Path, process: subprocess.Popen[bytes]) -> None:
        self.port, self.config, self.process = port, config, process
        self.writers: list[asyncio.StreamWriter] = []

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A raw connection, closed at the end of the test."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers.append(writer)
        return reader, writer

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def token(self) -> str:
        subprocess.run(
            [*CLI, "users", "add", "slow", "--password-stdin", "-c", str(self.config)],
            input="correct-horse-1\n",
            text=True,
            check=True,
            capture_output=True,
        )
        return subprocess.run(
            [*CLI, "tokens", "issue", "--user", "slow", "--route", "alpha", "-c", str(self.config)],
            text=True,
            check=True,
            capture_output=True,
        ).stdout.strip()


@pytest.fixture
async def start(tmp_path: Path, upstream) -> AsyncIterator:
    gateways: list[Gateway] = []

    def run(listen: str, extra: str = "") -> Gateway:
        port = free_port()
        config = tmp_path / f"gateway-{port}.yaml"
        config.write_text(
            f"public_url: http://127.0.0.1:{port}\n"
            f"listen: {{host: 127.0.0.1, port: {port}, metrics_port: null, {listen}}}\n"
            f"store: {{data_dir: {tmp_path / 'data'}}}\naudit: {{enabled: false}}\n{extra}"
            f"routes:\n  - {{name: alpha, path: /alpha/mcp, upstream: '{upstream.url}'}}\n"
        )
        with (tmp_path / f"serve-{port}.log").open("wb") as log:
            process = subprocess.Popen([*CLI, "serve", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(port, process, deadline=30)
        gateways.append(Gateway(port, config, process))
        return gateways[-1]

    yield run
    for gateway in gateways:
        for writer in gateway.writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        process = gateway.process
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the gateway sends until it closes the connection (a reset counts as closed)."""
    received = b""
    try:
        while chunk := await reader.read(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


async def test_half_sent_and_trickled_headers_are_answered_408_and_closed(start) -> None:
    """nginx client_header_timeout: headers must be complete within `listen.header_timeout` of the connection's
    start; a client trickling a header line at a time does not extend it; on a kept-alive connection the next
    request's headers are due from its first byte. Issue 10 #8: 200 such connections stayed open 150 s+."""
    gateway = start("header_timeout: 1, max_connections_per_ip: 0")
    half_sent = [await gateway.connect() for _ in range(50)]
    for _, writer in half_sent:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    trickling = await gateway.connect()

    async def trickle() -> None:
        trickling[1].write(b"GET /healthz HTTP/1.1\r\n")
        for _ in range(int(BOUND * 4)):
            await asyncio.sleep(0.25)  # pacing the attack, not waiting for a result
            try:
                trickling[1].write(b"X-Slow: 1\r\n")
                await trickling[1].drain()
            except ConnectionError:
                return

    kept_alive = await gateway.connect()
    kept_alive[1].write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    first = await kept_alive[0].readuntil(b'{"status": "ok"}')
    kept_alive[1].write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the second request never completes

    trickler = asyncio.ensure_future(trickle())
    async with asyncio.timeout(BOUND):
        answers = await asyncio.gather(*(until_closed(reader) for reader, _ in [*half_sent, trickling, kept_alive]))
    trickler.cancel()
    assert first.startswith(b"HTTP/1.1 200")
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer[:80]
    async with aiohttp.ClientSession() as http, http.get(gateway.url("/healthz")) as healthy:
        assert healthy.status == 200  # the gateway itself is fine


async def test_a_request_cut_short_behind_pipelined_ones_is_answered_408_and_closed(start) -> None:
    """The header deadline is re-armed for every request on a connection, also for one that arrived pipelined
    in the same read as the requests before it and never completed (security review 2, R9): it was left to
    `keepalive_timeout` (here 600 s) instead. The complete requests before it are answered first."""
    gateway = start("header_timeout: 1, keepalive_timeout: 600, max_connections_per_ip: 0")
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    cut = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: "
    one, two = await gateway.connect(), await gateway.connect()
    one[1].write(request + cut)
    two[1].write(request + request + cut)
    async with asyncio.timeout(BOUND):
        answers = await asyncio.gather(until_closed(one[0]), until_closed(two[0]))
    for answer, served in zip(answers, (1, 2), strict=True):
        assert answer.count(b"HTTP/1.1 200 OK") == served, answer[:400]
        assert answer.rsplit(b"HTTP/1.1 ", 1)[1].startswith(b"408 Request Timeout"), answer[-200:]


async def test_a_stalled_body_is_answered_408_on_oauth_and_mcp_routes(start) -> None:
    """nginx client_body_timeout: no byte of the body for `listen.body_timeout` -> 408 in the endpoint's shape
    (OAuth JSON at /token, a JSON-RPC error on an MCP route) and the connection is closed."""
    gateway = start("body_timeout: 1, max_connections_per_ip: 0")
    token = gateway.token()
    oauth = await gateway.connect()
    oauth[1].write(
        b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 200\r\n\r\ngrant_type="
    )
    mcp = await gateway.connect()
    mcp[1].write(
        f"POST /alpha/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
        'Transfer-Encoding: chunked\r\n\r\n5\r\n{"jso\r\n'.encode()
    )
    async with asyncio.timeout(BOUND):
        oauth_answer, mcp_answer = await asyncio.gather(until_closed(oauth[0]), until_closed(mcp[0]))
    head, _, body = oauth_answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"Cache-Control: no-store" in head
    assert json.loads(body)["error"] == "invalid_request"
    head, _, body = mcp_answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    error = json.loads(body)
    assert error["jsonrpc"] == "2.0" and error["error"]["code"] == -31408 and error["id"] is None


async def test_a_trickled_body_is_answered_408_once_its_total_deadline_passes(start) -> None:
    """Security review 2, R10: a byte every half second never trips the 1 s chunk deadline, yet the body has
    `listen.body_total_timeout` in all: 408 in the endpoint's shape (OAuth JSON, a JSON-RPC error), connection
    closed, long before the trickle would have ended."""
    gateway = start("body_timeout: 1, body_total_timeout: 2, max_connections_per_ip: 0")
    token = gateway.token()
    oauth = await gateway.connect()
    oauth[1].write(
        b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    mcp = await gateway.connect()
    mcp[1].write(
        f"POST /alpha/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n".encode()
    )

    async def trickle(writer: asyncio.StreamWriter) -> None:
        for _ in range(int(BOUND * 2)):  # 1000 bytes would take 500 s
            await asyncio.sleep(0.5)  # pacing the attack, not waiting for a result
            try:
                writer.write(b" ")
                await writer.drain()
            except ConnectionError:
                return

    tricklers = [asyncio.ensure_future(trickle(writer)) for _, writer in (oauth, mcp)]
    async with asyncio.timeout(BOUND):
        oauth_answer, mcp_answer = await asyncio.gather(until_closed(oauth[0]), until_closed(mcp[0]))
    for trickler in tricklers:
        trickler.cancel()
    head, _, body = oauth_answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and json.loads(body)["error"] == "invalid_request"
    head, _, body = mcp_answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and json.loads(body)["error"]["code"] == -31408


async def test_connections_beyond_the_per_ip_cap_are_refused(start) -> None:
    """nginx limit_conn: at most `listen.max_connections_per_ip` open connections per client address; the next
    one is answered 503 and closed before anything is read. Closing one makes room again."""
    gateway = start("max_connections_per_ip: 3, header_timeout: 60")
    held = [await gateway.connect() for _ in range(3)]
    for _, writer in held:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # half-sent: stays open (60 s deadline)
    async with asyncio.timeout(BOUND):
        refused = await until_closed((await gateway.connect())[0])
        assert refused.startswith(b"HTTP/1.1 503"), refused[:80]
        held.pop()[1].close()  # (closed again at the end: harmless)
        async with aiohttp.ClientSession() as http:
            while True:  # the gateway sees the close a moment later
                try:
                    async with http.get(gateway.url("/healthz")) as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass


async def test_trusted_proxies_are_exempt_from_the_per_ip_cap(start) -> None:
    """A reverse proxy carries many clients on its connections: peers in `trusted_proxies` are not capped."""
    gateway = start("max_connections_per_ip: 2, header_timeout: 60", extra="trusted_proxies: [127.0.0.0/8]\n")
    held = [await gateway.connect() for _ in range(4)]
    async with asyncio.timeout(BOUND), aiohttp.ClientSession() as http:
        async with http.get(gateway.url("/healthz")) as response:
            assert response.status == 200
    assert len(held) == 4


async def test_normal_clients_and_open_streams_outlive_the_deadlines(start) -> None:
    """The deadlines time what the client owes (headers, body bytes), never the response: an SSE answer to a
    POST and a GET stream (no request body) stay open well past both deadlines, and a kept-alive client keeps
    making requests on its connection meanwhile."""
    gateway = start("header_timeout: 1, body_timeout: 1")
    token = gateway.token()
    auth = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http:
        async with http.post(gateway.url("/alpha/mcp"), json=legacy_initialize(), headers=auth) as initialized:
            assert initialized.status == 200
            session = {
                **auth,
                "Mcp-Session-Id": initialized.headers["Mcp-Session-Id"],
                "MCP-Protocol-Version": "2025-11-25",
            }
            await initialized.read()
        async with http.post(
            gateway.url("/alpha/mcp"), headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
        ) as notified:
            assert notified.status == 202
        async with aiohttp.ClientSession() as streams:
            get_stream = await streams.get(gateway.url("/alpha/mcp"), headers=session)
            assert get_stream.status == 200 and get_stream.content_type == "text/event-stream"
            headers, call = modern_call(7, "slow_progress", {"steps": 4, "delay": 1.0}, progress_token="p")
            progress = await streams.post(gateway.url("/alpha/mcp"), json=call, headers={**headers, **auth})
            steps = 0
            while "result" not in (event := await read_sse_event(progress)):
                steps += 1
                async with http.get(gateway.url("/healthz")) as healthy:  # one kept-alive connection (limit=1)
                    assert healthy.status == 200
            progress.release()
            assert steps == 4 and event["result"]["content"][0]["text"] == "done"
            assert not get_stream.content.at_eof() and not get_stream.connection.closed  # type: ignore[union-attr]
            get_stream.release()
