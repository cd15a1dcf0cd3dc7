"""Where the gateway's CPU goes per proxied request, by stage, measured under load (issue 11's budget table).

    python bench/stages.py [--duration 10] [--connections 32] [--rate 500] [--redis-url URL] [--workers N]
                           [--no-limits] [--blocking] [--raw FILE] [--unattributed 8]

Starts bench/fast_upstream.py and the gateway exactly as bench/compare.py does (bench/stack.py: limits, audit,
metrics and the token cache on), drives wrk at --connections, and meanwhile samples the gateway with py-spy
(--rate samples per second, Python frames only, only while holding the GIL: the samples follow the CPU time of
the event loop's thread; an idle thread pool waiting on its queue would otherwise count). Each sample goes to
the stage of its innermost frame that STAGES below names; the stage's share of the samples times the CPU µs per
request of the same run (utime+stime of the gateway's processes over the requests wrk completed) is that
stage's cost per request. An unprofiled run of the same length comes first: the two CPU figures show what
sampling costs (py-spy reads the process without pausing it unless --blocking; pausing at 500 Hz added about
40 % of CPU time in a trial). Needs py-spy (in the venv) and ptrace rights (root). Redis's own CPU is not in
the figures (the embedded server is not the gateway's child).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.measure import cpu_seconds, loaded, parse_wrk, wrk, wrk_command  # noqa: E402
from bench.stack import ensure_tools, started  # noqa: E402

# Frames are py-spy's "function (package/file.py:line)". For each sample the frames are read innermost first;
# the first frame that a row matches (file pattern, and function pattern where given) names the stage, rows
# tried top to bottom. Adjust here when modules are renamed; OTHER takes what no row names.
OTHER = "event loop, other"
_CLIENT = r"gateway/proxy/(http1|pool)\.py|aiohttp/(client|client_reqrep|client_proto|connector)\.py"
_STEPS = r"gateway/web/mcp_steps\.py"  # the MCP route's steps, each named for its stage
STAGES: list[tuple[str, str, str | None]] = [
    ("bearer", _STEPS, r"^(bearer|resumption)$"),
    ("policy", _STEPS, r"^inspection$"),
    ("audit", _STEPS, r"^_describe"),
    ("limiter", _STEPS, r"^limits$"),
    ("body", _STEPS, r"^body$"),
    ("upstream write", _STEPS, r"^(upstream|_track_session)$"),
    ("bearer", r"gateway/web/bearer\.py|gateway/oauth/bearer\w*\.py|gateway/token_cache\.py", None),
    ("bearer", r"gateway/open_streams\.py", None),  # the token's watch for revocation, taken with the bearer check
    ("bearer", r"gateway/oauth/(resource|token_values)\.py", None),  # audience check, the token's hash
    ("policy", r"gateway/mcp/|gateway/web/mcp_policy\.py", None),
    ("limiter", r"gateway/limiter\.py|gateway/web/ratelimit\.py", None),
    ("limiter", r"gateway/", r"rate_limited"),
    ("limiter", r"gateway/store/", r"cells"),  # the cells a busy user reserves ahead (gateway/limiter.py)
    ("headers", r"gateway/proxy/header\w*\.py", None),
    ("headers", r"gateway/identity\.py", None),  # the identity headers' values, from the token's claims
    ("upstream read", _CLIENT, r"read|receiv|pars|feed|start|content|iter|chunk|eof|_returned|release|on_"),
    ("upstream write", _CLIENT, None),  # the request's building and sending, connection pool
    ("relay", r"gateway/proxy/upstream\.py", r"relay|copy|_whole|_stream|_short"),
    ("upstream write", r"gateway/proxy/upstream\.py", None),
    ("relay", r"aiohttp/web_response\.py", None),  # the answer to the client: prepare, write, write_eof
    ("audit", r"gateway/audit\.py|gateway/web/auditing\.py", None),
    ("metrics", r"gateway/metrics\.py|prometheus_client/", None),
    ("body", r"gateway/web/body\.py", None),
    ("middleware", r"gateway/web/(middleware|cors|connections|client_ip)\.py", None),
    ("server", r"aiohttp/(web_protocol|web_request|web_urldispatcher|web_app|web_server|http_parser)\.py", None),
    ("handler", r"gateway/web/mcp(_steps|_state)?\.py|gateway/routing\.py", None),  # the route's other steps
    (OTHER, r"gateway/cli\.py|asyncio/runners\.py", None),  # innermost: the loop itself (uvloop runs in C)
    ("gateway, other", r"gateway/", None),
]
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_LINE = re.compile(r":\d+\)$")
_RULES = [
    (stage, re.compile(files), re.compile(functions) if functions else None) for stage, files, functions in STAGES
]


def stage_of(frames: list[str]) -> tuple[str, str]:
    """(stage, the frame that decided it) for one sample's frames, outermost first as py-spy writes them."""
    for frame in reversed(frames):
        match = _FRAME.match(frame)
        if match is None:
            continue
        for stage, files, functions in _RULES:
            if files.search(match["file"]) and (functions is None or functions.search(match["function"])):
                return stage, frame
    return OTHER, frames[-1] if frames else "?"


