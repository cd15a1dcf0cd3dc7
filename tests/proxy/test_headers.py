"""Header policy in both directions: allow-lists (RFC 9110 §7.6.1 hop-by-hop; MCP RS-9, RS-14, Streamable HTTP
"Request Metadata"; contract identity headers; issue 10 #9 and #12)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.config import Route
from gateway.identity import RequestContext
from gateway.proxy.headers import (
    MAX_SESSION_ID_LENGTH,
    client_response_headers,
    request_header_problem,
    upstream_request_headers,
    valid_session_id,
)
from gateway.store.records import AccessTokenRecord
from tests.support.foreign_identity import OTHER_PROXIES_IDENTITY

RECORD = AccessTokenRecord(
    user_id="local:alice",
    email=None,
    preferred_username="alice",
    groups=(),
    client_id="cid",
    route="alpha",
    resource="https://gw/alpha/mcp",
    scopes=("a", "b"),
    issued_at=0,
    expires_at=10,
)


def make_route(**extra: object) -> Route:
    return Route(name="alpha", path="/alpha/mcp", upstream="http://10.0.0.5:9001/mcp", **extra)  # type: ignore[arg-type]


def headers(pairs: dict[str, str] | list[tuple[str, str]]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def forward(inbound: dict[str, str] | list[tuple[str, str]], **route: object) -> CIMultiDict[str]:
    """The header lines sent upstream, as a multidict to read (in order, repeats kept)."""
    return CIMultiDict(
        upstream_request_headers(
            headers(inbound),
            make_route(**route),
            RequestContext("t", RECORD),
            client_ip="192.0.2.7",
            proto="https",
            host="gw.example.com",
            upstream_host="10.0.0.5:9001",
        )
    )


def respond(upstream: dict[str, str] | list[tuple[str, str]], **route: object) -> CIMultiDict[str]:
    return CIMultiDict(client_response_headers(headers(upstream), make_route(**route)))


# -- request headers -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Mcp-Session-Id",
        "MCP-Protocol-Version",
        "Mcp-Method",
        "Mcp-Name",
        "Mcp-Param-Region",
        "Mcp-Param-user_id",
        "Accept",
        "Accept-Language",
        "Content-Type",
        "User-Agent",
        "traceparent",
        "tracestate",
    ],
)
def test_protocol_headers_pass_unchanged(name):
    """MCP RS-14 and Streamable HTTP: intermediaries MUST forward Mcp-Param-* (a param's name may hold `_`)."""
    assert forward({name: "v1"})[name] == "v1"


def test_last_event_id_goes_only_as_the_gateway_bound_it():
    """A client's Last-Event-ID names the gateway's event id (gateway.mcp.event_ids): it never goes upstream as sent;
    the upstream id it was checked to stand for goes instead, once."""
    assert "Last-Event-ID" not in forward({"Last-Event-ID": "client-made"})
    sent = CIMultiDict(
        upstream_request_headers(
            headers({"Last-Event-ID": "client-made"}),
            make_route(),
            RequestContext("t", RECORD),
            client_ip=None,
            proto="https",
            host="gw.example.com",
            upstream_host="10.0.0.5:9001",
            last_event_id="upstream-17",
        )
    )
    assert sent.getall("Last-Event-ID") == ["upstream-17"]


def test_the_gateway_sets_each_of_its_own_lines_once():
    """Whatever the client sends under the gateway's own names, each goes upstream once, as the gateway set it."""
    own = ["Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id", "Accept-Encoding"]
    sent = forward([(name, "forged") for name in own], forward_headers=["X-Tenant"])
    for name in own:  # (X-Request-Id: none here, the helper names no request id)
        values = sent.getall(name, [])
        assert len(values) == (0 if name == "X-Request-Id" else 1) and "forged" not in values, name


def test_the_upstream_is_always_asked_for_an_uncompressed_answer():
    """Review 2, R2 regression: the gateway reads every SSE stream it relays (event ids) and, on filtered routes,
    every body; a client's Accept-Encoding would get it compressed answers it refuses (502)."""
    assert forward({"Accept-Encoding": "gzip, br"}).getall("Accept-Encoding") == ["identity"]
    assert forward({}).getall("Accept-Encoding") == ["identity"]


@pytest.mark.parametrize("name", OTHER_PROXIES_IDENTITY)
def test_headers_outside_the_allow_list_never_reach_the_upstream(name):
    """Issue 10 #9: an allow-list, not a deny-list; none of these is named anywhere in the gateway."""
    assert name not in forward({name: "mallory@example.com"})


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "Connection",
        "Keep-Alive",
        "TE",
        "Transfer-Encoding",
        "Upgrade",
        "Proxy-Authorization",
        "Forwarded",
        "X-Real-IP",
        "Content-Length",
        "Content-Encoding",
        "X-Request-Id",
    ],
)
def test_credentials_and_hop_by_hop_headers_are_dropped(name):
    assert name not in forward({name: "x"})


