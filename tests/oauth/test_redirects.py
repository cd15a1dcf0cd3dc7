"""Redirect URI policy and matching (MCP DCR-4, AUTHZ-3, AUTHZ-4; RFC 8252 §7; OAuth 2.1 §4.1.1)."""

from __future__ import annotations

import pytest

from gateway.oauth.redirects import is_loopback_only, redirect_matches, redirect_uri_problem, with_query


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("https://client.example.com/callback", id="https"),
        pytest.param("https://client.example.com:8443/cb?tenant=a", id="https-port-and-query"),
        pytest.param("https://claude.ai/api/mcp/auth_callback", id="claude"),
        pytest.param("https://chatgpt.com/connector_platform_oauth_redirect", id="chatgpt"),
        pytest.param("http://localhost:8787/callback", id="http-localhost"),
        pytest.param("http://LOCALHOST:3000/cb", id="http-localhost-uppercase"),
        pytest.param("http://127.0.0.1:33418/", id="http-ipv4-loopback"),
        pytest.param("http://127.0.0.1/", id="http-ipv4-loopback-no-port"),
        pytest.param("http://[::1]:8080/callback", id="http-ipv6-loopback"),
        pytest.param("cursor://anysphere.cursor-mcp/oauth/callback", id="cursor-private-use"),
        pytest.param("com.example.app:/cb", id="reverse-domain-private-use"),
    ],
)
def test_redirect_uri_problem_allows_https_loopback_http_and_private_use_schemes(uri: str) -> None:
    """MCP "Communication Security" (https or localhost) and RFC 8252 §7.1/§7.3 (private-use, loopback)."""
    assert redirect_uri_problem(uri) is None


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("http://client.example.com/callback", id="http-non-loopback"),
        pytest.param("http://127.0.0.1.evil.example/cb", id="http-loopback-lookalike-ipv4"),
        pytest.param("http://localhost.evil.example/cb", id="http-loopback-lookalike-name"),
        pytest.param("http://192.168.1.10/cb", id="http-private-address"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("JavaScript:alert(1)", id="javascript-mixed-case"),
        pytest.param("data:text/html,<script>alert(1)</script>", id="data"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("vbscript:msgbox(1)", id="vbscript"),
        pytest.param("https://client.example.com/cb#frag", id="https-fragment"),
        pytest.param("https://client.example.com/cb#", id="https-empty-fragment"),
        pytest.param("http://127.0.0.1:8080/cb#x", id="loopback-fragment"),
        pytest.param("cursor://anysphere.cursor-mcp/oauth/callback#x", id="private-use-fragment"),
        pytest.param("https:///no-host", id="https-without-host"),
        pytest.param("/relative/callback", id="relative"),
        pytest.param("//client.example.com/cb", id="scheme-relative"),
        pytest.param("https://client.example.com/a b", id="whitespace"),
    ],
)
def test_redirect_uri_problem_refuses_plain_http_dangerous_schemes_and_fragments(uri: str) -> None:
    """MCP DCR-4 (S26: http on loopback only; no javascript:/data:/file:) and RFC 6749 §3.1.2 (no fragment)."""
    problem = redirect_uri_problem(uri)
    assert isinstance(problem, str)
    assert problem


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        pytest.param(["https://client.example.com/cb"], "https://client.example.com/cb", id="exact-https"),
        pytest.param(["https://a.example/cb", "https://b.example/cb"], "https://b.example/cb", id="second-of-two"),
        pytest.param(
            ["cursor://anysphere.cursor-mcp/oauth/callback"],
            "cursor://anysphere.cursor-mcp/oauth/callback",
            id="exact-private-use",
        ),
        pytest.param(["http://127.0.0.1:33418/"], "http://127.0.0.1:51234/", id="vscode-fallback-port"),
        pytest.param(["http://127.0.0.1/"], "http://127.0.0.1:51234/", id="registered-without-port"),
        pytest.param(["http://localhost:8787/callback"], "http://localhost:50123/callback", id="localhost-any-port"),
        pytest.param(["http://[::1]:1000/cb"], "http://[::1]:2000/cb", id="ipv6-loopback-any-port"),
        pytest.param(["http://127.0.0.1:1000/cb?x=1"], "http://127.0.0.1:2000/cb?x=1", id="loopback-same-query"),
    ],
)
def test_redirect_matches_exactly_or_on_any_loopback_port(registered: list[str], requested: str) -> None:
    """MCP AUTHZ-3 (exact string matching) and AUTHZ-4 (RFC 8252 §7.3: loopback MUST allow any port)."""
    assert redirect_matches(registered, requested) is True
    assert redirect_matches(tuple(registered), requested) is True


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        pytest.param(["https://client.example.com/cb"], "https://client.example.com/cb/", id="trailing-slash"),
        pytest.param(["https://client.example.com/cb"], "https://client.example.com/CB", id="path-case"),
        pytest.param(["https://client.example.com/cb"], "https://client.example.com/cb?x=1", id="added-query"),
        pytest.param(["https://client.example.com/cb"], "https://evil.example.com/cb", id="other-host"),
        pytest.param(["https://client.example.com/cb"], "https://client.example.com:8443/cb", id="https-other-port"),
        pytest.param(
            ["https://client.example.com:8443/cb"], "https://client.example.com:9443/cb", id="https-port-must-match"
        ),
        pytest.param(
            ["https://client.example.com/cb"], "https://client.example.com:443/cb", id="https-explicit-default-port"
        ),
        pytest.param(["http://127.0.0.1:33418/callback"], "http://127.0.0.1:33418/other", id="loopback-other-path"),
        pytest.param(["http://127.0.0.1:1000/cb?x=1"], "http://127.0.0.1:2000/cb?x=2", id="loopback-other-query"),
        pytest.param(["http://127.0.0.1:1000/cb"], "http://127.0.0.1:2000/cb?x=1", id="loopback-added-query"),
        pytest.param(["http://localhost:8787/callback"], "http://127.0.0.1:8787/callback", id="localhost-vs-ipv4"),
        pytest.param(["http://127.0.0.1:8787/callback"], "http://localhost:8787/callback", id="ipv4-vs-localhost"),
        pytest.param(["http://127.0.0.1:8787/callback"], "http://[::1]:8787/callback", id="ipv4-vs-ipv6"),
        pytest.param(["http://127.0.0.1:8787/callback"], "https://127.0.0.1:8787/callback", id="loopback-scheme"),
        pytest.param(
            ["https://127.0.0.1:8787/callback"], "https://127.0.0.1:9999/callback", id="https-loopback-port-exact"
        ),
        pytest.param(["http://127.0.0.1:1000/cb"], "http://127.0.0.1:99999/cb", id="invalid-port"),
        pytest.param(["https://client.example.com/cb"], "", id="empty"),
        pytest.param([], "https://client.example.com/cb", id="nothing-registered"),
    ],
)
def test_redirect_matches_refuses_any_other_difference(registered: list[str], requested: str) -> None:
    """MCP AUTHZ-3/BP26 "exact string matching (not pattern matching or wildcards)"; the port exception is for
    http loopback only, and scheme, host, path and query must still match (RFC 8252 §7.3)."""
    assert redirect_matches(registered, requested) is False


