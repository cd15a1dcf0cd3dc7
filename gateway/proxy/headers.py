"""Which headers cross the gateway, in each direction: allow-lists, never deny-lists (RFC 9110 §7.6.1; MCP
Streamable HTTP "Request Metadata"; MCP "Token Passthrough").

To the upstream go the MCP transport headers, content negotiation, User-Agent, W3C trace context and the route's
`forward_headers`; then the gateway's own: Host, X-Forwarded-For/Proto/Host, X-Request-Id and the identity headers.
Everything else a client sends (its token, `Cf-Access-Authenticated-User-Email`, `X-Goog-Authenticated-User-Email`
and whatever other proxies' identity headers an upstream might trust) stays here. Cookies go only when the route
names them (`forward_cookies`). Back to the client go content and caching headers, the MCP session and version
headers and the route's `forward_response_headers`; nothing that would speak for the gateway's whole origin.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from multidict import CIMultiDictProxy

from gateway.config import Route, StaticUpstreamAuth
from gateway.identity import RequestContext
from gateway.proxy.header_names import (
    FORWARDED_REQUEST,
    FORWARDED_RESPONSE,
    HOP_BY_HOP,
    MCP_PARAM_PREFIX,
    NEVER_FROM_UPSTREAM,
    NEVER_FROM_UPSTREAM_PREFIXES,
    canonical,
    gateway_cookie,
)

SESSION_ID = "mcp-session-id"
# set by the gateway on every upstream request (upstream_request_headers), never as a client sent them
OWN_REQUEST = frozenset(
    {"cookie", "accept-encoding", "last-event-id", "host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}
    | {"x-request-id"}
)
MAX_SESSION_ID_LENGTH = 512  # the spec bounds none; SDKs mint 32-36 characters
_SESSION_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_SESSION_ID_LENGTH}}}")  # MCP 2025-11-25 transports: visible ASCII


def valid_session_id(value: str) -> bool:
    """An `Mcp-Session-Id` as MCP 2025-11-25 (Streamable HTTP "Session Management") allows, and bounded."""
    return _SESSION_ID.fullmatch(value) is not None


def upstream_session_id(upstream: CIMultiDictProxy[str]) -> str | None:
    """The session an upstream response mints: one valid `Mcp-Session-Id`, or None (none is bound or forwarded)."""
    values = upstream.getall(SESSION_ID, [])
    return values[0] if len(values) == 1 and valid_session_id(values[0]) else None


def request_header_problem(inbound: CIMultiDictProxy[str]) -> str | None:
    """Why the request's MCP headers are ambiguous, or None: a duplicate (`Mcp-Name` twice, or as `Mcp-Name` and
    `Mcp_Name`) or an underscore spelling (`Mcp_Method`), which the gateway and an upstream could read differently;
    an `Mcp-Session-Id` that is not 1 to MAX_SESSION_ID_LENGTH visible ASCII characters."""
    session = inbound.get(SESSION_ID)
    if session is not None and not valid_session_id(session):
        return f"header 'Mcp-Session-Id': 1 to {MAX_SESSION_ID_LENGTH} visible ASCII characters (0x21-0x7E)"
    seen: set[str] = set()
    for key, _ in inbound.items():  # (keys() folds repeated names)
        if key[:1] not in "mMlL":  # (neither mcp-… nor last-event-id, in any spelling: skipped unread)
            continue
        name = canonical(key)
        if not (name.startswith("mcp-") or name == "last-event-id"):  # the MCP transport's: one line each
            continue
        fixed = key[: len(MCP_PARAM_PREFIX)] if name.startswith(MCP_PARAM_PREFIX) else key  # (a param's own name
        if "_" in fixed:  # may hold underscores: x-mcp-header values are tokens)
            return f"header {key!r}: MCP headers are spelled with hyphens"
        if name in seen:
            return f"header {key!r} appears more than once"
        seen.add(name)
    return None


def upstream_request_headers(
    inbound: CIMultiDictProxy[str],
    route: Route,
    context: RequestContext,
    *,
    client_ip: str | None,
    proto: str,
    host: str,
    upstream_host: str,
    identity_jwt: str | None = None,
    request_id: str | None = None,
    public_host: str | None = None,
    last_event_id: str | None = None,
    credential: tuple[str, str] | None = None,
) -> list[tuple[str, str]]:
    """The allow-listed inbound headers, then the gateway's: Host, Accept-Encoding (identity), X-Forwarded-*,
    X-Request-Id, identity; as (name, value) pairs for the request head (gateway.proxy.pool.encode_head).
    `public_host` is the route's configured host (X-Forwarded-Host), never the client's Host header. A
    `Last-Event-ID` goes only as `last_event_id` (the upstream id the client's was checked to be bound to), never
    as the client sent it; `Accept: */*` when the client named none (what aiohttp's client sent). The route's
    upstream credential last: a static one from the route, a per-user one as `credential`."""
    allowed, own, cookie_names, static = _per_route(_request_plans, route, _plan_request)
    credential = credential or static
    named = _connection_tokens(inbound)
    out: list[tuple[str, str]] = []
    accept = False
    for key, given in inbound.items():
        name = key.lower()  # literal spelling: X_Tenant is not X-Tenant (underscore forms never pass)
        if (name in allowed or (name.startswith(MCP_PARAM_PREFIX) and name not in own)) and name not in named:
            out.append((key, given))
            accept = accept or name == "accept"
    cookies = _named_cookies(inbound.getall("Cookie", []), cookie_names) if cookie_names else ""
    if cookies:
        out.append(("Cookie", cookies))
    if not accept:
        out.append(("Accept", "*/*"))
    if last_event_id is not None:
        out.append(("Last-Event-ID", last_event_id))
    out.append(("Host", host if route.preserve_host else upstream_host))
    out.append(("Accept-Encoding", "identity"))  # the gateway reads what it relays (SSE event ids, list filter)
    if client_ip:
        out.append(("X-Forwarded-For", client_ip))
    out.append(("X-Forwarded-Proto", proto))
    out.append(("X-Forwarded-Host", public_host or host))
    if request_id is not None:
        out.append(("X-Request-Id", request_id))  # the same id as the gateway's logs and audit line
    if route.identity_jwt_header and identity_jwt is not None:
        out.append((route.identity_jwt_header, identity_jwt))
    for header, claim in route.identity_headers.items():
        value = context.claim(claim)
        if value is not None:
            out.append((header, value))
    if credential is not None:
        out.append(credential)  # the route's upstream_auth: the gateway's credential, never a client's
    return out


def _plan_request(
    route: Route,
) -> tuple[frozenset[str], frozenset[str], frozenset[str], tuple[str, str] | None]:
    """What a route forwards; the names only the gateway sets (its own, the route's identity headers and its
    credential's: config validation keeps the extras clean, this keeps each of the gateway's lines single whatever a
    route says); the cookies it forwards; the credential's header line (`upstream_auth`), if any."""
    jwt = (route.identity_jwt_header,) if route.identity_jwt_header else ()
    auth = route.upstream_auth
    credential = auth.header_line() if isinstance(auth, StaticUpstreamAuth) else None
    named = (*route.identity_headers, *jwt, *((auth.header,) if auth is not None else ()))
    own = frozenset({*OWN_REQUEST, *(name.lower() for name in named)})
    allowed = FORWARDED_REQUEST | {h.lower() for h in route.forward_headers}
    if route.preserve_host:
        allowed |= {"origin"}  # else the gateway validated it; the upstream would judge it against its own host
    return frozenset(allowed - own), own, frozenset(route.forward_cookies), credential


_T = TypeVar("_T")
_request_plans: dict[int, tuple[Route, Any]] = {}
_response_plans: dict[int, tuple[Route, Any]] = {}
MAX_PLANS = 1024  # routes of every configuration a process has served (reloads); then forgotten and recomputed


def _per_route(plans: dict[int, tuple[Route, Any]], route: Route, compute: Callable[[Route], _T]) -> _T:
    """`compute(route)` once per route object (keyed by identity: a route model is immutable but unhashable; the
    entry holds the route, so its id is not reused while it is there)."""
    entry = plans.get(id(route))
    if entry is not None and entry[0] is route:
        return entry[1]  # type: ignore[no-any-return]
    if len(plans) >= MAX_PLANS:
        plans.clear()
    plan = compute(route)
    plans[id(route)] = (route, plan)
    return plan


def client_response_headers(
    upstream: CIMultiDictProxy[str], route: Route, *, keep_length: bool = True
) -> list[tuple[str, str]]:
    """The allow-listed upstream response headers, plus the route's extras and the Set-Cookie of its cookies; an
    `Mcp-Session-Id` only when it is one valid value (`upstream_session_id`); Content-Length only with
    `keep_length` (a body the gateway rewrites or sends whole gets its own). As (name, value) lines, in order."""
    allowed, cookies = _per_route(_response_plans, route, _plan_response)
    named = _connection_tokens(upstream)
    out: list[tuple[str, str]] = []
    for key, value in upstream.items():
        name = key.lower()
        if name in named or (name == SESSION_ID and upstream_session_id(upstream) is None):
            continue
        if name == "content-length" and not keep_length:
            continue
        if name in allowed or (name == "set-cookie" and _settable(value, cookies)):
            out.append((key, value))
    return out


def _plan_response(route: Route) -> tuple[frozenset[str], frozenset[str]]:
    """The response headers a route passes back, and the cookies it forwards."""
    extras = {h.lower() for h in route.forward_response_headers}
    allowed = (FORWARDED_RESPONSE | extras) - NEVER_FROM_UPSTREAM - HOP_BY_HOP  # (config refuses such extras too)
    passed = frozenset(h for h in allowed if not h.startswith(NEVER_FROM_UPSTREAM_PREFIXES))
    return passed, frozenset(route.forward_cookies)


def _settable(set_cookie: str, names: frozenset[str]) -> bool:
    """A Set-Cookie passes for a cookie the route forwards, never for one of the gateway's own."""
    pair = set_cookie.split(";", 1)[0]
    name = pair.split("=", 1)[0].strip()
    return "=" in pair and name in names and not gateway_cookie(name)


def _connection_tokens(headers: CIMultiDictProxy[str]) -> frozenset[str] | set[str]:
    """Headers named in `Connection` are hop-by-hop too (RFC 9110 §7.6.1)."""
    if "Connection" not in headers:  # (the usual request and response: HTTP/1.1 keeps alive unasked)
        return HOP_BY_HOP
    tokens = {t.strip().lower() for v in headers.getall("Connection", []) for t in v.split(",") if t.strip()}
    return tokens | HOP_BY_HOP


def _named_cookies(values: list[str], names: frozenset[str]) -> str:
    """The Cookie header with only the route's cookies (default none); the gateway's own never reach an upstream."""
    if not names:
        return ""
    kept = []
    for value in values:
        for pair in value.split(";"):
            name = pair.split("=", 1)[0].strip()
            if name in names and not gateway_cookie(name):
                kept.append(pair.strip())
    return "; ".join(kept)
