"""Through a real `serve` process (security review 2, R14/R15): a request whose path carries CR/LF and a
forged log line stays one access-log line with the controls escaped; a message aiohttp's parser refuses gets a
short 400 that echoes nothing and logs no traceback (R4); the audit file is 0600."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys

import aiohttp

from gateway.ports import free_port, wait_for_port

FORGED = "2026-01-01 00:00:00,000 INFO gateway: admin signed in"


async def test_a_path_with_crlf_cannot_forge_a_log_line_and_the_audit_file_is_0600(upstream, tmp_path):
    port = free_port()
    audit = tmp_path / "audit.jsonl"
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"public_url: http://127.0.0.1:{port}\nlisten: {{host: 127.0.0.1, port: {port}, metrics_port: null}}\n"
        f"store: {{data_dir: {tmp_path / 'data'}}}\naudit: {{enabled: true, path: {audit}}}\n"
        f"routes:\n  - {{name: alpha, path: /alpha/mcp, upstream: '{upstream.url}'}}\n"
    )
    log = tmp_path / "serve.log"
    previous = os.umask(0o022)
    try:
        with log.open("w") as out:
            serve = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", "-c", str(config), "--access-log"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    finally:
        os.umask(previous)
    try:
        wait_for_port(port, serve, deadline=30)
        async with aiohttp.ClientSession() as http:
            target = f"http://127.0.0.1:{port}/x%0d%0a{FORGED.replace(' ', '%20')}"
            async with http.get(target, allow_redirects=False) as reply:
                assert reply.status == 404
            reader, writer = await asyncio.open_connection("127.0.0.1", port)  # a byte aiohttp's parser refuses
            writer.write(b"GET /authorize HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: a=\x01; b=1\r\n\r\n")
            async with asyncio.timeout(10):
                refused = await reader.read()
            writer.close()
            assert refused.split(b" ", 2)[1] == b"400" and refused.endswith(b"\r\n\r\nmalformed HTTP request\n")
            async with http.get(f"http://127.0.0.1:{port}/readyz") as ready:
                assert ready.status == 200  # logged after the forged attempt: that line was written
    finally:
        serve.terminate()
        serve.wait(timeout=30)
    lines = log.read_text().splitlines()
    assert not [line for line in lines if line.startswith(FORGED)], lines
    assert any("/x\\x0d\\x0a2026-01-01" in line for line in lines), lines
    assert stat.S_IMODE(audit.stat().st_mode) == 0o600
    assert "Traceback" not in log.read_text()  # the refused message is not logged as an error
