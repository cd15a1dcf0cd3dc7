"""Issue 10 finding 1 end to end: the review's hostile registration against a real `mcp-auth-gateway serve`.

One 4 MB registration with ~140,000 redirect URIs held the event loop for about two minutes (`/healthz` timed
out), stored a 4 MiB client and wrote a 3.9 MB audit line. Now it is refused at once with RFC 7591's error, the
gateway keeps answering, nothing is stored, and every audit line stays small. Outcomes are asserted, not timings:
each wait is bounded, and on the old code the first one never ends in time.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys

import aiohttp

from tests.support.processes import free_port, wait_for_port

CLI = [sys.executable, "-m", "gateway"]


def hostile_registration(count: int) -> bytes:
    """The review's shape: one client with `count` distinct https redirect URIs (under proxy.max_body_bytes)."""
    return json.dumps(
        {
            "redirect_uris": [f"https://a.example/c/{i}" for i in range(count)],
            "client_name": "x" * 100_000,
            "token_endpoint_auth_method": "none",
        }
    ).encode()


async def test_a_huge_registration_is_refused_while_the_gateway_keeps_answering(upstream, tmp_path):
    port = free_port()
    config = tmp_path / "gateway.yaml"
    audit = tmp_path / "audit.jsonl"
    config.write_text(
        f"public_url: http://127.0.0.1:{port}\n"
        f"listen: {{host: 127.0.0.1, port: {port}, metrics_port: null}}\n"
        f"store: {{data_dir: {tmp_path / 'data'}}}\naudit: {{path: {audit}}}\n"
        f"oauth: {{register_rate_per_minute: 100}}\n"
        f"routes:\n  - {{name: alpha, path: /alpha/mcp, upstream: '{upstream.url}'}}\n"
    )
    with (tmp_path / "serve.log").open("wb") as log:
        serve = subprocess.Popen([*CLI, "serve", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, serve, deadline=30)
        base = f"http://127.0.0.1:{port}"
        body = hostile_registration(120_000)
        assert 3_000_000 < len(body) < 4 * 1024 * 1024  # what proxy.max_body_bytes used to let through

        async def chunked():
            for start in range(0, len(body), 64 * 1024):
                yield body[start : start + 64 * 1024]

        async with aiohttp.ClientSession() as http:

            async def register(data: bytes | object) -> tuple[int, dict[str, object]]:
                async with http.post(
                    f"{base}/register", data=data, headers={"Content-Type": "application/json"}
                ) as response:
                    return response.status, await response.json()

            async def healthz() -> int:
                async with http.get(f"{base}/healthz") as response:
                    return response.status

            async with asyncio.timeout(60):  # the old code spent minutes here
                answers = await asyncio.gather(
                    register(io.BytesIO(body)), register(chunked()), healthz(), register(io.BytesIO(body))
                )
            for status, answer in (answers[0], answers[1], answers[3]):
                assert status == 413, answer
                assert answer["error"] == "invalid_client_metadata"
            assert answers[2] == 200

            async with asyncio.timeout(30):
                eleven = await register(
                    json.dumps(
                        {
                            "redirect_uris": [f"https://a.example/c/{i}" for i in range(11)],
                            "token_endpoint_auth_method": "none",
                        }
                    ).encode()
                )
                assert eleven[0] == 400 and eleven[1]["error"] == "invalid_redirect_uri"
                assert await healthz() == 200
                accepted = await register(
                    json.dumps(
                        {"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none"}
                    ).encode()
                )
                assert accepted[0] == 201  # an ordinary client still registers
    finally:
        serve.terminate()
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a loop blocked by the old code ignores SIGTERM
            serve.kill()
            serve.wait()

    listed = subprocess.run([*CLI, "clients", "list", "-c", str(config)], text=True, capture_output=True, check=True)
    stored = [line for line in listed.stdout.splitlines() if line.startswith("mcpgw_c_")]
    assert len(stored) == 1 and "https://a.example/cb" in stored[0]  # only the ordinary one
    lines = audit.read_text().splitlines()
    registrations = [json.loads(line) for line in lines if '"oauth.register"' in line]
    assert [r.get("outcome") for r in registrations].count("too_large") == 3
    assert max(len(line) for line in lines) < 8 * 1024
