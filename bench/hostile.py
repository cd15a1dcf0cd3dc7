"""Does the gateway stay responsive under hostile input? /healthz latency before and during each attack.

    python bench/hostile.py [--redis-url redis://127.0.0.1:6379/0] [--slowloris 200] [--hold 30] [--flood 20]

Starts the demo upstream and a real gateway (`mcp-auth-gateway serve`, on the given Redis or the embedded
store in a temporary directory, default limits and timeouts), issues a token (`users add` + `tokens issue`),
and starts a separate probe process that sends `GET /healthz` every 20 ms on a fresh connection (timeout
30 s). Then, one after the other, with a quiet spell before each:

  a. slowloris: `--slowloris` connections send a request line and then one header line every 5 s, never the
     end of the headers; a connection the gateway closes is reopened at once, for `--hold` seconds;
  b. one 4 MB `POST /register` with ~140,000 redirect URIs;
  c. one `POST` of a JSON-RPC batch of 50,000 `tools/call` with distinct tool names, with the token;
  d. policy flood, on a second route with 50 resource rules (`file:///secretN/*a*b*c*` for a group the user
     lacks): one 4 MB batch of 100 `subscriptions/listen` naming 100 long non-ASCII URIs each, then for
     `--flood` seconds 8 connections posting, back to back, the costliest batch the gateway's bounds admit
     (MAX_TARGETS names, MAX_TARGET_BYTES in all); answers are counted by status (the route's per-user rate
     limit, 100 a minute, turns most of them into 429s; the demo upstream answers the rest 400 itself).

For each attack it reports what the gateway answered and /healthz p50/p99/max (and probes that failed or timed
out) in the 5 s before and while the attack ran. It writes only configuration keys every version has, so it
runs on any branch and reports what happens there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.hostile_attacks import (  # noqa: E402
    FLOOD_LIMIT,
    POLICY_RULES,
    batch_body,
    bounded_policy_body,
    flood,
    listen_body,
    policy_yaml,
    post,
    register_body,
    slowloris,
)
from bench.stack import add_user, issue_token  # noqa: E402
from gateway.ports import free_port, wait_for_port  # noqa: E402

CLI = [sys.executable, "-m", "gateway"]
PROBE_EVERY = 0.02
PROBE_TIMEOUT = 30.0
QUIET = 5.0  # seconds of probing before each attack ("before")
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


# -- the probe (a process of its own: building a 4 MB body here must not delay it) --------------------------


async def probe(url: str) -> None:
    """Print `sent_at latency_seconds status` per request until killed (status: HTTP status, or an error)."""
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True), timeout=timeout) as http:
        while True:
            sent = time.time()
            started = time.perf_counter()
            try:
                async with http.get(url) as response:
                    await response.read()
                    status = str(response.status)
            except TimeoutError:
                status = "timeout"
            except aiohttp.ClientError as exc:
                status = type(exc).__name__
            print(f"{sent:.6f} {time.perf_counter() - started:.6f} {status}", flush=True)
            await asyncio.sleep(PROBE_EVERY)


@dataclass
class Samples:
    rows: list[tuple[float, float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def follow(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            sent, latency, status = line.split()
            with self.lock:
                self.rows.append((float(sent), float(latency), status))

    def between(self, start: float, end: float) -> list[tuple[float, float, str]]:
        with self.lock:
            return [row for row in self.rows if start <= row[0] < end]


def summary(rows: list[tuple[float, float, str]]) -> str:
    ok = sorted(latency * 1000 for _, latency, status in rows if status == "200")
    failed = len(rows) - len(ok)
    if not ok:
        return f"no answer ({failed} failed)"
    p99 = ok[min(len(ok) - 1, int(0.99 * len(ok)))]
    return f"p50 {statistics.median(ok):.1f} / p99 {p99:.1f} / max {ok[-1]:.1f} ms, {len(rows)} probes" + (
        f", {failed} failed or timed out" if failed else ""
    )


# -- running it -------------------------------------------------------------------------------------------


def start_gateway(work: Path, redis_url: str | None) -> tuple[int, dict[str, str], list[subprocess.Popen[bytes]]]:
    up_port, gw_port = free_port(), free_port()
    log = (work / "processes.log").open("wb")
    upstream = subprocess.Popen(
        [sys.executable, "-m", "gateway.demo_upstream", "--port", str(up_port)],
        cwd=REPO,
        env=ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for_port(up_port, upstream, deadline=30)
    store = (
        f"{{url: '{redis_url}', key_prefix: bench-hostile-{os.getpid()}}}"
        if redis_url
        else f"{{data_dir: '{work / 'data'}'}}"
    )
    config = work / "gateway.yaml"
    config.write_text(
        f"public_url: http://127.0.0.1:{gw_port}\n"
        f"listen: {{host: 127.0.0.1, port: {gw_port}, metrics_port: null}}\n"
        f"store: {store}\naudit: {{path: '{work / 'audit.log'}'}}\n"
        f"routes:\n  - {{name: alpha, path: /alpha/mcp, upstream: 'http://127.0.0.1:{up_port}/mcp'}}\n"
        f"  - {{name: policed, path: /policed/mcp, upstream: 'http://127.0.0.1:{up_port}/mcp',\n"
        f"      rate_limits: {{mcp_per_user: {{limit: {FLOOD_LIMIT}, period: 60}}}}, policy: {policy_yaml()}}}\n"
    )
    gateway = subprocess.Popen(
        [*CLI, "serve", "-c", str(config), "--log-level", "warning"],
        cwd=REPO,
        env=ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for_port(gw_port, gateway, deadline=60)
    add_user(config, "hostile-bench")
    tokens = {route: issue_token(config, route, ttl=None) for route in ("alpha", "policed")}
    return gw_port, tokens, [gateway, upstream]


async def run(args: argparse.Namespace, work: Path) -> list[tuple[str, str, str, str]]:
    port, tokens, processes = start_gateway(work, args.redis_url)
    base = f"http://127.0.0.1:{port}"
    prober = subprocess.Popen(
        [sys.executable, __file__, "--probe", f"{base}/healthz"], stdout=subprocess.PIPE, text=True, env=ENV
    )
    samples = Samples()
    threading.Thread(target=samples.follow, args=(prober.stdout,), daemon=True).start()
    mcp_headers = {
        "Authorization": f"Bearer {tokens['alpha']}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-03-26",
    }
    policed_headers = {**mcp_headers, "Authorization": f"Bearer {tokens['policed']}"}
    attacks = [
        (
            f"a. slowloris, {args.slowloris} connections, {args.hold:.0f} s",
            lambda: slowloris(port, args.slowloris, args.hold),
        ),
        (
            f"b. POST /register, {len(register_body()) / 1e6:.1f} MB, 140,000 redirect URIs",
            lambda: post(f"{base}/register", register_body(), {"Content-Type": "application/json"}, args.limit),
        ),
        (
            f"c. POST /alpha/mcp, {len(batch_body()) / 1e6:.1f} MB, batch of 50,000 tools/call",
            lambda: post(f"{base}/alpha/mcp", batch_body(), mcp_headers, args.limit),
        ),
        (
            f"d1. policy: POST /policed/mcp, {len(listen_body(100, 100, 180)) / 1e6:.1f} MB, 10,000 URIs "
            f"against {POLICY_RULES} rules",
            lambda: post(f"{base}/policed/mcp", listen_body(100, 100, 180), policed_headers, args.limit),
        ),
        (
            f"d2. policy flood: 8 connections, {args.flood:.0f} s, the costliest bounded body",
            lambda: flood(f"{base}/policed/mcp", bounded_policy_body(), policed_headers, args.flood),
        ),
    ]
    if args.only:
        attacks = [(name, attack) for name, attack in attacks if name[0] in args.only]
    rows = []
    try:
        for name, attack in attacks:
            print(f"{name} …", file=sys.stderr, flush=True)
            await asyncio.sleep(QUIET)  # the "before" window
            started = time.time()
            answered = await attack()
            ended = time.time()
            await asyncio.sleep(1)  # probes sent during the attack may still be in flight
            rows.append(
                (
                    name,
                    answered,
                    summary(samples.between(started - QUIET, started)),
                    summary(samples.between(started, ended)),
                )
            )
    finally:
        prober.kill()
        prober.wait()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="a Redis to use (default: the embedded store in a temp dir)")
    parser.add_argument("--slowloris", type=int, default=200, help="slowloris connections (default 200)")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds the slowloris attack lasts (default 30)")
    parser.add_argument("--flood", type=float, default=20.0, help="seconds the policy flood lasts (default 20)")
    parser.add_argument("--only", help="run only the attacks whose label starts with one of these letters, e.g. d")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds to wait for an attack's answer")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        asyncio.run(probe(args.probe))
        return
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        rows = asyncio.run(run(args, Path(tmp)))
    print("| attack | the gateway answered | /healthz before | /healthz during |")
    print("|---|---|---|---|")
    for name, answered, before, during in rows:
        print(f"| {name} | {answered.replace('|', '/')} | {before} | {during} |")


if __name__ == "__main__":
    main()
