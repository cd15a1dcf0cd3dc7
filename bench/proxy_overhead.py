"""Proxy overhead: the same MCP tools/call, direct to the upstream and through the gateway, in one run.

    python bench/proxy_overhead.py [--requests 2000] [--concurrency 16] [--redis-url redis://127.0.0.1:6379/0] [--pin]

Starts the demo upstream and `mcp-auth-gateway serve` as subprocesses (store: the given Redis, else the
embedded one in a temp dir), issues a token, then measures latency percentiles and throughput for both
paths and prints the ratios (gateway / direct). Numbers are for this machine only; compare ratios. With --pin
the gateway runs on the last CPU and the upstream and this client on the others, in both runs: the gateway as a
sidecar with a CPU share of its own, so the ratio shows what it adds rather than what it takes from the upstream
when they compete for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.stack import add_user, issue_token  # noqa: E402
from tests.support.mcp_wire import modern_call  # noqa: E402
from tests.support.processes import free_port, wait_for_port  # noqa: E402


async def measure(url: str, token: str | None, requests: int, concurrency: int) -> tuple[list[float], float]:
    headers, body = modern_call(1, "add", {"a": 1, "b": 2})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = json.dumps(body).encode()
    headers["Content-Type"] = "application/json"
    latencies: list[float] = []
    queue = iter(range(requests))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        for _ in range(50):  # warm-up: connections, caches
            async with http.post(url, data=payload, headers=headers) as r:
                await r.read()

        async def worker() -> None:
            for _ in queue:
                started = time.perf_counter()
                async with http.post(url, data=payload, headers=headers) as r:
                    await r.read()
                    assert r.status == 200, r.status
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, requests / elapsed


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--redis-url", default=None, help="default: the embedded store")
    parser.add_argument("--pin", action="store_true", help="the gateway on the last CPU, the rest on the others")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    own: list[str] = []
    if args.pin and len(cpus) > 1 and shutil.which("taskset"):
        own = ["taskset", "-c", str(cpus[-1])]
        os.sched_setaffinity(0, set(cpus[:-1]))  # this client and the upstream it starts

    work = Path(tempfile.mkdtemp(prefix="mcpgw-bench-"))
    up_port, gw_port = free_port(), free_port()
    store = f"  url: {args.redis_url}\n" if args.redis_url else f"  data_dir: {work / 'data'}\n"
    config = work / "gateway.yaml"
    config.write_text(
        f"public_url: http://127.0.0.1:{gw_port}\nlisten: {{host: 127.0.0.1, port: {gw_port}, "
        f"metrics_port: null}}\n"
        f"store:\n{store}  key_prefix: bench-{os.getpid()}\n"
        # the limiter still runs on every request, with budgets the benchmark cannot exhaust
        "rate_limits: {mcp_per_user: {limit: 100000000}, tool_calls_per_user: {limit: 100000000}}\n"
        "audit: {path: '-'}\n"
        f"routes:\n  - name: bench\n    path: /bench/mcp\n    upstream: http://127.0.0.1:{up_port}/mcp\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env, "cwd": REPO}
    cli = [sys.executable, "-m", "gateway"]
    upstream = subprocess.Popen([sys.executable, "-m", "gateway.demo_upstream", "--port", str(up_port)], **quiet)
    gateway = subprocess.Popen([*own, *cli, "serve", "-c", str(config), "--log-level", "warning"], **quiet)
    try:
        wait_for_port(up_port, upstream)
        wait_for_port(gw_port, gateway)
        add_user(config)
        token = issue_token(config, ttl=None)
        print(
            f"store: {args.redis_url or 'embedded'}; {args.requests} tools/call requests, "
            f"concurrency {args.concurrency}; {'gateway pinned to CPU ' + own[-1] if own else 'not pinned'}",
            flush=True,
        )
        rows = {}
        for name, url, tok in (
            ("direct", f"http://127.0.0.1:{up_port}/mcp", None),
            ("gateway", f"http://127.0.0.1:{gw_port}/bench/mcp", token),
        ):
            print(f"  measuring {name} …", flush=True)
            latencies, rps = asyncio.run(measure(url, tok, args.requests, args.concurrency))
            rows[name] = (statistics.median(latencies) * 1000, pct(latencies, 0.99), rps)
        print(f"{'path':<8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
        for name, (p50, p99, rps) in rows.items():
            print(f"{name:<8} {p50:>8.2f} {p99:>8.2f} {rps:>8.0f}")
        (d50, d99, drps), (g50, g99, grps) = rows["direct"], rows["gateway"]
        print(f"ratio gateway/direct: p50 {g50 / d50:.2f}x, p99 {g99 / d99:.2f}x, throughput {grps / drps:.2f}x")
    finally:
        gateway.terminate()
        upstream.terminate()
        gateway.wait(timeout=10)
        upstream.wait(timeout=10)


if __name__ == "__main__":
    main()
