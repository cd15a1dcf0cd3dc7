"""Gateway vs nginx vs direct, one run, one load generator (wrk); plus SSE streams and OAuth rates.

    python bench/compare.py [--duration 10] [--connections 32] [--rate 500] [--streams 2000] [--redis-url URL]
                            [--no-limits] [--workers N] [--skip-oauth] [--pin]

Starts bench/fast_upstream.py, nginx (`proxy_pass`, keepalive upstream), `mcp-auth-gateway serve` in front of
it, and bench/bare_proxy.py (aiohttp relaying and nothing else: the floor of the gateway's stack), issues a
service token, and drives the same authenticated MCP POST at each with wrk: at saturation (--connections), with
one connection (added latency per request), and paced at about --rate requests/s (wrk's delay() hook; wrk2 is
not packaged). Then the OAuth rates (bench/oauth_rates.py: sign-in flow latency, returning-user flows/s,
refreshes/s). Then opens --streams SSE streams directly and through the gateway: the gateway's RSS growth per
stream, and the delay of each event from the upstream's send time with all streams open.
Needs nginx and wrk: installed from Debian's packages when missing (as root). Compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench import oauth_rates  # noqa: E402
from bench.fixed_rate import fixed_rate  # noqa: E402
from gateway.ports import free_port, wait_for_port  # noqa: E402

BODY = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
        "name": "add",
        "arguments": {"a": 1, "b": 2},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    },
}


LOAD: list[str] = []  # command prefix pinning the load side (wrk) to its CPUs (--pin)
TESTED: list[str] = []  # command prefix pinning the proxies under test to theirs


def pin(enabled: bool) -> str:
    """Split the CPUs: the proxies under test (nginx, gateway, bare proxy) on the last one, the load generator,
    the upstream and this script on the others, so load and subject do not steal each other's time slices."""
    cpus = sorted(os.sched_getaffinity(0))
    if not enabled or len(cpus) < 2 or shutil.which("taskset") is None:
        return "not pinned"
    tested, load = str(cpus[-1]), ",".join(map(str, cpus[:-1]))
    LOAD[:], TESTED[:] = ["taskset", "-c", load], ["taskset", "-c", tested]
    os.sched_setaffinity(0, set(cpus[:-1]))  # this script (SSE and OAuth clients) and the upstream it starts
    return f"proxies on CPU {tested}, load generator and upstream on CPU {load}"


def mcp_headers(token: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "add",
        "Authorization": f"Bearer {token}",
    }


