"""Two gateways: `upstream_gateway` is an OAuth-protected MCP server we did not configure by hand (a real MCP
authorization server: PRM, AS metadata, DCR, login, consent) in front of the demo upstream, on a key prefix of its
own; `front` builds the gateway under test in front of it with `upstream_auth: oauth`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.accounts import add_user
from gateway.app import create_app
from gateway.store.redis import RedisStore
from tests.conftest import make_settings, route
from tests.support.gateway_server import GatewayServer
from tests.support.processes import free_port

UPSTREAM_USER = ("bob", "upstream-password-1")


@pytest.fixture
async def upstream_store(redis_url: str, key_prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(redis_url, f"{key_prefix}:upstream", timeout=2.0)
    await store.ping()
    yield store
    await store.close()


@pytest.fixture
async def upstream_gateway(redis_url, key_prefix, upstream, upstream_store, clock) -> AsyncIterator[GatewayServer]:
    port = free_port()
    # on `localhost`, not 127.0.0.1: browsers keep cookies per host, not per port (the two gateways' session
    # cookies would overwrite each other on one host)
    settings = make_settings(
        port, redis_url, f"{key_prefix}:upstream", [route("notes", upstream.url)], public_url=f"http://localhost:{port}"
    )
    server = GatewayServer(create_app(settings, clock=clock), port=port)
    await server.start_server()
    await add_user(upstream_store, *UPSTREAM_USER, email="bob@upstream.example", now=clock.now)
    yield server
    await server.close()


def remote_route(upstream_gateway: GatewayServer, **auth: Any) -> dict[str, Any]:
    """The route of the gateway under test in front of the upstream gateway's `notes` route."""
    url = f"{origin(upstream_gateway)}/notes/mcp"
    return route("remote", url, upstream_auth={"type": "oauth", **auth})


def origin(server: GatewayServer) -> str:
    return f"http://localhost:{server.port}"