def test_route_extras_are_forwarded_by_their_exact_spelling_only():
    """routes[].forward_headers: `X_Tenant` is not `X-Tenant` (CGI would read both as HTTP_X_TENANT)."""
    assert "X-Tenant" not in forward({"X-Tenant": "acme"})
    out = forward([("X-Tenant", "acme"), ("X_Tenant", "evil")], forward_headers=["x-tenant"])
    assert out.getall("X-Tenant") == ["acme"] and "X_Tenant" not in out


def test_headers_named_in_connection_are_dropped():
    """RFC 9110 §7.6.1: Connection lists more hop-by-hop fields, allow-listed ones included."""
    out = forward({"Connection": "close, Mcp-Name", "Mcp-Name": "add", "Mcp-Method": "tools/call"})
    assert "Mcp-Name" not in out and out["Mcp-Method"] == "tools/call"


def test_absent_claims_send_no_header_and_spoofed_copies_are_gone():
    out = forward({"X-Forwarded-Email": "mallory@evil.example", "x-forwarded-groups": "admin"})
    assert "X-Forwarded-Email" not in out and "X-Forwarded-Groups" not in out
    assert out["X-Forwarded-User"] == "local:alice" and out["X-MCP-Scopes"] == "a b"


def test_custom_identity_headers_replace_the_defaults_and_defaults_are_still_stripped():
    """Contract: configurable per route; any inbound copy of a default name is removed even when unused."""
    out = forward({"X-Forwarded-User": "spoof", "X-User": "spoof"}, identity_headers={"X-User": "user"})
    assert out.getall("X-User") == ["local:alice"]
    assert "X-Forwarded-User" not in out


def test_host_and_origin_are_the_upstreams_unless_preserved():
    out = forward({"Origin": "https://app.example"})
    assert out["Host"] == "10.0.0.5:9001" and "Origin" not in out
    kept = forward({"Origin": "https://app.example"}, preserve_host=True)
    assert kept["Host"] == "gw.example.com" and kept["Origin"] == "https://app.example"
    assert out["X-Forwarded-For"] == "192.0.2.7" and out["X-Forwarded-Proto"] == "https"


def test_no_cookie_goes_upstream_unless_the_route_names_it():
    """Issue 10 #9/#12: routes[].forward_cookies (default none); the gateway's own cookies never, even if named."""
    cookie = {"Cookie": "mcpgw_session=secret; theme=dark; __Host-mcpgw_session=x; lang=en"}
    assert "Cookie" not in forward(cookie)
    assert forward(cookie, forward_cookies=["theme"])["Cookie"] == "theme=dark"
    assert "Cookie" not in forward(cookie, forward_cookies=["mcpgw_session", "__Host-mcpgw_session"])


@pytest.mark.parametrize(
    "pairs",
    [
        [("Mcp_Method", "tools/call")],
        [("MCP_Protocol_Version", "2026-07-28")],
        [("Mcp-Param_Region", "eu")],
        [("Mcp_Session_Id", "s")],
        [("Mcp-Name", "add"), ("Mcp-Name", "delete_everything")],
        [("Mcp-Name", "add"), ("mcp_name", "delete_everything")],
        [("MCP-Protocol-Version", "2026-07-28"), ("mcp-protocol-version", "2025-11-25")],
        [("Mcp-Param-Region", "eu"), ("mcp-param-region", "us")],
        [("Mcp-Param-user_id", "1"), ("Mcp-Param-user-id", "2")],
        [("Last-Event-ID", "1"), ("Last-Event-ID", "2")],
    ],
)
def test_duplicate_or_underscore_spellings_of_mcp_headers_are_refused(pairs):
    """Issue 10 #9: the gateway and an upstream (or a CGI/nginx layer in front of it) could read them differently."""
    assert request_header_problem(headers(pairs)) is not None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("has space", id="space"),
        pytest.param("tab\there", id="control"),
        pytest.param("caf\u00e9", id="not-ascii"),
        pytest.param("ab\x7f", id="del"),
        pytest.param("x" * (MAX_SESSION_ID_LENGTH + 1), id="too-long"),
    ],
)
def test_a_session_id_outside_visible_ascii_or_the_bound_is_refused(value):
    """Security review 2, R4c: MCP 2025-11-25 Streamable HTTP, "Session Management": a session ID MUST only contain
    visible ASCII (0x21-0x7E); its length is bounded (it keys the session owner in the store)."""
    assert not valid_session_id(value)
    assert "Mcp-Session-Id" in (request_header_problem(headers({"Mcp-Session-Id": value})) or "")


