"""Which headers cross the gateway, in each direction (RFC 9110 §7.6.1; MCP "Token Passthrough")."""

from __future__ import annotations

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
    strip = HOP_BY_HOP | REQUEST_DROP | _DEFAULT_IDENTITY | {_canonical(h) for h in route.identity_headers}
    if route.identity_jwt_header:
        strip |= {_canonical(route.identity_jwt_header)}  # only the gateway may sign identities
    strip |= _connection_tokens(inbound)
    if not route.preserve_host:
        strip |= {"origin"}  # the gateway validated it; the upstream would judge it against its own host
    # compare canonical names: X_Forwarded_User is X-Forwarded-User to CGI, PHP and some nginx setups
    out = CIMultiDict((k, v) for k, v in inbound.items()
                      if _canonical(k) not in strip and not _canonical(k).startswith(DROPPED_PREFIXES))
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
    for name, claim in route.identity_headers.items():
        value = context.claim(claim)
        if value is not None:
            out[name] = value
    return out


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def client_response_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """Upstream response headers minus hop-by-hop ones (framing is the gateway's own)."""
    strip = HOP_BY_HOP | _connection_tokens(upstream)
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
