"""What only the running gateway knows, through the admin API: a client's last token (for DCR clients that stop
coming back), and each route's open SSE streams."""

from __future__ import annotations

import asyncio

from tests.admin.conftest import Admin
from tests.support.mcp_wire import modern_call
from tests.support.oauth_client import register
from tests.support.token_flow import obtain_tokens


async def test_a_clients_last_token_is_listed(admin: Admin) -> None:
    await admin.add_user("alice")
    used = (await register(admin.public))["client_id"]
    idle = (await register(admin.public, client_name="never used"))["client_id"]
    await obtain_tokens(admin.public, admin.gateway, used)
    clients = {c["client_id"]: c for c in (await admin.call("GET", "/api/clients")).body["clients"]}
    assert clients[used]["last_used"] is not None and clients[used]["last_used"] > 0
    assert clients[idle]["last_used"] is None


async def test_a_routes_open_sse_streams_are_counted(admin: Admin) -> None:
    """A slow tool's answer streamed (SSE, progress first): one stream open on its route while it runs."""
    await admin.add_user("alice")
    client_id = (await register(admin.public))["client_id"]
    tokens = await obtain_tokens(admin.public, admin.gateway, client_id)
    headers, body = modern_call(1, "slow_progress", {"steps": 30, "delay": 0.1}, progress_token="p")
    headers["Authorization"] = f"Bearer {tokens['access_token']}"
    before = {r["name"]: r for r in (await admin.call("GET", "/api/routes")).body["routes"]}
    assert before["alpha"]["streams"] == 0
    async with admin.public.post("/alpha/mcp", json=body, headers=headers) as stream:
        assert stream.status == 200 and stream.content_type == "text/event-stream"
        for _ in range(40):
            routes = {r["name"]: r for r in (await admin.call("GET", "/api/routes")).body["routes"]}
            if routes["alpha"]["streams"] == 1:
                break
            await asyncio.sleep(0.05)
        assert routes["alpha"]["streams"] == 1 and routes["down"]["streams"] == 0
        await stream.read()
    after = {r["name"]: r for r in (await admin.call("GET", "/api/routes")).body["routes"]}
    assert after["alpha"]["streams"] == 0
