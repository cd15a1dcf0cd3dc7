"""URL layout of the gateway (see the contract's HTTP surface)."""

from __future__ import annotations

from aiohttp import web

from gateway.app_state import SETTINGS_KEY
from gateway.oauth.resource import PRM_WELL_KNOWN
from gateway.routing import RouteTable
from gateway.web.account import handle_account, handle_account_revoke
from gateway.web.authorize import handle_authorize, handle_consent, handle_provider_choice
from gateway.web.federation import handle_callback
from gateway.web.health import handle_healthz, handle_jwks, handle_metrics, handle_readyz
from gateway.web.logout import handle_logout
from gateway.web.mcp import MCP_METHODS, handle_mcp
from gateway.web.metadata import handle_protected_resource
from gateway.web.oauth import (
    handle_introspect,
    handle_metadata,
    handle_openid_configuration,
    handle_register,
    handle_revoke,
    handle_token,
    handle_userinfo,
)
from gateway.web.password_sign_in import handle_login, handle_signup
from gateway.web.upstream_callback import handle_upstream_callback
from gateway.web.upstream_connect import (
    handle_client_document,
    handle_connect,
    handle_connections,
    handle_disconnect,
)


def setup_routes(app: web.Application, table: RouteTable) -> None:
    router = app.router
    router.add_get("/healthz", handle_healthz)
    router.add_get("/readyz", handle_readyz)
    if app[SETTINGS_KEY].listen.metrics_token is not None:  # else only on the metrics listener (gateway.server)
        router.add_get("/metrics", handle_metrics)
    router.add_get("/.well-known/jwks.json", handle_jwks)
    for path, metadata in (
        ("/.well-known/oauth-authorization-server", handle_metadata),
        ("/.well-known/openid-configuration", handle_openid_configuration),
    ):  # 404: not an OP
        router.add_route("GET", path, metadata)
        router.add_route("OPTIONS", path, metadata)
    for path, handler in (("/register", handle_register), ("/token", handle_token), ("/revoke", handle_revoke)):
        router.add_route("POST", path, handler)
        router.add_route("OPTIONS", path, handler)
    router.add_route("POST", "/introspect", handle_introspect)
    for method in ("GET", "POST", "OPTIONS"):
        router.add_route(method, "/userinfo", handle_userinfo)
    router.add_get("/authorize", handle_authorize)
    router.add_post("/authorize/login", handle_login)
    router.add_post("/authorize/consent", handle_consent)
    router.add_post("/authorize/provider", handle_provider_choice)
    router.add_post("/authorize/signup", handle_signup)
    router.add_get("/login/{provider}/callback", handle_callback)
    router.add_get("/upstream/callback/{route}", handle_upstream_callback)
    router.add_route("GET", "/upstream/connect/{route}", handle_connect)
    router.add_route("POST", "/upstream/connect/{route}", handle_connect)
    router.add_get("/upstream/connections", handle_connections)
    router.add_get("/account", handle_account)
    router.add_post("/account/revoke", handle_account_revoke)
    router.add_post("/upstream/connections/disconnect", handle_disconnect)
    router.add_get("/upstream/client/{route}", handle_client_document)
    router.add_route("GET", "/logout", handle_logout)
    router.add_route("POST", "/logout", handle_logout)
    for path in sorted({PRM_WELL_KNOWN, PRM_WELL_KNOWN + "/"} | table.prm_paths()):
        router.add_route("GET", path, handle_protected_resource)
        router.add_route("OPTIONS", path, handle_protected_resource)
    for path in sorted(table.endpoint_paths()):
        for method in MCP_METHODS:
            router.add_route(method, path, handle_mcp)
