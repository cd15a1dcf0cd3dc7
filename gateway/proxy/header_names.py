"""Which header names cross the gateway (allow-lists) and which no setting can let through.

Plain constants shared by configuration checks and the proxy; names are lowercase. Sources: RFC 9110 §5.1 (names
are tokens, compared case-insensitively), §7.6.1 (hop-by-hop), MCP Streamable HTTP 2026-07-28 "Request Metadata"
and 2025-11-25 (sessions, resumption), W3C Trace Context.
"""

from __future__ import annotations

import re

TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 §5.6.2: field names; cookie names (RFC 6265 §4.1.1)

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# -- client -> upstream -------------------------------------------------------------------------------------------
MCP_PARAM_PREFIX = "mcp-param-"  # 2026-07-28 x-mcp-header mirrors: intermediaries MUST forward them
FORWARDED_REQUEST = frozenset(
    {
        # MCP transport: 2026-07-28 request metadata; 2025-03-26..2025-11-25 sessions and stream resumption
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
        "mcp-session-id",
        "last-event-id",
        # content negotiation
        "accept",
        "accept-language",
        "content-type",
        "user-agent",
        # W3C Trace Context: joins the upstream's spans to the client's trace; no identity in it (`baggage` may carry
        # anything, so it is not here)
        "traceparent",
        "tracestate",
    }
)
# Set or decided by the gateway itself: routes[].forward_headers can never re-admit them (nor the identity headers)
GATEWAY_REQUEST = frozenset(
    {
        "authorization",
        "cookie",
        "host",
        "origin",
        "content-length",
        "content-encoding",
        "accept-encoding",  # always identity: the gateway reads every SSE stream (event ids) and filtered body
        "forwarded",
        "x-real-ip",
        "x-request-id",
    }
)
GATEWAY_REQUEST_PREFIXES = ("x-forwarded-", "x-mcpgw-")  # forwarding claims and the gateway's own: from it alone
# The gateway's own cookies (login session): never sent upstream, never set by an upstream
GATEWAY_COOKIE_PREFIXES = ("mcpgw", "__host-mcpgw", "__secure-mcpgw")

# -- upstream -> client -------------------------------------------------------------------------------------------
FORWARDED_RESPONSE = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "content-language",
        "cache-control",
        "expires",
        "pragma",
        "etag",
        "last-modified",
        "vary",
        "mcp-session-id",
        "mcp-protocol-version",
        "x-accel-buffering",
        "retry-after",
        "allow",  # 429/503 back-off; 405 (GET on a 2026-07-28 server)
    }
)
# What an upstream behind one route must never say for the gateway's whole origin (cookies, CORS, HSTS, where to
# sign in, where to go), whatever routes[].forward_response_headers lists. Set-Cookie alone may pass, for a cookie
# named in the route's forward_cookies.
NEVER_FROM_UPSTREAM = frozenset(
    {
        "set-cookie",
        "set-cookie2",
        "clear-site-data",
        "strict-transport-security",
        "alt-svc",
        "refresh",
        "location",
        "content-location",
        "www-authenticate",
        "service-worker-allowed",
        "accept-ch",
        "critical-ch",
        "nel",
        "report-to",
        "reporting-endpoints",
        "origin-agent-cluster",
        "public-key-pins",
        "public-key-pins-report-only",
        "expect-ct",
        "timing-allow-origin",
        "x-request-id",
    }
)
NEVER_FROM_UPSTREAM_PREFIXES = ("access-control-",)


def canonical(name: str) -> str:
    """How CGI, PHP and some nginx setups see a name: X_Forwarded_User is X-Forwarded-User to them."""
    return name.lower().replace("_", "-")


def gateway_cookie(name: str) -> bool:
    return name.lower().startswith(GATEWAY_COOKIE_PREFIXES)
