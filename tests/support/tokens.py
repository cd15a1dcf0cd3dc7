"""Issue real access tokens into the test's store, the way `tokens issue` does."""

from __future__ import annotations

import time

from aiohttp.test_utils import TestServer

from gateway.accounts import add_user, issue_service_token
from gateway.app_state import ROUTES_KEY
from gateway.store.base import Store


async def issue(
    store: Store,
    server: TestServer,
    route: str,
    *,
    user: str = "alice",
    scopes: tuple[str, ...] = (),
    ttl: int = 3600,
    now: float | None = None,
    groups: tuple[str, ...] = ("eng", "ops"),
) -> str:
    now = time.time() if now is None else now
    if await store.load_user(user) is None:
        await add_user(store, user, "correct-horse-battery", email=f"{user}@example.com", groups=groups, now=now)
    info = server.app[ROUTES_KEY].by_name(route)
    return (await issue_service_token(store, user, info, scopes, ttl, now=now)).token
