"""The admin API in front of a real gateway: the gateway in-process on a real socket (tests/conftest.py's
`start_gateway`, real Redis, the real upstream), the admin application over its settings, store and running app
on a socket of its own, driven over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.admin.listener import create_admin_app
from gateway.app_state import SETTINGS_KEY, STORE_KEY
from tests.conftest import Clock, GatewayFactory, route
from tests.support.processes import UpstreamProcess, free_port

ADMIN_TOKEN = "admin-" + "0123456789abcdef" * 3
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD = "correct-horse-battery"  # tests/support/token_flow.py signs in with it


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Any
    body: Any
    text: str


@dataclass
class Admin:
    gateway: TestServer  # the public gateway
    api: TestClient  # the admin application's client
    public: TestClient  # a client of the public gateway

    async def call(self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None) -> Reply:
        response = await self.api.request(method, path, json=json, headers=BEARER if headers is None else headers)
        text = await response.text()
        body = await response.json() if response.content_type == "application/json" else None
        return Reply(response.status, response.headers, body, text)

    async def add_user(self, name: str = "alice", **extra: Any) -> Reply:
        reply = await self.call("POST", "/api/users", {"name": name, "password": PASSWORD, **extra})
        assert reply.status == 201, reply.text
        return reply


@pytest.fixture
async def admin(start_gateway: GatewayFactory, upstream: UpstreamProcess, clock: Clock, aiohttp_client: Any) -> Admin:
    """A gateway with `alpha` (the real upstream) and `down` (nothing listens there), and its admin API."""
    gateway = await start_gateway(
        [route("alpha", upstream.url), route("down", f"http://127.0.0.1:{free_port()}/mcp")],
        admin={"token": ADMIN_TOKEN},
        clients=[{"client_id": "from-yaml", "redirect_uris": ["http://127.0.0.1:33418/callback"]}],
    )
    app = create_admin_app(gateway.app[SETTINGS_KEY], gateway.app[STORE_KEY], gateway.app, clock=clock)
    return Admin(gateway, await aiohttp_client(app), await aiohttp_client(gateway))
