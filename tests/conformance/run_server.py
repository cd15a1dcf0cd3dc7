"""Run the official MCP conformance suite's server scenarios against an MCP server directly and through the gateway,
and check that both pass exactly the same checks.

    python -m tests.conformance.run_server --conformance PATH/TO/conformance [--node-bin DIR] [--spec-version V]

Starts the conformance fixture (tests.support.conformance_server, which passes them all directly) and
`mcp-auth-gateway serve` (embedded store) with two routes to it: `plain` (no policy) and `policed` (tool rules that
need a scope and a group the user has, so every list is filtered per caller and its caching hints rewritten).
The suite takes only a URL, so a loopback relay (tests.support.bearer_injector) adds a CLI-issued token to each of
its requests and passes everything else unchanged; it stands where a TLS terminator would, so `public_url` is its
address (the suite's Host and Origin are the gateway's own). For each protocol revision the suite (`--suite all`)
runs three times (direct, plain, policed); the pass sets, (scenario, check) pairs, must be identical. Exits 1 when
they differ or a run passes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from tests.support.bearer_injector import injector
from tests.support.processes import free_port, wait_for_port

VERSIONS = ("2026-07-28", "2025-11-25")
POLICY = (
    "{tools: [{match: 'test_*', scopes: [conf:tools]}, {match: 'json_schema_*', groups: ['local:testers']}],"
    " prompts: [{match: '*', scopes: [conf:tools]}]}"
)


def write_config(work: Path, gw_port: int, up_port: int, relay_port: int) -> Path:
    upstream = f"http://127.0.0.1:{up_port}/mcp"
    config = work / "gateway.yaml"
    config.write_text(
        f"public_url: http://127.0.0.1:{relay_port}\nlisten: {{host: 127.0.0.1, port: {gw_port}, metrics_port: null}}\n"
        f"store: {{data_dir: {work / 'data'}}}\n"
        f"routes:\n"
        f"  - {{name: plain, path: /plain/mcp, upstream: '{upstream}', scopes: [conf:read]}}\n"
        f"  - {{name: policed, path: /policed/mcp, upstream: '{upstream}', scopes: [conf:read, conf:tools],"
        f" policy: {POLICY}}}\n"
    )
    return config


def pass_set(results: Path) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(passed, failed) (scenario, check id) pairs of one run's output directory."""
    passed, failed = set(), set()
    for checks in results.glob("*/checks.json"):
        scenario = checks.parent.name.removeprefix("server-").rsplit("-", 5)[0]  # (…-YYYY-MM-DDTHH-MM-SS-mmmZ)
        for check in json.loads(checks.read_text()):
            key = (scenario, str(check.get("id")))
            if check.get("status") in ("SUCCESS", "INFO"):
                passed.add(key)
            elif check.get("status") in ("FAILURE", "WARNING"):
                failed.add(key)
    return passed, failed


def run_suite(conformance: str, url: str, version: str, out: Path, env: dict[str, str]) -> None:
    command = [conformance, "server", "--url", url, "--suite", "all", "--spec-version", version, "-o", str(out)]
    print("running:", " ".join(command), flush=True)
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=1800)


async def serve_injector(port: int, target: str, token: str) -> web.AppRunner:
    runner = web.AppRunner(injector(target, token))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def issue(cli: list[str], config: Path, route: str, scopes: list[str]) -> str:
    command = [*cli, "tokens", "issue", "--user", "tester", "--route", route, "--ttl", "2h", "-c", str(config)]
    for scope in scopes:
        command += ["--scope", scope]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()[-1]


async def compare(
    args: argparse.Namespace, env: dict[str, str], work: Path, ports: dict[str, int], tokens: dict[str, str]
) -> int:
    """Each revision: the suite direct, then through each route; 0 when every pass set is the direct one's."""
    status = 0
    for version in args.spec_version or VERSIONS:
        runs: dict[str, tuple[set[tuple[str, str]], set[tuple[str, str]]]] = {}
        out = work / version / "direct"
        await asyncio.to_thread(
            run_suite, args.conformance, f"http://127.0.0.1:{ports['fixture']}/mcp", version, out, env
        )
        runs["direct"] = pass_set(out)
        for route, token in tokens.items():
            relay_port = ports["relay"]
            runner = await serve_injector(relay_port, f"http://127.0.0.1:{ports['gateway']}", token)
            try:
                out = work / version / route
                url = f"http://127.0.0.1:{relay_port}/{route}/mcp"
                await asyncio.to_thread(run_suite, args.conformance, url, version, out, env)
            finally:
                await runner.cleanup()
            runs[route] = pass_set(out)
        status |= report(version, runs)
    return status


def report(version: str, runs: dict[str, tuple[set[tuple[str, str]], set[tuple[str, str]]]]) -> int:
    direct = runs["direct"][0]
    scenarios = sorted({s for s, _ in direct | runs["direct"][1]})
    print(f"\n== {version}: {len(scenarios)} scenarios, {len(direct)} checks passed directly")
    status = 0 if direct else 1
    for name, (passed, failed) in runs.items():
        missing, extra = direct - passed, passed - direct
        verdict = "identical" if not missing and not extra else "DIFFERENT"
        print(f"  {name:8} passed {len(passed):4}  failed {len(failed):3}  pass set {verdict}")
        for scenario, check in sorted(missing):
            print(f"    lost:   {scenario} / {check}")
        for scenario, check in sorted(extra):
            print(f"    gained: {scenario} / {check}")
        status |= 1 if missing or extra or not passed else 0
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conformance", required=True, help="path of the conformance CLI")
    parser.add_argument("--node-bin", help="directory with node >= 22, prepended to PATH for the suite")
    parser.add_argument("--spec-version", action="append", help=f"revision(s) to run (default: {', '.join(VERSIONS)})")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mcpgw-conformance-server-"))
    ports = {"gateway": free_port(), "fixture": free_port(), "relay": free_port()}
    config = write_config(work, ports["gateway"], ports["fixture"], ports["relay"])
    cli = [sys.executable, "-m", "gateway"]
    fixture = subprocess.Popen(
        [sys.executable, "-m", "tests.support.conformance_server", "--port", str(ports["fixture"])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = (work / "gateway.log").open("wb")  # (its audit lines: one per request of the suite)
    gateway = subprocess.Popen([*cli, "serve", "-c", str(config), "--log-level", "warning"], stdout=log, stderr=log)
    env = dict(os.environ)
    if args.node_bin:
        env["PATH"] = f"{args.node_bin}{os.pathsep}{env['PATH']}"
    try:
        wait_for_port(ports["fixture"], fixture)
        wait_for_port(ports["gateway"], gateway)
        add = [*cli, "users", "add", "tester", "--groups", "testers", "--password-stdin", "-c", str(config)]
        subprocess.run(add, input="conformance-password\n", check=True, capture_output=True, text=True)
        tokens = {
            "plain": issue(cli, config, "plain", ["conf:read"]),
            "policed": issue(cli, config, "policed", ["conf:read", "conf:tools"]),
        }
        return asyncio.run(compare(args, env, work, ports, tokens))
    finally:
        for process in (gateway, fixture):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        log.close()


if __name__ == "__main__":
    raise SystemExit(main())
