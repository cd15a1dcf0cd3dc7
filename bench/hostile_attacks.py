"""The attacks of bench/hostile.py: each builds its hostile input, sends it, and says in one line what the
gateway answered. The bodies are built compact (no spaces) to stay under proxy.max_body_bytes (4 MiB), as in
the review; the policy attacks (d) need the policed route that bench/hostile.py configures from POLICY_RULES and
FLOOD_LIMIT.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp


async def slowloris(port: int, count: int, hold: float) -> str:
    """Keep `count` connections sending headers forever; reopen what the gateway closes."""
    closed, lifetimes = 0, []
    deadline = time.monotonic() + hold

    async def one() -> None:
        nonlocal closed
        while time.monotonic() < deadline:
            opened = time.monotonic()
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            try:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                while time.monotonic() < deadline:
                    try:
                        await asyncio.wait_for(reader.read(4096), timeout=min(5.0, deadline - time.monotonic()))
                    except TimeoutError:
                        writer.write(b"X-Slowloris: 1\r\n")  # one more header line, every 5 s
                        await writer.drain()
                        continue
                    raise ConnectionResetError  # the gateway answered (a 408) or closed the connection
            except ConnectionError:
                closed += 1
                lifetimes.append(time.monotonic() - opened)
            finally:
                writer.close()

    await asyncio.gather(*(one() for _ in range(count)))
    if not closed:
        return f"{count} connections held {hold:.0f} s; the gateway closed none"
    return (
        f"{count} connections; the gateway closed {closed} (reopened at once), each after "
        f"{min(lifetimes):.1f}-{max(lifetimes):.1f} s"
    )


COMPACT = (",", ":")  # both bodies stay under proxy.max_body_bytes (4 MiB), as in the review


def register_body(uris: int = 140_000) -> bytes:
    return json.dumps(
        {
            "client_name": "hostile",
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "redirect_uris": [f"http://127.0.0.1/c/{i:06d}" for i in range(uris)],
        },
        separators=COMPACT,
    ).encode()


def batch_body(calls: int = 50_000) -> bytes:
    return json.dumps(
        [{"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": f"t{i}"}} for i in range(calls)],
        separators=COMPACT,
    ).encode()


POLICY_RULES = 50
FLOOD_LIMIT = 100  # the policed route's per-user limit a minute: most of the flood is refused by it


def policy_yaml() -> str:
    rules = ", ".join(f"{{match: 'file:///secret{i}/*a*b*c*', groups: ['local:ops']}}" for i in range(POLICY_RULES))
    return f"{{resources: [{rules}]}}"


def listen_body(messages: int, uris: int, length: int) -> bytes:
    """`messages` subscriptions/listen naming `uris` URIs each, `length` non-ASCII characters long (raw UTF-8)."""
    return json.dumps(
        [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "subscriptions/listen",
                "params": {
                    "notifications": {
                        "resourceSubscriptions": [f"file:///secret1/{i}-{j}-" + "ä" * length for j in range(uris)]
                    }
                },
            }
            for i in range(messages)
        ],
        separators=COMPACT,
        ensure_ascii=False,
    ).encode()


def bounded_policy_body() -> bytes:
    """The costliest body within the bounds (where they exist; on a version without them this is just a batch)."""
    try:
        from gateway.mcp.jsonrpc import MAX_TARGET_BYTES, MAX_TARGETS
    except ImportError:
        MAX_TARGETS, MAX_TARGET_BYTES = 100, 16 * 1024  # noqa: N806
    uris = 27
    return listen_body(1, min(uris, MAX_TARGETS), (MAX_TARGET_BYTES // uris - 30) // 2)


async def flood(url: str, body: bytes, headers: dict[str, str], seconds: float, connections: int = 8) -> str:
    """POST `body` back to back from `connections` clients for `seconds`; the answers counted by status."""
    statuses: dict[str, int] = {}
    samples: dict[str, str] = {}  # one answer of each status
    deadline = time.monotonic() + seconds

    async def one(http: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            try:
                async with http.post(url, data=body, headers=headers) as response:
                    text = (await response.read())[:100].decode(errors="replace")
                    status = str(response.status)
                    samples.setdefault(status, text)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__
            statuses[status] = statuses.get(status, 0) + 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        await asyncio.gather(*(one(http) for _ in range(connections)))
    counted = ", ".join(
        f"{count} x {status} ({samples.get(status, '')!r})" for status, count in sorted(statuses.items())
    )
    return f"{sum(statuses.values())} POSTs of {len(body) / 1e3:.0f} KB in {seconds:.0f} s: {counted}"


async def post(url: str, body: bytes, headers: dict[str, str], limit: float) -> str:
    started = time.perf_counter()
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as http,
            http.post(url, data=body, headers=headers) as response,
        ):
            text = (await response.read())[:160].decode(errors="replace").replace("\n", " ")
            return f"{response.status} after {time.perf_counter() - started:.2f} s: {text}"
    except TimeoutError:
        return f"no answer within {limit:.0f} s"
    except aiohttp.ClientError as exc:
        return f"{type(exc).__name__} after {time.perf_counter() - started:.2f} s"
