"""Run the official MCP conformance suite's authorization-server scenarios against a real gateway.

    python -m tests.conformance.run_authorization --conformance PATH/TO/conformance [--node-bin DIR]

Starts the demo upstream and `mcp-auth-gateway serve` (embedded store, a pre-registered public client whose
redirect is the suite's loopback callback), runs `conformance authorization`, and plays the person at the
browser: it reads the authorization URL the suite prints, signs in and approves over HTTP (the contract's form
fields), and delivers the redirect to the suite's callback. Exits with the suite's status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

from tests.support.headless_oauth import Browser
from tests.support.processes import free_port, wait_for_port

CLIENT_ID = "conformance-suite"


async def drive(suite: subprocess.Popen[str], issuer: str, password: str) -> None:
    """Answer every authorization URL the suite prints until it exits."""
    assert suite.stdout is not None
    while True:
        line = await asyncio.to_thread(suite.stdout.readline)
        if not line:
            return
        print(line, end="", flush=True)
        url = line.strip()
        if url.startswith(f"{issuer}/authorize?"):
            browser = Browser("conformance", password)
            await browser.authorize(url)
            assert browser.last_location is not None, "no redirect back to the suite"
            async with aiohttp.ClientSession() as http, http.get(browser.last_location) as callback:
                await callback.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conformance", required=True, help="path of the conformance CLI")
    parser.add_argument("--node-bin", help="directory with node >= 22, prepended to PATH for the suite")
    parser.add_argument("--scenario", help="one scenario (default: all authorization-server scenarios)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mcpgw-conformance-"))
    gw_port, up_port, cb_port = free_port(), free_port(), free_port()
    issuer = f"http://127.0.0.1:{gw_port}"
    config = work / "gateway.yaml"
    config.write_text(
        f"public_url: {issuer}\nlisten: {{host: 127.0.0.1, port: {gw_port}, metrics_port: null}}\n"
        f"store: {{data_dir: {work / 'data'}}}\n"
        f"routes:\n  - {{name: demo, path: /demo/mcp, upstream: 'http://127.0.0.1:{up_port}/mcp',"
        f" scopes: [demo:read]}}\n"
        f"clients:\n  - {{client_id: {CLIENT_ID}, redirect_uris: ['http://127.0.0.1:{cb_port}/callback'],"
        f" client_name: MCP conformance suite}}\n"
    )
    password = "conformance-password"
    cli = [sys.executable, "-m", "gateway"]
    upstream = subprocess.Popen(
        [sys.executable, "-m", "gateway.demo_upstream", "--port", str(up_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gateway = subprocess.Popen([*cli, "serve", "-c", str(config), "--log-level", "warning"])
    suite = None
    try:
        wait_for_port(up_port, upstream)
        wait_for_port(gw_port, gateway)
        subprocess.run(
            [*cli, "users", "add", "conformance", "--password-stdin", "-c", str(config)],
            input=password + "\n",
            text=True,
            check=True,
            capture_output=True,
        )
        env = dict(os.environ)
        if args.node_bin:
            env["PATH"] = f"{args.node_bin}{os.pathsep}{env['PATH']}"
        command = [
            args.conformance,
            "authorization",
            "--url",
            issuer,
            "--client-id",
            CLIENT_ID,
            "--resource",
            f"{issuer}/demo/mcp",
            "--port",
            str(cb_port),
            "--output-dir",
            str(work / "results"),
        ]
        if args.scenario:
            command += ["--scenario", args.scenario]
        print("running:", " ".join(command), flush=True)
        suite = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        asyncio.run(asyncio.wait_for(drive(suite, issuer, password), timeout=600))
        return suite.wait(timeout=60)
    finally:
        for process in (suite, gateway, upstream):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        if suite is not None and suite.stdout is not None:
            suite.stdout.close()


if __name__ == "__main__":
    raise SystemExit(main())