def attribute(raw: str) -> tuple[Counter[str], Counter[str]]:
    """py-spy's raw (collapsed) stacks -> samples per stage, and per deciding frame of the unattributed ones."""
    stages: Counter[str] = Counter()
    unattributed: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stage, frame = stage_of(stack.split(";"))
        stages[stage] += int(count)
        if stage in (OTHER, "gateway, other"):
            unattributed[f"{stage}: {_LINE.sub(')', frame)}"] += int(count)
    return stages, unattributed


def profiled(url: str, token: str, args: argparse.Namespace, work: Path, pid: int, raw: Path) -> tuple[float, int]:
    """A wrk run with py-spy recording the gateway inside it: (CPU µs per request, requests completed)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    before = cpu_seconds(pid)
    load = subprocess.Popen(
        wrk_command(url, token, args.connections, args.duration, work), stdout=subprocess.PIPE, text=True
    )
    time.sleep(0.5)  # the connections are open and the gateway is busy before the first sample
    record = [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, args.duration - 1))]
    record += ["--rate", str(args.rate), "--format", "raw", "--output", str(raw), "--gil"]
    record += [] if args.blocking else ["--nonblocking"]
    record += ["--subprocesses"] if args.workers > 1 else []  # the workers are the supervisor's children
    subprocess.run(record, check=True, capture_output=True)
    out, _ = load.communicate()
    after = cpu_seconds(pid)
    run = parse_wrk(url, out)
    return (after - before) * 1e6 / max(1, run.requests), run.requests


def report(stages: Counter[str], unattributed: Counter[str], cpu: float, top: int) -> str:
    total = sum(stages.values()) or 1
    order = [*dict.fromkeys(stage for stage, _, _ in STAGES if stage != OTHER), OTHER]
    lines = [f"{'stage':<18} {'samples':>8} {'share':>7} {'µs/req':>7}"]
    for stage in order:
        share = stages[stage] / total
        lines.append(f"{stage:<18} {stages[stage]:>8} {share:>6.1%} {share * cpu:>7.1f}")
    lines.append(f"{'total':<18} {total:>8} {1:>6.1%} {cpu:>7.1f}")
    if top:
        lines.append(f"\nunattributed, the {top} most sampled deciding frames (extend STAGES to name them):")
        lines += [f"  {count:>6}  {frame}" for frame, count in unattributed.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk run (py-spy: 1 less)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--redis-url", default=None, help="default: the embedded store")
    parser.add_argument("--no-limits", action="store_true", help="rate limits off")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument("--blocking", action="store_true", help="py-spy pauses the gateway for each sample")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--unattributed", type=int, default=8, help="list this many unattributed frames")
    args = parser.parse_args()
    ensure_tools(("wrk",))
    work = Path(tempfile.mkdtemp(prefix="mcpgw-stages-"))
    raw = args.raw or work / "gateway.raw"
    with started(
        work, redis_url=args.redis_url, limits=not args.no_limits, workers=args.workers, references=False
    ) as stack:
        url, pid = stack.urls["gateway"], stack.processes["gateway"].pid
        wrk(url, stack.token, 4, 2, work)  # warm-up
        plain, cpu_plain = loaded(url, stack.token, args.connections, args.duration, work, pid)
        cpu, requests = profiled(url, stack.token, args, work, pid, raw)
    stages, unattributed = attribute(raw.read_text())
    print(
        f"gateway at {args.connections} connections, {args.workers} worker(s), store "
        f"{args.redis_url or 'embedded'}, rate limits {'off' if args.no_limits else 'on'}: unprofiled "
        f"{plain.rps:.0f} req/s, {cpu_plain:.0f} µs CPU per request; profiled ({args.rate} samples/s) "
        f"{requests / args.duration:.0f} req/s, {cpu:.0f} µs CPU per request (the µs below); stacks: {raw}\n"
    )
    print(report(stages, unattributed, cpu, args.unattributed))


if __name__ == "__main__":
    main()
