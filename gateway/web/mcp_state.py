"""What the MCP route works with, gathered once per application, and what one MCP request carries from step to
step (gateway.web.mcp): attribute reads instead of a mapping lookup through `request.app` at every step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway.access import rules_for
from gateway.audit import ArgumentDigester, AuditLog
from gateway.config import AllowRules, Settings
from gateway.limiter import RateLimiter
from gateway.mcp.event_ids import EventIds
from gateway.metrics import Metrics
from gateway.oauth.bearer import Grant
from gateway.oauth.dpop import Proof
from gateway.open_streams import OpenStreams, StreamWatch
from gateway.routing import RouteInfo, RouteTable
from gateway.signing import IdentitySigner
from gateway.store.base import Store
from gateway.token_cache import TokenCache
from gateway.upstream_credentials import UpstreamCredentials
from gateway.upstream_oauth.connector import Connector
from gateway.web.dpop import DpopChecker
from gateway.web.legacy_sessions import LegacySession, LegacySessions

if TYPE_CHECKING:
    from gateway.tracing import Tracing
    from gateway.web.mcp_policy import Inspection
    from gateway.web.mcp_trace import CallTrace


@dataclass(slots=True)
class McpEndpoint:
    """The application's parts the MCP route uses (built at start-up, after the store and the upstream pool)."""

    settings: Settings
    routes: RouteTable
    metrics: Metrics
    audit: AuditLog
    store: Store
    limiter: RateLimiter
    cache: TokenCache
    streams: OpenStreams
    event_ids: EventIds
    signer: IdentitySigner
    digester: ArgumentDigester
    http: Any  # the upstream pool (gateway.proxy.upstream.build_http_client)
    clock: Callable[[], float]
    credentials: UpstreamCredentials  # per-user upstream credentials by token exchange (routes[].upstream_auth)
    connector: Connector  # per-user upstream credentials held in the vault (oauth, provider_token)
    dpop: DpopChecker  # proofs of DPoP-bound tokens (RFC 9449)
    public_proto: str = ""
    rules: dict[str, AllowRules] = field(default_factory=dict)  # by route name: the route's or the global rules
    legacy: LegacySessions = field(default_factory=LegacySessions)  # HTTP+SSE clients' sessions (2024-11-05)
    tracing: Tracing | None = None  # OpenTelemetry, when the environment asks for it (gateway.tracing)

    def __post_init__(self) -> None:
        self.public_proto = urlsplit(self.settings.public_url).scheme
        self.rules = {info.route.name: rules_for(self.settings, info.route) for info in self.routes.routes}


@dataclass(slots=True)
class McpCall:
    """One MCP request on its way through the steps; `fields` is what its audit line says."""

    request: web.Request
    mcp: McpEndpoint
    info: RouteInfo | None = None
    request_id: str = ""
    client_ip: str = ""
    cors: dict[str, str] | None = None  # the CORS headers of a request whose Origin passed (gateway.web.cors)
    token_hash: str = ""
    dpop: bool = False  # the token came with the DPoP scheme (RFC 9449 §7.1)
    proof: Proof | None = None  # its checked DPoP proof (bound tokens)
    grant: Grant | None = None
    watch: StreamWatch | None = None
    resume_from: str | None = None  # the upstream event id a valid Last-Event-ID names
    body: bytes | None = None
    inspection: Inspection | None = None
    started: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)
    legacy_kind: str | None = None  # "/sse" or "/messages": a legacy HTTP+SSE endpoint (gateway.web.legacy_sse)
    legacy: LegacySession | None = None  # the session a "/messages" POST names
    public_path: str = ""  # the path the client used, where the request was rewritten (legacy, virtual members)
    trace: CallTrace | None = None  # its spans, when tracing is on (gateway.web.mcp_trace)
