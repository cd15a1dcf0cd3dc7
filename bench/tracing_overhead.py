"""What tracing costs: the same tools/call through the gateway with tracing off and on, and (with --baseline) through
another checkout of the gateway (the commit before tracing existed, say), measured in alternating rounds of one run.

    python bench/tracing_overhead.py [--baseline DIR] [--rounds 5] [--requests 3000] [--concurrency 16]
                                     [--redis-url redis://127.0.0.1:6379/0]

Each gateway is `serve` in front of bench/fast_upstream.py, configured as bench/stack.py configures every benchmark;
"on" has OTEL_EXPORTER_OTLP_ENDPOINT naming an OTLP/HTTP sink on loopback (a process answering 200 to every
export) and samples every request (the SDK's default); "on-request" the same with `tracing.step_spans: false` (the
request's span and the upstream's only); "on-10%" samples one request in ten (OTEL_TRACES_SAMPLER=traceidratio).
The rounds alternate the variants so that the machine's drift lands on all of them alike; the report gives the
median of the rounds and the ratios to "off".
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="another checkout of the gateway, measured with tracing off")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
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
    processes = [
        subprocess.Popen([sys.executable, str(REPO / "bench" / "fast_upstream.py"), str(upstream_port)], **QUIET),
        subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)], **QUIET),
    ]
    urls: dict[str, str] = {}
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
        print(f"{args.rounds} rounds of {args.requests} tools/call, concurrency {args.concurrency}", flush=True)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in urls}
        for round_ in range(args.rounds):
            for name, url in urls.items() if round_ % 2 == 0 else reversed(urls.items()):
                latencies, rps = asyncio.run(measure(url, tokens[name], args.requests, args.concurrency))
                results[name].append((rps, pct(latencies, 0.5)))
            print(f"  round {round_ + 1}: " + ", ".join(f"{n} {r[-1][0]:.0f}/s" for n, r in results.items()))
        print(f"{'variant':<9} {'req/s':>8} {'p50 ms':>8} {'vs off':>8}")
        off = statistics.median(r for r, _ in results["off"])
        for name, rows in results.items():
            rps = statistics.median(r for r, _ in rows)
            p50 = statistics.median(p for _, p in rows)
            print(f"{name:<9} {rps:>8.0f} {p50:>8.2f} {rps / off:>7.3f}x")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
