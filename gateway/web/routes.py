"""URL layout of the gateway (see the contract's HTTP surface)."""

from __future__ import annotations

from aiohttp import web

from gateway.oauth.resource import PRM_WELL_KNOWN
from gateway.routing import RouteTable
from gateway.web.health import handle_healthz, handle_metrics, handle_readyz
from gateway.web.mcp import handle_mcp
from gateway.web.metadata import handle_protected_resource

MCP_METHODS = ("POST", "GET", "DELETE", "OPTIONS")


def setup_routes(app: web.Application, table: RouteTable) -> None:
    router = app.router
    router.add_get("/healthz", handle_healthz)
    router.add_get("/readyz", handle_readyz)
    router.add_get("/metrics", handle_metrics)
    for path in sorted({PRM_WELL_KNOWN, PRM_WELL_KNOWN + "/"} | table.prm_paths()):
        router.add_route("GET", path, handle_protected_resource)
        router.add_route("OPTIONS", path, handle_protected_resource)
    for path in sorted(table.endpoint_paths()):
        for method in MCP_METHODS:
            router.add_route(method, path, handle_mcp)
