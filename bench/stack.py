"""The processes the benchmarks measure, started the same way for each of them (bench/compare.py, bench/stages.py).

bench/fast_upstream.py; `mcp-auth-gateway serve` in front of it with rate limits (unreachable budgets), audit and
metrics on, token cache on; and, for comparison, nginx (`proxy_pass`, keepalive upstream) and bench/bare_proxy.py
(aiohttp relaying and nothing else: the floor of the gateway's stack). One configuration for every script, so
that figures from different scripts of one run describe the same gateway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
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
CLI = [sys.executable, "-m", "gateway"]
LOAD: list[str] = []  # command prefix pinning the load side (wrk) to its CPUs (--pin)
TESTED: list[str] = []  # command prefix pinning the proxies under test to theirs
QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


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


def gateway_config(port: int, upstream: int, work: Path, redis_url: str | None, limits: bool) -> str:
    """The gateway under test: one route, audit to stdout (discarded), metrics counted (no listener needed for
    that), rate limits per user and per tool with budgets no benchmark exhausts, per-IP limits off."""
    store = f"url: {redis_url}" if redis_url else f"data_dir: {work / 'data'}"
    rate_limits = (
        "{oauth_per_ip: null, mcp_per_user: {limit: 100000000}, tool_calls_per_user: {limit: 100000000}}"
        if limits
        else "{oauth_per_ip: null, mcp_per_user: null, tool_calls_per_user: null}"
    )
    return (
        f"public_url: http://127.0.0.1:{port}\nlisten: {{host: 127.0.0.1, port: {port}, metrics_port: null, "
        f"max_connections_per_ip: 0}}\n"
        f"store: {{{store}, key_prefix: compare-{os.getpid()}}}\naudit: {{path: '-'}}\n"
        f"rate_limits: {rate_limits}\n"
        f"routes:\n  - {{name: bench, path: /mcp, upstream: 'http://127.0.0.1:{upstream}/mcp'}}\n"
    )


def nginx_config(port: int, upstream: int, work: Path) -> str:
    (work / "logs").mkdir(exist_ok=True)
    return (
        f"worker_processes 1;\nerror_log {work}/logs/error.log;\npid {work}/nginx.pid;\n"
        "events { worker_connections 4096; }\n"
        f"http {{ access_log off; upstream u {{ server 127.0.0.1:{upstream}; keepalive 64; }}\n"
        f"  server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://u; proxy_http_version 1.1;\n"
        '    proxy_set_header Connection ""; proxy_buffering off; } } }\n'
    )


@dataclass
class Stack:
    """What started: `urls[name]` to load, `processes[name]` whose CPU and memory count for it ("direct": the
    upstream itself), a service token for the route, and the gateway's config file."""

    urls: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    token: str
    config: Path


def add_user(config: Path, password: str = "bench-password") -> None:
    """The local user `bench` (the benchmarks' OAuth flows sign in with `password`)."""
    command = [*CLI, "users", "add", "bench", "--password-stdin", "-c", str(config)]
    subprocess.run(command, input=f"{password}\n".encode(), check=True, capture_output=True, cwd=REPO)


def issue_token(config: Path, route: str = "bench", ttl: str | None = "1h") -> str:
    """A service token of `bench` for `route` (ttl None: the configured default)."""
    command = [*CLI, "tokens", "issue", "--user", "bench", "--route", route, "-c", str(config)]
    command += ["--ttl", ttl] if ttl else []
    return subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO).stdout.strip()


@contextmanager
def started(
    work: Path, *, redis_url: str | None, limits: bool = True, workers: int = 1, references: bool = True
) -> Iterator[Stack]:
    """Start the upstream and the gateway (and with `references` nginx and the bare relay), wait until each
    listens, add the user and issue the token; stop them all on the way out."""
    ports = {"direct": free_port(), "gateway": free_port()}
    config = work / "gateway.yaml"
    config.write_text(gateway_config(ports["gateway"], ports["direct"], work, redis_url, limits))
    serve = [*CLI, "serve", "-c", str(config), "--log-level", "warning", "--workers", str(workers)]
    commands = {
        "direct": [sys.executable, str(REPO / "bench" / "fast_upstream.py"), str(ports["direct"])],
        "gateway": [*TESTED, *serve],
    }
    if references:
        ports["nginx"], ports["bare"], ports["floor"], ports["raw"] = free_port(), free_port(), free_port(), free_port()
        (work / "nginx.conf").write_text(nginx_config(ports["nginx"], ports["direct"], work))
        commands["nginx"] = [*TESTED, "nginx", "-p", str(work), "-c", str(work / "nginx.conf"), "-g", "daemon off;"]
        upstream = f"http://127.0.0.1:{ports['direct']}/mcp"
        commands["bare"] = [
            *TESTED,
            sys.executable,
            str(REPO / "bench" / "bare_proxy.py"),
            str(ports["bare"]),
            upstream,
        ]
        commands["floor"] = [*commands["bare"][:-2], str(ports["floor"]), upstream, "--pool"]
        commands["raw"] = [*commands["bare"][:-2], str(ports["raw"]), upstream, "--raw"]
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            processes[name] = subprocess.Popen(command, cwd=REPO, **QUIET)  # type: ignore[call-overload]
        for name, process in processes.items():
            wait_for_port(ports[name], process)
        urls = {name: f"http://127.0.0.1:{port}/mcp" for name, port in ports.items()}
        order = ["direct", "nginx", "gateway", "bare", "floor", "raw"]  # the order of the report's rows
        add_user(config)
        yield Stack(
            {name: urls[name] for name in order if name in urls},
            {name: processes[name] for name in order if name in processes},
            issue_token(config),
            config,
        )
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=10)
