"""Property-based fuzzing of every endpoint's input (hypothesis): forms, JSON, headers, query strings and
JSON-RPC bodies, sent to a real gateway on a real socket in front of the real upstream MCP process.

What every answer must be, whatever the input: never a 5xx other than a store or upstream outage (none is
staged here), never a stack trace, and always the spec's error shape for that endpoint (`tests/fuzz/shapes.py`).

Profiles (HYPOTHESIS_PROFILE): `ci` (the default: derandomized, so CI runs the same examples every time, and
small enough to keep the suite fast) and `deep` (random, many more examples: run it when touching an endpoint).
The fuzz tests use one store (the Redis server when MCP_GATEWAY_TEST_STORES names it, else an embedded one):
what they exercise is input handling, which the store contract suite already runs on every store kind.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, settings

from gateway.app import create_app
from gateway.store.embedded import start_embedded
from gateway.store.redis import RedisStore
from tests.conftest import SERVER_URL, STORES, make_settings, route
from tests.support.processes import UpstreamProcess, free_port

_COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
settings.register_profile("ci", max_examples=150, derandomize=True, **_COMMON)
settings.register_profile("deep", max_examples=1500, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def fuzz_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if "server" in STORES:
        yield SERVER_URL
        return
    embedded = start_embedded(tmp_path_factory.mktemp("fuzz-redis"))
    yield embedded.url
    embedded.stop()


@pytest.fixture
def fuzz_prefix() -> str:
    return f"mcpgw-fuzz-{secrets.token_hex(6)}"


@pytest.fixture
async def fuzz_store(fuzz_redis_url: str, fuzz_prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(fuzz_redis_url, fuzz_prefix, timeout=5.0)
    await store.ping()  # a missing Redis is a failure, never a skip
    yield store
    keys = [k async for k in store._redis.scan_iter(match=f"{fuzz_prefix}:*", count=1000)]  # noqa: SLF001
    if keys:
        await store._redis.delete(*keys)  # noqa: SLF001
    await store.close()


POLICY: dict[str, Any] = {
    "tools": [{"match": "admin_*", "deny": True}, {"match": "add", "scopes": ["fz:write"]}],
    "resources": [{"match": "file:///secret/*", "deny": True}],
    "prompts": [{"match": "hidden*", "deny": True}],
}
CONFIDENTIAL = {
    "client_id": "fuzz-confidential",
    "client_secret": "fuzz-secret-0123456789abcdef",
    "redirect_uris": ["https://app.example/cb"],
    "client_name": "Fuzz confidential",
}
INTROSPECTOR = {"name": "fuzz-rs", "secret": "introspection-secret-0123456789"}


@pytest.fixture
async def fuzz_gateway(
    aiohttp_server: Any, fuzz_redis_url: str, fuzz_prefix: str, fuzz_store: RedisStore, upstream: UpstreamProcess
) -> TestServer:
    """A gateway with every input-parsing feature on: MCP policy, DCR, CIMD, introspection, a pre-registered
    confidential client; rate limits off (a 429 would hide what the input does) and the audit log on."""
    port = free_port()
    settings = make_settings(
        port,
        fuzz_redis_url,
        fuzz_prefix,
        [route("fz", upstream.url, scopes=["fz:read", "fz:write"], policy=POLICY)],
        clients=[CONFIDENTIAL],
        oauth={"introspection": [INTROSPECTOR], "register_rate_per_minute": 100_000},
        rate_limits={"oauth_per_ip": None, "mcp_per_user": None, "tool_calls_per_user": None},
        audit={"enabled": True, "path": os.devnull},
    )
    return await aiohttp_server(create_app(settings), port=port)
