"""What tracing costs: the same tools/call through the gateway with tracing off and on, and (with --baseline) through
another checkout of the gateway (the commit before tracing existed, say), measured in alternating rounds of one run.

    python bench/tracing_overhead.py [--baseline DIR] [--rounds 5] [--requests 3000] [--concurrency 16]
                                     [--redis-url redis://127.0.0.1:6379/0]

Each gateway is `serve` in front of bench/fast_upstream.py, configured as bench/stack.py configures every benchmark;
"on" has OTEL_EXPORTER_OTLP_ENDPOINT naming an OTLP/HTTP sink on loopback (a process answering 200 to every
export) and samples every request (the SDK's default); "on-request" the same with `tracing.step_spans: false` (the
request's span and the upstream's only); "on-10%" samples one request in ten (OTEL_TRACES_SAMPLER=traceidratio).
The rounds alternate the variants so that the machine's drift lands on all of them alike; the report gives the
median of the rounds of each variant's CPU time per request (its process's user + system time, from /proc: what
other load on the machine moves least; and its lowest round), throughput and median latency, and the CPU ratios
to the first variant ("off").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.proxy_overhead import measure, pct  # noqa: E402
from bench.stack import QUIET, add_user, gateway_config, issue_token  # noqa: E402
from gateway.ports import free_port, wait_for_port  # noqa: E402

SINK = """
import sys
from aiohttp import web
async def take(request):
    await request.read()
    return web.Response(content_type="application/x-protobuf", body=b"")
app = web.Application(client_max_size=64 * 1024 * 1024)
app.router.add_post("/v1/traces", take)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
OTEL = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="another checkout of the gateway, measured with tracing off")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--variants", help="comma-separated subset, e.g. off,baseline")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mcpgw-tracing-"))
    upstream_port, sink_port = free_port(), free_port()
    plain = {k: v for k, v in os.environ.items() if k not in OTEL}
    variants: dict[str, tuple[Path, dict[str, str]]] = {
        "off": (REPO, plain),
        "on": (REPO, {**plain, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"}),
    }
    endpoint = {**plain, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"}
    variants["on-request"] = (REPO, {**endpoint, "MCP_GATEWAY_TRACING__STEP_SPANS": "false"})
    variants["on-10%"] = (REPO, {**endpoint, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"})
    if args.baseline is not None:
        variants["baseline"] = (args.baseline.resolve(), plain)
    if args.variants:
        variants = {name: variants[name] for name in args.variants.split(",")}
    processes = [
        subprocess.Popen([sys.executable, str(REPO / "bench" / "fast_upstream.py"), str(upstream_port)], **QUIET),
        subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)], **QUIET),
    ]
    urls: dict[str, str] = {}
    pids: dict[str, int] = {}
    try:
        wait_for_port(upstream_port, processes[0])
        wait_for_port(sink_port, processes[1])
        tokens: dict[str, str] = {}
        for name, (tree, env) in variants.items():
            port = free_port()
            config = work / f"{name}.yaml"
            # one key prefix for all: one user for every variant
            config.write_text(gateway_config(port, upstream_port, work, args.redis_url, True))
            command = [sys.executable, "-m", "gateway", "serve", "-c", str(config), "--log-level", "warning"]
            environment = {**env, "PYTHONPATH": str(tree)}
            processes.append(subprocess.Popen(command, cwd=tree, env=environment, **QUIET))
            wait_for_port(port, processes[-1])
            if not tokens:
                add_user(config)
            tokens[name] = issue_token(config)  # (each gateway is its own issuer and audience)
            urls[name] = f"http://127.0.0.1:{port}/mcp"
            pids[name] = processes[-1].pid
        print(f"{args.rounds} rounds of {args.requests} tools/call, concurrency {args.concurrency}", flush=True)
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in urls}
        for round_ in range(args.rounds):
            for name, url in urls.items() if round_ % 2 == 0 else reversed(urls.items()):
                before = cpu_seconds(pids[name])
                latencies, rps = asyncio.run(measure(url, tokens[name], args.requests, args.concurrency))
                cpu = (cpu_seconds(pids[name]) - before) / (args.requests + 50) * 1e6  # (its warm-up included)
                results[name].append((rps, pct(latencies, 0.5), cpu))
            print(f"  round {round_ + 1}: " + ", ".join(f"{n} {r[-1][2]:.0f} µs" for n, r in results.items()))
        # CPU time of the gateway's process per request: what the machine's other load barely moves (req/s does)
        print(f"{'variant':<11} {'CPU µs/req':>10} {'vs off':>7} {'lowest':>7} {'req/s':>8} {'p50 ms':>8}")
        off = statistics.median(c for _, _, c in results[next(iter(results))])
        for name, rows in results.items():
            cpu = statistics.median(c for _, _, c in rows)
            rps = statistics.median(r for r, _, _ in rows)
            p50 = statistics.median(p for _, p, _ in rows)
            lowest = min(c for _, _, c in rows)  # (the round least disturbed by the rest of the machine)
            print(f"{name:<11} {cpu:>10.0f} {cpu / off:>6.3f}x {lowest:>7.0f} {rps:>8.0f} {p50:>8.2f}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
