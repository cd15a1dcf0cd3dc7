"""CORS and Origin checks (MCP Streamable HTTP "Security Warning"; CORS-1/2 of our spec checklist)."""

from __future__ import annotations

from collections.abc import MutableMapping

from aiohttp import web

from gateway.config import Route, Settings
from gateway.proxy.header_names import MCP_PARAM_PREFIX, TOKEN
from gateway.routing import RouteInfo

MCP_REQUEST_HEADERS = (
    "Authorization, Content-Type, Accept, MCP-Protocol-Version, Mcp-Session-Id, Last-Event-ID, "
    "Mcp-Method, Mcp-Name, X-Request-Id, DPoP"
)
MAX_REQUESTED_HEADERS = 64  # Access-Control-Request-Headers names echoed at most (a client-controlled list)
MCP_EXPOSED_HEADERS = "WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version, X-Request-Id, DPoP-Nonce"
DISCOVERY_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, MCP-Protocol-Version, DPoP",
    "Access-Control-Max-Age": "86400",
}
OAUTH_EXPOSED_HEADERS = {"Access-Control-Expose-Headers": "WWW-Authenticate, DPoP-Nonce"}  # RFC 9449 §8: browsers


def origin_allowed(settings: Settings, info: RouteInfo, origin: str) -> bool:
    """Same origin as the gateway, or listed globally or on the route (exact string match)."""
    return origin == settings.public_url or origin in settings.allowed_origins or origin in info.route.allowed_origins


def mcp_cors_headers(origin: str) -> dict[str, str]:
    """Credentials are bearer headers, not cookies: no Allow-Credentials."""
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": MCP_EXPOSED_HEADERS,
        "Vary": "Origin",
    }


def mcp_preflight(origin: str, route: Route, requested: str | None) -> web.Response:
    """CORS-2. `Mcp-Param-*` cannot be a wildcard in Access-Control-Allow-Headers (only a lone `*` is), so the
    requested `Mcp-Param-…` names and the route's forward_headers are echoed; nothing else the upstream never sees."""
    extras = {h.lower() for h in route.forward_headers}
    names = [n.strip() for n in (requested or "").split(",")][:MAX_REQUESTED_HEADERS]
    echoed = [n for n in names if TOKEN.match(n) and (n.lower().startswith(MCP_PARAM_PREFIX) or n.lower() in extras)]
    return web.Response(
        status=204,
        headers={
            **mcp_cors_headers(origin),
            "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": ", ".join([MCP_REQUEST_HEADERS, *echoed]),
            "Access-Control-Max-Age": "600",
        },
    )


def stamp(headers: MutableMapping[str, str], request_id: str | None, cors: dict[str, str] | None) -> None:
    """The gateway's own headers on a response before it is sent: its request id, and the CORS headers of a request
    that passed the Origin check (the gateway's decision replaces an upstream's; `Vary` is merged)."""
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    if cors:
        for name, value in cors.items():
            if name == "Vary" and "Vary" in headers:
                value = f"{headers['Vary']}, {value}"
            headers[name] = value
