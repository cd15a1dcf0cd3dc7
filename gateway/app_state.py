"""Typed application and request keys: state lives on the app and the request, never in globals."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.assertions.verifier import Assertions
from gateway.audit import ArgumentDigester, AuditLog
from gateway.clients.registry import ClientRegistry
from gateway.config import Settings
from gateway.idp.base import IdentityProvider
from gateway.limiter import RateLimiter
from gateway.mcp.event_ids import EventIds
from gateway.metrics import Metrics
from gateway.open_streams import OpenStreams, StreamWatch
from gateway.proxy.pool import UpstreamPool
from gateway.routing import RouteInfo, RouteTable
from gateway.signing import IdentitySigner
from gateway.store.base import Store
from gateway.token_cache import TokenCache
from gateway.upstream_oauth.connector import Connector
from gateway.web.dpop import DpopChecker

if TYPE_CHECKING:  # (it imports the MCP route's modules, which import these keys)
    from gateway.web.mcp_state import McpEndpoint

SETTINGS_KEY = web.AppKey("settings", Settings)
STORE_KEY = web.AppKey("store", Store)
LIMITER_KEY = web.AppKey("limiter", RateLimiter)  # every rate limit (MCP per-user ones reserve cells ahead)
HTTP_KEY = web.AppKey("http", UpstreamPool)  # the MCP proxy path's upstream connections
CLOCK_KEY: web.AppKey[Callable[[], float]] = web.AppKey("clock")
ROUTES_KEY = web.AppKey("routes", RouteTable)
METRICS_KEY = web.AppKey("metrics", Metrics)

# Request keys: what one request carries from layer to layer.
REQUEST_ID_KEY = web.RequestKey("request_id", str)
ROUTE_INFO_KEY = web.RequestKey("route_info", RouteInfo)  # set on MCP requests: errors render as JSON-RPC
TOKEN_ID_KEY = web.RequestKey("token_id", str)  # 8 hex digits of the token hash, for the access log
CORS_HEADERS_KEY = web.RequestKey("cors_headers", dict[str, str])
STREAM_WATCH_KEY = web.RequestKey("stream_watch", StreamWatch)  # MCP requests: ended when the token is revoked
CLIENTS_KEY = web.AppKey("clients", ClientRegistry)
PROVIDERS_KEY = web.AppKey("providers", dict[str, IdentityProvider])
AUDIT_KEY = web.AppKey("audit", AuditLog)
SIGNER_KEY = web.AppKey("signer", IdentitySigner)
DIGESTER_KEY = web.AppKey("digester", ArgumentDigester)  # keyed digests of tools/call arguments (audit log)
EVENT_IDS_KEY = web.AppKey("event_ids", EventIds)  # SSE event ids bound to the caller (resumption)
TOKEN_CACHE_KEY = web.AppKey("token_cache", TokenCache)
STDIO_HOSTS_KEY = web.AppKey("stdio_hosts", object)  # gateway.stdio.host.StdioHosts: the bridged routes' hosts
TRACING_KEY = web.AppKey("tracing", object)  # gateway.tracing.Tracing, or None: tracing off
STREAMS_KEY = web.AppKey("streams", OpenStreams)  # requests in flight by token (revocation and expiry end them)
MCP_KEY: web.AppKey[McpEndpoint] = web.AppKey("mcp")  # what the MCP route works with (gateway.web.mcp_state)
CONNECTOR_KEY = web.AppKey("connector", Connector)  # per-user upstream credentials held in the vault
ASSERTIONS_KEY = web.AppKey("assertions", Assertions)  # private_key_jwt and enterprise ID-JAGs at /token
DPOP_KEY = web.AppKey("dpop", DpopChecker)  # DPoP proofs at /token and on MCP routes