def wrk(
    url: str, token: str, connections: int, duration: int, work: Path, rate: int | None = None
) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) for the MCP POST; with `rate`, each connection waits an exponentially
    distributed pause after each answer (wrk's delay() hook) so that all of them together send about `rate`
    requests per second, like independent clients (wrk2 is not packaged in Debian)."""
    script = work / "post.lua"
    headers = mcp_headers(token)
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(BODY))}"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    if rate is not None:  # each connection pauses an exponential time: independent clients, not lockstep
        mean = 1000 * connections / rate
        lines.append(f"function delay() return math.floor(-math.log(1 - math.random()) * {mean:.3f}) end")
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        [
            *LOAD,
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} non-2xx answers; fix the setup before comparing")
    return rps, _ms(out, "50%"), _ms(out, "99%")


def _ms(out: str, pct: str) -> float:
    value, unit = re.search(rf"{pct}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def ensure_tools(tools: tuple[str, ...]) -> None:
    """Install what is missing from Debian's packages (as root, with apt-get), saying so; else explain."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(f"{' '.join(missing)} not installed; on Debian: sudo apt-get install {' '.join(missing)}")
    print(f"installing {' '.join(missing)} from Debian's packages (apt-get)...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def rss_kib(pid: int) -> int:
    """Resident memory of `pid` and its children (the workers of `serve --workers N`), KiB."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1])
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += rss_kib(int(child))
    return total


async def sse_probe(
    url: str, token: str, count: int, pid: int | None, listen: float = 4.0
) -> tuple[float, int, list[float], int]:
    """Open `count` SSE streams (200 at a time, each must answer 200), then listen to all of them for `listen`
    seconds: (seconds to open them, RSS growth of `pid` in KiB, delays in ms from the upstream's send time to
    arrival, one per event, RSS of `pid` with all streams open in KiB)."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None, sock_read=None)
    )
    responses: list[aiohttp.ClientResponse] = []
    delays: list[float] = []
    before = rss_kib(pid) if pid else 0

    async def one() -> None:
        response = await session.get(url, headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"})
        if response.status != 200:  # (a refused stream must not pass for an open one)
            raise SystemExit(f"stream refused: {response.status} {await response.text()}")
        responses.append(response)

    async def listen_to(response: aiohttp.ClientResponse) -> None:
        async for line in response.content:
            if line.startswith(b"data:"):
                delays.append((time.time() - json.loads(line[5:])["params"]["t"]) * 1000)

    try:
        started = time.monotonic()
        for batch in range(0, count, 200):
            await asyncio.gather(*(one() for _ in range(min(200, count - batch))))
        opened = time.monotonic() - started
        total = rss_kib(pid) if pid else 0
        grown = total - before if pid else 0
        readers = [asyncio.ensure_future(listen_to(r)) for r in responses]
        await asyncio.sleep(1.5)  # skip the first event of each (sent at connect time, queued while opening)
        delays.clear()
        await asyncio.sleep(listen)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        return opened, grown, sorted(delays), total
    finally:
        for response in responses:
            response.close()
        await session.close()


def _pct(values: list[float], pct: float) -> float:
    return values[min(len(values) - 1, int(len(values) * pct))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--redis-url", default=None, help="default: the embedded store")
    parser.add_argument("--no-limits", action="store_true", help="rate limits off (no Redis round trip per request)")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument("--rate", type=int, default=500, help="requests/s of the fixed-rate latency run")
    parser.add_argument("--skip-oauth", action="store_true", help="skip the OAuth flows/refreshes measurement")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="proxies under test on the last CPU, everything else on "
        "the others (taskset): less noise on a small machine",
    )
    args = parser.parse_args()
    ensure_tools(("nginx", "wrk"))
    placement = pin(args.pin)

    work = Path(tempfile.mkdtemp(prefix="mcpgw-compare-"))
    up, ngx, gw, bare = free_port(), free_port(), free_port(), free_port()
    (work / "logs").mkdir()
    (work / "nginx.conf").write_text(
        f"worker_processes 1;\nerror_log {work}/logs/error.log;\npid {work}/nginx.pid;\n"
        "events { worker_connections 4096; }\n"
        f"http {{ access_log off; upstream u {{ server 127.0.0.1:{up}; keepalive 64; }}\n"
        f"  server {{ listen 127.0.0.1:{ngx}; location / {{ proxy_pass http://u; proxy_http_version 1.1;\n"
        '    proxy_set_header Connection ""; proxy_buffering off; } } }\n'
    )
    store = f"url: {args.redis_url}" if args.redis_url else f"data_dir: {work / 'data'}"
    config = work / "gateway.yaml"
    config.write_text(
        f"public_url: http://127.0.0.1:{gw}\nlisten: {{host: 127.0.0.1, port: {gw}, metrics_port: null, "
        f"max_connections_per_ip: 0}}\n"
        f"store: {{{store}, key_prefix: compare-{os.getpid()}}}\naudit: {{path: '-'}}\n"
        + (
            "rate_limits: {oauth_per_ip: null, mcp_per_user: null, tool_calls_per_user: null}\n"
            if args.no_limits
            else "rate_limits: {oauth_per_ip: null, mcp_per_user: {limit: 100000000}, "
            "tool_calls_per_user: {limit: 100000000}}\n"
        )
        + f"routes:\n  - {{name: bench, path: /mcp, upstream: 'http://127.0.0.1:{up}/mcp'}}\n"
    )
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    cli = [sys.executable, "-m", "gateway"]
    processes = [
        subprocess.Popen([sys.executable, str(REPO / "bench" / "fast_upstream.py"), str(up)], **quiet),
        subprocess.Popen(
            [*TESTED, "nginx", "-p", str(work), "-c", str(work / "nginx.conf"), "-g", "daemon off;"], **quiet
        ),
        subprocess.Popen(
            [*TESTED, *cli, "serve", "-c", str(config), "--log-level", "warning", "--workers", str(args.workers)],
            cwd=REPO,
            **quiet,
        ),
        subprocess.Popen(
            [*TESTED, sys.executable, str(REPO / "bench" / "bare_proxy.py"), str(bare), f"http://127.0.0.1:{up}/mcp"],
            **quiet,
        ),
    ]
    try:
        for port, process in zip((up, ngx, gw, bare), processes, strict=True):
            wait_for_port(port, process)
        subprocess.run(
            [*cli, "users", "add", "bench", "--password-stdin", "-c", str(config)],
            input=b"bench-password\n",
            check=True,
            capture_output=True,
            cwd=REPO,
        )
        token = subprocess.run(
            [*cli, "tokens", "issue", "--user", "bench", "--route", "bench", "--ttl", "1h", "-c", str(config)],
            check=True,
            capture_output=True,
            text=True,
            cwd=REPO,
        ).stdout.strip()
        targets = {
            "direct": f"http://127.0.0.1:{up}/mcp",
            "nginx": f"http://127.0.0.1:{ngx}/mcp",
            "gateway": f"http://127.0.0.1:{gw}/mcp",
            "bare": f"http://127.0.0.1:{bare}/mcp",
        }
        print(
            f"MCP POST, wrk {args.duration}s per run; store: {args.redis_url or 'embedded'}; rate limits "
            f"{'off' if args.no_limits else 'on'}; {placement}",
            flush=True,
        )
        rows = {}
        for name, url in targets.items():
            wrk(url, token, 4, 2, work)  # warm-up
            rows[name] = (
                wrk(url, token, args.connections, args.duration, work),
                wrk(url, token, 1, args.duration, work),
                wrk(url, token, 10, args.duration, work, rate=args.rate),
            )
            print(f"  measured {name}", flush=True)
        print(
            f"\n{'path':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}   {'1-conn p50':>10} {'1-conn p99':>10}   "
            f"{'paced req/s':>11} {'p50 ms':>7} {'p99 ms':>7}"
        )
        for name, ((rps, p50, p99), (_, s50, s99), (prps, f50, f99)) in rows.items():
            print(
                f"{name:<8} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f}   {s50:>10.3f} {s99:>10.3f}   "
                f"{prps:>11.0f} {f50:>7.3f} {f99:>7.3f}"
            )
        (g, gs, gf), (n, ns, nf), (d, ds, df) = rows["gateway"], rows["nginx"], rows["direct"]
        b = rows["bare"][0]
        print(
            f"\ngateway throughput: {g[0] / d[0]:.2f}x direct, {g[0] / n[0]:.2f}x nginx; the bare aiohttp proxy "
            f"(bench/bare_proxy.py: no auth, no policy, the stack's floor) {b[0] / n[0]:.2f}x nginx, the gateway "
            f"{g[0] / b[0]:.2f}x of it"
        )
        print(
            f"added latency, one connection: gateway p50 +{gs[1] - ds[1]:.3f} ms, p99 +{gs[2] - ds[2]:.3f} ms; "
            f"nginx p50 +{ns[1] - ds[1]:.3f} ms, p99 +{ns[2] - ds[2]:.3f} ms"
        )
        print(
            f"added latency at ~{args.rate} req/s (10 paced connections): gateway p50 +{gf[1] - df[1]:.3f} ms, "
            f"p99 +{gf[2] - df[2]:.3f} ms; nginx p50 +{nf[1] - df[1]:.3f} ms, p99 +{nf[2] - df[2]:.3f} ms"
        )
        print(
            f"\nopen loop at {args.rate} req/s for {args.duration}s each (bench/fixed_rate.py: latency from "
            "each request's scheduled start)...",
            flush=True,
        )
        fixed = {
            name: asyncio.run(fixed_rate(url, mcp_headers(token), json.dumps(BODY).encode(), args.rate, args.duration))
            for name, url in targets.items()
        }
        print(f"{'path':<8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'failed':>6}")
        for name, (achieved, p50, p99, failed) in fixed.items():
            print(f"{name:<8} {achieved:>7.0f} {p50:>7.3f} {p99:>7.3f} {failed:>6}")
        print(
            f"added at {args.rate} req/s, open loop: gateway p50 {fixed['gateway'][1] - fixed['direct'][1]:+.3f} ms, "
            f"p99 {fixed['gateway'][2] - fixed['direct'][2]:+.3f} ms; nginx p50 "
            f"{fixed['nginx'][1] - fixed['direct'][1]:+.3f} ms, p99 {fixed['nginx'][2] - fixed['direct'][2]:+.3f} ms"
        )
        if not args.skip_oauth:
            print("\nOAuth: sign-in flows, then returning-user flows and refreshes...", flush=True)
            rates = asyncio.run(
                oauth_rates.measure(
                    targets["gateway"].removesuffix("/mcp"),
                    targets["gateway"],
                    "bench",
                    "bench-password",
                    args.duration,
                )
            )
            print("\n" + oauth_rates.report(rates, 16), flush=True)

        print(f"\nSSE: opening {args.streams} streams directly, then through the gateway...", flush=True)
        direct_sse = asyncio.run(sse_probe(targets["direct"], token, args.streams, None))
        gateway_sse = asyncio.run(sse_probe(targets["gateway"], token, args.streams, processes[2].pid))
        opened, grown, delays, total = gateway_sse
        added50 = _pct(delays, 0.5) - _pct(direct_sse[2], 0.5)
        added99 = _pct(delays, 0.99) - _pct(direct_sse[2], 0.99)
        print(
            f"\nSSE: {args.streams} streams opened through the gateway in {opened:.1f}s (direct: "
            f"{direct_sse[0]:.1f}s); gateway RSS {total / 1024:.0f} MiB in all, +{grown / 1024:.1f} MiB, "
            f"{grown / args.streams:.1f} KiB per "
            f"stream (10,000 streams: ~{grown * 10_000 / args.streams / 1024:.0f} MiB); event delay with all "
            f"streams open: p50 {_pct(delays, 0.5):.2f} ms, p99 {_pct(delays, 0.99):.2f} ms ({len(delays)} "
            f"events), added over direct p50 {added50:+.2f} ms, p99 {added99:+.2f} ms"
        )
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
