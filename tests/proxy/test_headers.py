"""Header policy in both directions (RFC 9110 §7.6.1 hop-by-hop; MCP RS-9, RS-14; contract identity headers)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.config import Route
from gateway.identity import RequestContext
from gateway.proxy.headers import client_response_headers, upstream_request_headers
from gateway.store.records import AccessTokenRecord

RECORD = AccessTokenRecord(user_id="local:alice", email=None, preferred_username="alice", groups=(),
                           client_id="cid", route="alpha", resource="https://gw/alpha/mcp", scopes=("a", "b"),
                           issued_at=0, expires_at=10)


def forward(headers: dict[str, str], **route: object) -> CIMultiDict[str]:
    config = Route(name="alpha", path="/alpha/mcp", upstream="http://10.0.0.5:9001/mcp", **route)  # type: ignore[arg-type]
    return upstream_request_headers(CIMultiDictProxy(CIMultiDict(headers)), config, RequestContext("t", RECORD),
                                    client_ip="192.0.2.7", proto="https", host="gw.example.com",
                                    upstream_host="10.0.0.5:9001")


@pytest.mark.parametrize("name", ["Mcp-Session-Id", "MCP-Protocol-Version", "Last-Event-ID", "Mcp-Method",
                                  "Mcp-Name", "Mcp-Param-Region", "Accept", "Content-Type", "User-Agent"])
def test_protocol_headers_pass_unchanged(name):
    assert forward({name: "v1"})[name] == "v1"


@pytest.mark.parametrize("name", ["Authorization", "Connection", "Keep-Alive", "TE", "Transfer-Encoding", "Upgrade",
                                  "Proxy-Authorization", "Forwarded", "X-Real-IP", "Content-Length"])
def test_credentials_and_hop_by_hop_headers_are_dropped(name):
    assert name not in forward({name: "x"})


def test_headers_named_in_connection_are_dropped():
    """RFC 9110 §7.6.1: Connection lists more hop-by-hop fields."""
    out = forward({"Connection": "close, X-Hop", "X-Hop": "1", "X-Keep": "2"})
    assert "X-Hop" not in out and out["X-Keep"] == "2"


def test_absent_claims_send_no_header_and_spoofed_copies_are_gone():
    out = forward({"X-Forwarded-Email": "mallory@evil.example", "x-forwarded-groups": "admin"})
    assert "X-Forwarded-Email" not in out and "X-Forwarded-Groups" not in out
    assert out["X-Forwarded-User"] == "local:alice" and out["X-MCP-Scopes"] == "a b"


def test_custom_identity_headers_replace_the_defaults_and_defaults_are_still_stripped():
    """Contract: configurable per route; any inbound copy of a default name is removed even when unused."""
    out = forward({"X-Forwarded-User": "spoof", "X-User": "spoof"}, identity_headers={"X-User": "user"})
    assert out["X-User"] == "local:alice"
    assert "X-Forwarded-User" not in out


def test_host_and_origin_are_the_upstreams_unless_preserved():
    out = forward({"Origin": "https://app.example"})
    assert out["Host"] == "10.0.0.5:9001" and "Origin" not in out
    kept = forward({"Origin": "https://app.example"}, preserve_host=True)
    assert kept["Host"] == "gw.example.com" and kept["Origin"] == "https://app.example"
    assert out["X-Forwarded-For"] == "192.0.2.7" and out["X-Forwarded-Proto"] == "https"


def test_response_hop_by_hop_headers_are_dropped():
    upstream = CIMultiDictProxy(CIMultiDict({"Transfer-Encoding": "chunked", "Mcp-Session-Id": "s1",
                                             "Content-Type": "text/event-stream", "Connection": "keep-alive"}))
    out = client_response_headers(upstream)
    assert dict(out) == {"Mcp-Session-Id": "s1", "Content-Type": "text/event-stream"}
