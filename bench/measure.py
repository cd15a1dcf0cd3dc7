"""What the benchmarks read: wrk's figures for the MCP POST, and a process tree's CPU time, memory and
descriptor limit from /proc (a process and its children: the workers of `serve --workers N`, nginx's worker).

CPU per request is the CPU time the process tree used during a wrk run divided by the requests wrk completed
in it: the figure the issue's target compares (gateway vs the bare aiohttp relay in the same run), which
latency and throughput on a shared two-core machine hide.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import NamedTuple

from bench.stack import BODY, LOAD, mcp_headers

TICK = 1 / os.sysconf("SC_CLK_TCK")  # seconds per clock tick of /proc/<pid>/stat


class WrkRun(NamedTuple):
    rps: float
    p50: float  # ms
    p99: float  # ms
    requests: int  # completed in the run


def wrk_script(token: str, connections: int, rate: int | None, work: Path) -> Path:
    """The Lua script posting BODY; with `rate`, each connection waits an exponentially distributed pause after
    each answer (wrk's delay() hook) so that all of them together send about `rate` requests per second, like
    independent clients (wrk2 is not packaged in Debian)."""
    script = work / ("post.lua" if rate is None else f"post-{rate}-{connections}.lua")
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(BODY))}"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in mcp_headers(token).items()]
    if rate is not None:  # each connection pauses an exponential time: independent clients, not lockstep
        mean = 1000 * connections / rate
        lines.append(f"function delay() return math.floor(-math.log(1 - math.random()) * {mean:.3f}) end")
    script.write_text("\n".join(lines) + "\n")
    return script


def wrk_command(
    url: str, token: str, connections: int, duration: int, work: Path, rate: int | None = None
) -> list[str]:
    script = wrk_script(token, connections, rate, work)
    return [
        *LOAD,
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]


def parse_wrk(url: str, out: str) -> WrkRun:
    """wrk's report as figures; a run with non-2xx answers stops the benchmark (a refusal is not a result)."""
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} non-2xx answers; fix the setup before comparing")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return WrkRun(rps, _ms(out, "50%"), _ms(out, "99%"), requests)


def wrk(url: str, token: str, connections: int, duration: int, work: Path, rate: int | None = None) -> WrkRun:
    command = wrk_command(url, token, connections, duration, work, rate)
    return parse_wrk(url, subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def _ms(out: str, pct: str) -> float:
    value, unit = re.search(rf"{pct}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc/<pid>/task/*/children); a process gone meanwhile is left out."""
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                pids += tree(int(child))
    except (FileNotFoundError, ProcessLookupError):
        return []
    return pids


def rss_kib(pid: int) -> int:
    """Resident memory of `pid` and its children, KiB."""
    total = 0
    for one in tree(pid):
        for line in _read(f"/proc/{one}/status").splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by `pid` and its living children, seconds."""
    ticks = 0
    for one in tree(pid):
        stat = _read(f"/proc/{one}/stat")
        if stat:  # fields after "(comm)", which may hold spaces: state is field 3, utime 14, stime 15
            fields = stat[stat.rfind(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks * TICK


def descriptor_limit(pid: int) -> int:
    """The soft RLIMIT_NOFILE of a running process (/proc/<pid>/limits), 0 when it cannot be read."""
    for line in _read(f"/proc/{pid}/limits").splitlines():
        if line.startswith("Max open files"):
            soft = line.split()[3]
            return int(soft) if soft.isdigit() else 1 << 62  # "unlimited"
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def loaded(url: str, token: str, connections: int, duration: int, work: Path, pid: int) -> tuple[WrkRun, float]:
    """A saturating wrk run and the CPU µs per completed request that the process tree `pid` spent on it."""
    before = cpu_seconds(pid)
    run = wrk(url, token, connections, duration, work)
    return run, (cpu_seconds(pid) - before) * 1e6 / max(1, run.requests)