def test_a_visible_ascii_session_id_within_the_bound_is_fine():
    for value in ("x" * MAX_SESSION_ID_LENGTH, "0f1e-UUID_like.~!#$%&'*+^`|", "e9c1a9a6-4c1b-4e0f-9a43-3d1d5b0b2e1f"):
        assert valid_session_id(value) and request_header_problem(headers({"Mcp-Session-Id": value})) is None


def test_single_hyphenated_mcp_headers_are_fine():
    assert (
        request_header_problem(
            headers(
                {
                    "MCP-Protocol-Version": "2026-07-28",
                    "Mcp-Method": "tools/call",
                    "Mcp-Name": "add",
                    "Mcp-Param-Region": "eu",
                    "Mcp-Param-user_id": "7",
                    "Last-Event-ID": "3",
                    "X_Other": "not ours",
                }
            )
        )
        is None
    )


# -- response headers ----------------------------------------------------------------------------------------------


def test_response_hop_by_hop_headers_are_dropped():
    out = respond(
        {
            "Transfer-Encoding": "chunked",
            "Mcp-Session-Id": "s1",
            "Content-Type": "text/event-stream",
            "Connection": "keep-alive",
        }
    )
    assert dict(out) == {"Mcp-Session-Id": "s1", "Content-Type": "text/event-stream"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Set-Cookie", "mcpgw_session=attacker; Path=/"),
        ("Set-Cookie", "__Host-mcpgw_session=attacker; Path=/; Secure"),
        ("Set-Cookie", "theme=dark"),
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Clear-Site-Data", '"cookies", "storage"'),
        ("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload"),
        ("Alt-Svc", 'h3=":443"'),
        ("Refresh", "0; url=https://evil.example/"),
        ("Location", "https://evil.example/"),
        ("WWW-Authenticate", 'Bearer resource_metadata="https://evil.example/.well-known/oauth-protected-resource"'),
        ("Service-Worker-Allowed", "/"),
        ("NEL", '{"report_to":"x","max_age":86400}'),
        ("Report-To", '{"group":"x","max_age":86400,"endpoints":[{"url":"https://evil.example"}]}'),
        ("X-Request-Id", "upstream-id"),
        ("X-Powered-By", "Express"),
    ],
)
def test_upstream_response_headers_outside_the_allow_list_are_dropped(name, value):
    """Issue 10 #12: an upstream behind one path route must not speak for the gateway's whole origin."""
    assert name not in respond({name: value, "Content-Type": "application/json"})


def test_response_extras_and_the_routes_own_cookies_pass():
    out = respond(
        [
            ("X-RateLimit-Remaining", "7"),
            ("Set-Cookie", "theme=dark; Path=/notes"),
            ("Set-Cookie", "other=1"),
            ("Set-Cookie", "mcpgw_session=attacker"),
        ],
        forward_response_headers=["X-RateLimit-Remaining"],
        forward_cookies=["theme", "mcpgw_session"],
    )
    assert out["X-RateLimit-Remaining"] == "7"
    assert out.getall("Set-Cookie") == ["theme=dark; Path=/notes"]  # never the gateway's, even when listed


def test_response_extras_cannot_readmit_what_speaks_for_the_origin():
    """Defence in depth: configuration refuses these extras; the proxy ignores them even so."""
    out = respond(
        {"Set-Cookie": "a=1", "Access-Control-Allow-Origin": "*", "Strict-Transport-Security": "max-age=1"},
        forward_response_headers=["Set-Cookie", "Access-Control-Allow-Origin", "Strict-Transport-Security"],
    )
    assert dict(out) == {}
