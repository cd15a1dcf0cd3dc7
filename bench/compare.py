"""Gateway vs nginx vs direct, one run, one load generator (wrk); plus SSE streams and OAuth rates.

    python bench/compare.py [--duration 10] [--connections 32] [--rate 500] [--streams 2000] [--redis-url URL]
                            [--no-limits] [--workers N] [--skip-oauth] [--pin] [--rounds N]

Starts bench/fast_upstream.py, nginx (`proxy_pass`, keepalive upstream), `mcp-auth-gateway serve` in front of
it, bench/bare_proxy.py (aiohttp relaying with aiohttp's client and nothing else: "bare") and the same relay on
the gateway's own upstream pool ("floor": aiohttp's server and the gateway's upstream leg, nothing between
them), issues a
service token (bench/stack.py), and drives the same authenticated MCP POST at each with wrk: at saturation
(--connections; with the CPU each proxy's processes spent per completed request), with one connection (added
latency per request), and paced at about --rate requests/s (wrk's delay() hook; wrk2 is not packaged). Then
exactly --rate requests/s open loop (bench/fixed_rate.py), the OAuth rates (bench/oauth_rates.py: sign-in flow
latency, returning-user flows/s, refreshes/s), and --streams SSE streams directly and through the gateway
(bench/sse_probe.py): the gateway's RSS growth per stream, the delay of each event from the upstream's send
time with all streams open, and whether every stream got every event. Last, issue 11's targets with a verdict
each (bench/targets.py). Needs nginx and wrk: installed from Debian's packages when missing (as root). Compare
ratios within one run. On a shared machine whose speed drifts within minutes, `--rounds 3` runs the closed-loop
measurements three times per path, interleaved, and reports each figure's median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench import oauth_rates, targets  # noqa: E402
from bench.fixed_rate import fixed_rate  # noqa: E402
from bench.measure import WrkRun, descriptor_limit, loaded, tree, wrk  # noqa: E402
from bench.sse_probe import SseRun, sse_probe  # noqa: E402
from bench.stack import BODY, Stack, ensure_tools, mcp_headers, pin, started  # noqa: E402

Rows = dict[str, tuple[WrkRun, WrkRun, WrkRun]]  # per path: saturation, one connection, paced


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--redis-url", default=None, help="default: the embedded store")
    parser.add_argument("--no-limits", action="store_true", help="rate limits off (no Redis round trip per request)")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument("--rate", type=int, default=500, help="requests/s of the fixed-rate latency run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="closed-loop runs per path, interleaved (each round visits every path); figures are medians",
    )
    parser.add_argument("--skip-oauth", action="store_true", help="skip the OAuth flows/refreshes measurement")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="proxies under test on the last CPU, everything else on "
        "the others (taskset): less noise on a small machine",
    )
    return parser.parse_args()


def closed_loop(stack: Stack, args: argparse.Namespace, work: Path) -> tuple[Rows, dict[str, float]]:
    """wrk at each path: saturation (and the CPU µs its processes spent per completed request meanwhile), one
    connection, paced; printed as a table with the ratios."""
    names = list(stack.urls)
    runs: dict[str, list[tuple[WrkRun, WrkRun, WrkRun, float]]] = {name: [] for name in names}
    for turn in range(args.rounds):  # each round visits every path, starting one further along each time
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            url = stack.urls[name]
            wrk(url, stack.token, 4, 2, work)  # warm-up
            saturated, spent = loaded(
                url, stack.token, args.connections, args.duration, work, stack.processes[name].pid
            )
            one = wrk(url, stack.token, 1, args.duration, work)
            runs[name].append((saturated, one, wrk(url, stack.token, 10, args.duration, work, rate=args.rate), spent))
            print(
                f"  measured {name}" + (f" (round {turn + 1} of {args.rounds})" if args.rounds > 1 else ""), flush=True
            )
    rows: Rows = {
        name: (_median(r[0] for r in runs[name]), _median(r[1] for r in runs[name]), _median(r[2] for r in runs[name]))
        for name in names
    }
    cpu = {name: statistics.median(r[3] for r in runs[name]) for name in names}
    print(
        f"\n{'path':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>10}   {'1-conn p50':>10} "
        f"{'1-conn p99':>10}   {'paced req/s':>11} {'p50 ms':>7} {'p99 ms':>7}"
    )
    for name, (sat, one, paced) in rows.items():
        print(
            f"{name:<8} {sat.rps:>9.0f} {sat.p50:>8.2f} {sat.p99:>8.2f} {cpu[name]:>10.0f}   {one.p50:>10.3f} "
            f"{one.p99:>10.3f}   {paced.rps:>11.0f} {paced.p50:>7.3f} {paced.p99:>7.3f}"
        )
    (g, gs, gf), (n, ns, nf), (d, ds, df) = rows["gateway"], rows["nginx"], rows["direct"]
    b = rows["bare"][0]
    print(
        f"\ngateway throughput: {g.rps / d.rps:.2f}x direct, {g.rps / n.rps:.2f}x nginx; the bare aiohttp proxy "
        f"(bench/bare_proxy.py: no auth, no policy, the stack's floor) {b.rps / n.rps:.2f}x nginx, the gateway "
        f"{g.rps / b.rps:.2f}x of it"
    )
    f, fs = rows["floor"][0], rows["floor"][1]
    print(
        f"the floor as the gateway is now built (bench/bare_proxy.py --pool: aiohttp's server and the gateway's "
        f"upstream pool, nothing between them): {f.rps / n.rps:.2f}x nginx, {cpu['floor']:.0f} µs CPU per request, "
        f"one connection p50 {fs.p50 - ds.p50:+.3f} ms, p99 {fs.p99 - ds.p99:+.3f} ms"
    )
    r, rs = rows["raw"][0], rows["raw"][1]
    print(
        f"the floor without aiohttp's server (bench/bare_proxy.py --raw: httptools parsing requests, the gateway's "
        f"pool, one pre-encoded write per answer): {r.rps / n.rps:.2f}x nginx, {cpu['raw']:.0f} µs CPU per request, "
        f"one connection p50 {rs.p50 - ds.p50:+.3f} ms, p99 {rs.p99 - ds.p99:+.3f} ms"
    )
    print(
        f"CPU per proxied request at {args.connections} connections (process and children, /proc): gateway "
        f"{cpu['gateway']:.0f} µs, bare relay {cpu['bare']:.0f} µs ({cpu['gateway'] / cpu['bare']:.2f}x), nginx "
        f"{cpu['nginx']:.0f} µs; the upstream alone (direct) {cpu['direct']:.0f} µs"
    )
    print(
        f"added latency, one connection: gateway p50 {gs.p50 - ds.p50:+.3f} ms, p99 {gs.p99 - ds.p99:+.3f} ms; "
        f"nginx p50 {ns.p50 - ds.p50:+.3f} ms, p99 {ns.p99 - ds.p99:+.3f} ms"
    )
    print(
        f"added latency at ~{args.rate} req/s (10 paced connections): gateway p50 {gf.p50 - df.p50:+.3f} ms, "
        f"p99 {gf.p99 - df.p99:+.3f} ms; nginx p50 {nf.p50 - df.p50:+.3f} ms, p99 {nf.p99 - df.p99:+.3f} ms"
    )
    return rows, cpu


def _median(runs: Iterable[WrkRun]) -> WrkRun:
    """Each figure's median over the rounds (figure by figure: not one round's)."""
    listed = list(runs)
    return WrkRun(*(statistics.median(run[i] for run in listed) for i in range(len(WrkRun._fields))))


def open_loop(stack: Stack, args: argparse.Namespace) -> dict[str, tuple[float, float, float, int]]:
    print(
        f"\nopen loop at {args.rate} req/s for {args.duration}s each (bench/fixed_rate.py: latency from "
        "each request's scheduled start)...",
        flush=True,
    )
    body = json.dumps(BODY).encode()
    fixed = {
        name: asyncio.run(fixed_rate(url, mcp_headers(stack.token), body, args.rate, args.duration))
        for name, url in stack.urls.items()
    }
    print(f"{'path':<8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'failed':>6}")
    for name, (achieved, p50, p99, failed) in fixed.items():
        print(f"{name:<8} {achieved:>7.0f} {p50:>7.3f} {p99:>7.3f} {failed:>6}")
    print(
        f"added at {args.rate} req/s, open loop: gateway p50 {fixed['gateway'][1] - fixed['direct'][1]:+.3f} ms, "
        f"p99 {fixed['gateway'][2] - fixed['direct'][2]:+.3f} ms; nginx p50 "
        f"{fixed['nginx'][1] - fixed['direct'][1]:+.3f} ms, p99 {fixed['nginx'][2] - fixed['direct'][2]:+.3f} ms"
    )
    return fixed


def streams(stack: Stack, args: argparse.Namespace) -> SseRun:
    """--streams SSE streams directly, then through the gateway; the gateway's memory per stream, event delays."""
    gateway = stack.processes["gateway"].pid
    limits = {pid: descriptor_limit(pid) for pid in tree(gateway) if descriptor_limit(pid)}
    need = 2 * args.streams // args.workers + 100  # per process: the client's and the upstream's socket
    print(
        f"\nSSE: opening {args.streams} streams directly, then through the gateway (its descriptor limit: "
        f"{', '.join(map(str, sorted(set(limits.values()))))})...",
        flush=True,
    )
    if any(limit < need for limit in limits.values()):
        print(f"  (about {need} descriptors per gateway process needed: expect refused streams)", flush=True)
    direct = asyncio.run(sse_probe(stack.urls["direct"], stack.token, args.streams, None))
    run = asyncio.run(sse_probe(stack.urls["gateway"], stack.token, args.streams, gateway))
    print(
        f"\nSSE: {args.streams} streams opened through the gateway in {run.opened:.1f}s (direct: "
        f"{direct.opened:.1f}s); gateway RSS {run.total / 1024:.0f} MiB in all, +{run.grown / 1024:.1f} MiB, "
        f"{run.per_stream():.1f} KiB per stream (10,000 streams: ~{run.per_stream() * 10_000 / 1024:.0f} MiB); "
        f"event delay with all streams open: p50 {run.pct(0.5):.2f} ms, p99 {run.pct(0.99):.2f} ms "
        f"({len(run.delays)} events), added over direct p50 {run.pct(0.5) - direct.pct(0.5):+.2f} ms, p99 "
        f"{run.pct(0.99) - direct.pct(0.99):+.2f} ms; events per stream in {run.listen:.0f}s: fewest "
        f"{min(run.events, default=0)} (direct {min(direct.events, default=0)}), {run.failed} streams ended early"
    )
    return run


