"""The gateway in-process as `gateway serve` runs it: aiohttp's test server on the gateway's own runner, so MCP
requests take the server's dispatcher (gateway.web.mcp.dispatcher) and connections get the header deadline and the
per-IP cap, exactly as in production. (aiohttp's plain `TestServer` reaches the MCP route through the router.)"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app_state import SETTINGS_KEY
from gateway.server import guard_for
from gateway.web.connections import GatewayRunner
from gateway.web.mcp import dispatcher


class GatewayServer(TestServer):
    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        settings = self.app[SETTINGS_KEY]
        return GatewayRunner(
            self.app,
            guard=guard_for(settings),
            header_timeout=settings.listen.header_timeout,
            dispatch=dispatcher,
            **kwargs,
        )
