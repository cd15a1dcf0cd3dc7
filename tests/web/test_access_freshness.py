"""How fresh identity data is (issue #4 item 3): rules apply on every request; a refresh re-reads local
accounts and refuses sign-ins older than login.identity_max_age, the bound on stale provider groups."""

from __future__ import annotations

import pytest

from gateway.accounts import add_user
from tests.conftest import route
from tests.support.oauth_client import register
from tests.support.token_flow import PASSWORD, mcp_status, obtain_tokens, refresh


@pytest.fixture
async def ops_only(start_gateway, upstream, store, clock):
    await add_user(store, "alice", PASSWORD, email="alice@example.com", groups=("ops",), now=clock.now)
    return await start_gateway([route("alpha", upstream.url, allow={"groups": ["local:ops"]})],
                               login={"identity_max_age": 3600})


async def test_refresh_after_identity_max_age_requires_a_new_sign_in(ops_only, aiohttp_client, clock):
    client = await aiohttp_client(ops_only)
    registered = await register(client)
    tokens = await obtain_tokens(client, ops_only, registered["client_id"])
    clock.now += 1800
    fresh = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert fresh.status == 200
    clock.now += 1801  # 3601 s after the sign-in
    stale = await refresh(client, registered["client_id"], fresh.body["refresh_token"])
    assert stale.status == 400 and stale.error == "invalid_grant"


async def test_removed_local_user_cannot_refresh(ops_only, aiohttp_client, store):
    client = await aiohttp_client(ops_only)
    registered = await register(client)
    tokens = await obtain_tokens(client, ops_only, registered["client_id"])
    await store.delete_user("alice")
    gone = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert gone.status == 400 and gone.error == "invalid_grant"


async def test_local_group_change_takes_effect_at_the_next_refresh(ops_only, aiohttp_client, store):
    """The refresh re-reads the account: leaving `ops` ends access to an ops-only route (no code, no token)."""
    client = await aiohttp_client(ops_only)
    registered = await register(client)
    tokens = await obtain_tokens(client, ops_only, registered["client_id"])
    assert await mcp_status(client, "/alpha/mcp", tokens["access_token"]) == 200
    user = await store.load_user("alice")
    await store.save_user(user.model_copy(update={"groups": ("sales",)}))
    refused = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert refused.status == 400 and refused.error == "invalid_grant"