def main() -> None:
    args = parse_args()
    ensure_tools(("nginx", "wrk"))
    placement = pin(args.pin)
    work = Path(tempfile.mkdtemp(prefix="mcpgw-compare-"))
    with started(work, redis_url=args.redis_url, limits=not args.no_limits, workers=args.workers) as stack:
        print(
            f"MCP POST, wrk {args.duration}s per run"
            + (f", {args.rounds} interleaved rounds (medians)" if args.rounds > 1 else "")
            + f"; store: {args.redis_url or 'embedded'}; rate limits "
            f"{'off' if args.no_limits else 'on'}; {args.workers} gateway worker(s); {placement}",
            flush=True,
        )
        rows, cpu = closed_loop(stack, args, work)
        fixed = open_loop(stack, args)
        if not args.skip_oauth:
            print("\nOAuth: sign-in flows, then returning-user flows and refreshes...", flush=True)
            gateway = stack.urls["gateway"]
            rates = asyncio.run(
                oauth_rates.measure(gateway.removesuffix("/mcp"), gateway, "bench", "bench-password", args.duration)
            )
            print("\n" + oauth_rates.report(rates, 16), flush=True)
        sse = streams(stack, args)
    (g, gs, _), (n, _, _), (_, ds, _) = rows["gateway"], rows["nginx"], rows["direct"]
    figures = {
        targets.THROUGHPUT: g.rps / n.rps,
        targets.CPU: cpu["gateway"] / cpu["bare"],
        targets.ONE_P50: gs.p50 - ds.p50,
        targets.ONE_P99: gs.p99 - ds.p99,
        targets.OPEN_P99: fixed["gateway"][2] - fixed["direct"][2],
        targets.SSE_KIB: sse.per_stream(),
    }
    expected = int(sse.listen - 1)
    print("\n" + targets.summary(figures, sse.lossless, args.streams, (min(sse.events, default=0), expected)))
    if args.rate != 500:
        print(f"  (the open loop ran at --rate {args.rate} req/s, not the target's 500: that line is indicative only)")


if __name__ == "__main__":
    main()