@pytest.mark.parametrize(
    ("uri", "params", "result"),
    [
        pytest.param(
            "https://c.example/cb",
            {"code": "abc", "state": "s1"},
            "https://c.example/cb?code=abc&state=s1",
            id="no-query",
        ),
        pytest.param(
            "https://c.example/cb?tenant=a",
            {"code": "abc"},
            "https://c.example/cb?tenant=a&code=abc",
            id="keeps-existing-query",
        ),
        pytest.param(
            "https://c.example/cb", {"code": "abc", "state": None}, "https://c.example/cb?code=abc", id="drops-none"
        ),
        pytest.param(
            "https://c.example/cb",
            {"iss": "https://gw.example.com"},
            "https://c.example/cb?iss=https%3A%2F%2Fgw.example.com",
            id="encodes-values",
        ),
        pytest.param(
            "cursor://anysphere.cursor-mcp/oauth/callback",
            {"code": "x"},
            "cursor://anysphere.cursor-mcp/oauth/callback?code=x",
            id="private-use",
        ),
    ],
)
def test_with_query_appends_parameters_and_keeps_an_existing_query(
    uri: str, params: dict[str, str | None], result: str
) -> None:
    """RFC 6749 §3.1.2: the redirection endpoint's query component MUST be retained when adding parameters."""
    assert with_query(uri, params) == result


@pytest.mark.parametrize(
    ("uris", "loopback_only"),
    [
        pytest.param(["http://127.0.0.1:33418/"], True, id="ipv4"),
        pytest.param(["http://localhost:1/cb", "http://[::1]:2/cb"], True, id="all-loopback"),
        pytest.param(["http://127.0.0.1/", "https://vscode.dev/redirect"], False, id="mixed"),
        pytest.param(["https://claude.ai/api/mcp/auth_callback"], False, id="https"),
        pytest.param(["cursor://anysphere.cursor-mcp/oauth/callback"], False, id="private-use"),
        pytest.param([], False, id="empty"),
    ],
)
def test_is_loopback_only_flags_clients_that_only_redirect_to_this_machine(
    uris: list[str], loopback_only: bool
) -> None:
    """MCP CIMD-6 / S26 "Localhost Redirect URI Risks": the consent page warns on localhost-only clients."""
    assert is_loopback_only(uris) is loopback_only
