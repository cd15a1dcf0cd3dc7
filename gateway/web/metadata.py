"""Protected Resource Metadata for each route (RFC 9728 §2-3, MCP "Authorization Server Location")."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.app_state import ROUTES_KEY, SETTINGS_KEY
from gateway.oauth import dpop
from gateway.routing import RouteInfo
from gateway.web.cors import DISCOVERY_CORS


def build_resource_metadata(info: RouteInfo, issuer: str) -> dict[str, Any]:
    """`resource` is the canonical URL byte for byte; the issuer is the gateway's public_url byte for byte. DPoP
    proofs are accepted on every route (RFC 9728 §2 `dpop_signing_alg_values_supported`), required on some."""
    return {
        "resource": info.resource,
        "authorization_servers": [issuer],
        "scopes_supported": list(info.route.scopes),
        "bearer_methods_supported": ["header"],
        "resource_name": info.route.resource_name or info.route.name,
        "dpop_signing_alg_values_supported": list(dpop.ALGORITHMS),
        "dpop_bound_access_tokens_required": info.route.require_dpop,
    }


async def handle_protected_resource(request: web.Request) -> web.Response:
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=DISCOVERY_CORS)
    info = request.app[ROUTES_KEY].match_metadata(request.host, request.path)
    if info is None:  # MCP RS-3: a root document cannot name one resource for several routes
        return web.json_response(
            {"error": "not_found", "error_description": "no protected resource here"},
            status=404,
            headers=DISCOVERY_CORS,
        )
    body = build_resource_metadata(info, request.app[SETTINGS_KEY].public_url)
    return web.json_response(body, headers={**DISCOVERY_CORS, "Cache-Control": "public, max-age=300"})
