"""Which headers cross the gateway, in each direction (RFC 9110 §7.6.1; MCP "Token Passthrough")."""

from __future__ import annotations

from functools import lru_cache

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.config import DEFAULT_IDENTITY_HEADERS, Route
from gateway.identity import RequestContext

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "transfer-encoding", "upgrade",
})
# Never forwarded upstream: credentials, framing we recompute, and client claims about the connection.
REQUEST_DROP = frozenset({
    "authorization", "host", "content-length", "content-encoding", "forwarded", "x-real-ip", "cookie",
    "x-request-id", "true-client-ip", "cf-connecting-ip", "x-client-ip",
    # identity headers other proxies and frameworks trust
    "remote-user", "x-remote-user", "x-user", "x-email", "x-auth-user",
})
DROPPED_PREFIXES = ("x-forwarded-", "x-auth-request-")  # every forwarding claim comes from the gateway
GATEWAY_COOKIE_PREFIXES = ("mcpgw", "__Host-mcpgw", "__Secure-mcpgw")
_DEFAULT_IDENTITY = frozenset(h.lower() for h in DEFAULT_IDENTITY_HEADERS)


def upstream_request_headers(
    inbound: CIMultiDictProxy[str], route: Route, context: RequestContext, *, client_ip: str | None,
    proto: str, host: str, upstream_host: str, identity_jwt: str | None = None, request_id: str | None = None,
    public_host: str | None = None,
) -> CIMultiDict[str]:
    """Inbound headers minus hop-by-hop, credentials and spoofable identity; plus our identity and X-Forwarded-*.
    `public_host` is the route's configured host (X-Forwarded-Host), never the client's Host header."""
    public_host = public_host or host
    strip = _route_strip(tuple(route.identity_headers), route.identity_jwt_header, route.preserve_host)
    named = _connection_tokens(inbound)
    if named:
        strip = strip | named
    out: CIMultiDict[str] = CIMultiDict()
    for key, given in inbound.items():
        # compare canonical names: X_Forwarded_User is X-Forwarded-User to CGI, PHP and some nginx setups
        name = _canonical(key)
        if name not in strip and not name.startswith(DROPPED_PREFIXES):
            out.add(key, given)
    cookies = _foreign_cookies(inbound.getall("Cookie", []))
    if cookies:
        out["Cookie"] = cookies
    out["Host"] = host if route.preserve_host else upstream_host
    if client_ip:
        out["X-Forwarded-For"] = client_ip
    out["X-Forwarded-Proto"] = proto
    out["X-Forwarded-Host"] = public_host
    if request_id is not None:
        out["X-Request-Id"] = request_id  # the same id as the gateway's logs and audit line
    if route.identity_jwt_header and identity_jwt is not None:
        out[route.identity_jwt_header] = identity_jwt
    for header, claim in route.identity_headers.items():
        value = context.claim(claim)
        if value is not None:
            out[header] = value
    return out


@lru_cache(maxsize=1024)
def _route_strip(identity_headers: tuple[str, ...], identity_jwt_header: str | None, preserve_host: bool
                 ) -> frozenset[str]:
    """What a route never forwards upstream, whatever the request (computed once per route configuration)."""
    strip = HOP_BY_HOP | REQUEST_DROP | _DEFAULT_IDENTITY | {_canonical(h) for h in identity_headers}
    if identity_jwt_header:
        strip |= {_canonical(identity_jwt_header)}  # only the gateway may sign identities
    if not preserve_host:
        strip |= {"origin"}  # the gateway validated it; the upstream would judge it against its own host
    return frozenset(strip)


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def client_response_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """Upstream response headers minus hop-by-hop ones (framing is the gateway's own)."""
    named = _connection_tokens(upstream)
    strip = HOP_BY_HOP | named if named else HOP_BY_HOP
    return CIMultiDict((k, v) for k, v in upstream.items() if k.lower() not in strip)


def _connection_tokens(headers: CIMultiDictProxy[str]) -> set[str]:
    """Headers named in `Connection` are hop-by-hop too (RFC 9110 §7.6.1)."""
    return {t.strip().lower() for v in headers.getall("Connection", []) for t in v.split(",") if t.strip()}


def _foreign_cookies(values: list[str]) -> str:
    """The Cookie header without the gateway's own cookies (its session must never reach an upstream)."""
    kept = []
    for value in values:
        for pair in value.split(";"):
            name = pair.split("=", 1)[0].strip()
            if name and not name.startswith(GATEWAY_COOKIE_PREFIXES):
                kept.append(pair.strip())
    return "; ".join(kept)
