"""Per-client-IP limits on the OAuth endpoints (our choice: one shared bucket per IP for /register,
/authorize, /token and /revoke). 429 with Retry-After: OAuth JSON for APIs, an HTML page for the browser."""

from __future__ import annotations

import math

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.app_state import LIMITER_KEY, METRICS_KEY, SETTINGS_KEY
from gateway.oauth.errors import SlowDownError
from gateway.web.client_ip import client_ip
from gateway.web.errors import json_error
from gateway.web.render import html_error

LIMITED_PATHS = ("/register", "/authorize", "/token", "/revoke", "/introspect")


@web.middleware
async def oauth_rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    limit = request.app[SETTINGS_KEY].rate_limits.oauth_per_ip
    path = request.path
    if limit is None or request.method == "OPTIONS" or not path.startswith(LIMITED_PATHS):
        return await handler(request)
    wait = await request.app[LIMITER_KEY].take(client_ip(request), [("ip", limit.limit, limit.period)], reserve=False)
    if wait <= 0:
        return await handler(request)
    request.app[METRICS_KEY].rate_limited.labels("oauth_ip").inc()
    retry = {"Retry-After": str(max(1, math.ceil(wait)))}
    if path.startswith("/authorize"):
        page = html_error("Too many requests", "Wait a moment and try again.", status=429)
        page.headers.update(retry)
        return page
    return json_error(SlowDownError("too many requests from this address"), headers=retry)
