"""Which private-use redirect schemes may be registered (RFC 8252 §7.1; issue 10, finding 18), wherever a redirect
URI is accepted: DCR, CIMD, `clients add`, YAML clients and clients already in the store."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.accounts import AccountError, add_static_client
from gateway.clients.cimd import CimdError, parse_document
from gateway.config import ConfigError, Settings
from gateway.oauth.redirects import DEFAULT_PRIVATE_USE_SCHEMES, redirect_uri_problem

NOW = 1_800_000_000.0
BASE = {"public_url": "https://gw.example.com", "routes": [{"name": "a", "upstream": "http://127.0.0.1:9/mcp"}]}


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        pytest.param("com.example.app:/oauth2redirect", True, id="reverse-dns"),
        pytest.param("io.github.someone.app:/cb", True, id="reverse-dns-long"),
        pytest.param("cursor://anysphere.cursor-mcp/oauth/callback", True, id="cursor-default"),
        pytest.param("vscode://vscode.github-authentication/did-authenticate", True, id="vscode-default"),
        pytest.param("ms-msdt:-id%20PCWDiagnostic", False, id="ms-msdt"),
        pytest.param("search-ms:query=x", False, id="search-ms"),
        pytest.param("ms-settings:", False, id="ms-settings"),
        pytest.param("zoommtg://zoom.us/join", False, id="zoommtg"),
        pytest.param("com.:/cb", False, id="trailing-period"),
        pytest.param("a.b:/cb", False, id="one-letter-first-label"),
        pytest.param("x.example.app:/cb", False, id="one-letter-tld"),
        pytest.param("1.app:/cb", False, id="numeric-first-label"),
        pytest.param("c0m.example:/cb", False, id="digit-in-first-label"),
        pytest.param("https://xn--pple-43d.com/cb", False, id="punycode-host"),
        pytest.param("https://\u0430pple.com/cb", False, id="non-ascii-host"),
        pytest.param("https://client.example.com/\u202ebc", False, id="bidi-override-in-path"),
        pytest.param("com.example.app:/\u200bcb", False, id="zero-width-in-private-use-uri"),
        pytest.param("https://client.example.com/cb", True, id="https-unaffected"),
        pytest.param("http://127.0.0.1:5000/cb", True, id="loopback-unaffected"),
        pytest.param("https://client.example.com/" + "a" * 2000, False, id="over-2000-characters"),
    ],
)
def test_redirect_uri_problem_under_the_default_scheme_policy(uri: str, allowed: bool) -> None:
    """RFC 8252 §7.1: reverse-DNS schemes, plus the well-known MCP clients' schemes without a period (Cursor,
    VS Code, Windsurf); OS handlers such as ms-msdt:/search-ms: (remote code execution in the past) are refused.
    Security review 2, R12: a reverse-DNS scheme starts with a TLD-shaped label (letters, at least two); URIs are
    ASCII and https hosts never punycode (homographs on the consent page)."""
    problem = redirect_uri_problem(uri, private_use_schemes=DEFAULT_PRIVATE_USE_SCHEMES)
    assert (problem is None) is allowed, problem


def test_the_default_scheme_list_is_the_configured_default() -> None:
    """`oauth.private_use_schemes` defaults to the list above; cursor is in it (MCP DCR-4's real client)."""
    settings = Settings(**BASE)
    assert settings.oauth.private_use_schemes == list(DEFAULT_PRIVATE_USE_SCHEMES)
    assert "cursor" in settings.oauth.private_use_schemes


@pytest.mark.parametrize(
    ("oauth", "clients", "fragment"),
    [
        pytest.param({"private_use_schemes": ["https"]}, [], "oauth.private_use_schemes", id="https-as-private-use"),
        pytest.param({"private_use_schemes": ["javascript"]}, [], "oauth.private_use_schemes", id="javascript"),
        pytest.param({"private_use_schemes": ["My App"]}, [], "oauth.private_use_schemes", id="not-a-scheme"),
        pytest.param(
            {},
            [{"client_id": "c", "redirect_uris": ["ms-msdt:x"]}],
            "clients[0].redirect_uris[0]",
            id="yaml-client-ms-msdt",
        ),
        pytest.param(
            {"private_use_schemes": []},
            [{"client_id": "c", "redirect_uris": ["cursor://a/b"]}],
            "clients[0].redirect_uris[0]",
            id="yaml-client-unlisted-scheme",
        ),
        pytest.param(
            {},
            [
                {
                    "client_id": "c",
                    "redirect_uris": ["https://c.example/cb"],
                    "token_endpoint_auth_method": "client_secret_basic",
                }
            ],
            "clients[0].client_secret",
            id="secret-method-without-secret",
        ),
        pytest.param(
            {},
            [
                {
                    "client_id": "c",
                    "redirect_uris": ["https://c.example/cb"],
                    "client_secret": "x" * 20,
                    "token_endpoint_auth_method": "none",
                }
            ],
            "clients[0].token_endpoint_auth_method",
            id="public-method-with-secret",
        ),
    ],
)
def test_configuration_applies_the_same_rules(
    oauth: dict[str, Any], clients: list[dict[str, Any]], fragment: str
) -> None:
    """YAML clients are held to DCR's redirect rules, scheme names are checked, and a client_secret_* method
    without a secret (which would have authenticated with nothing) is a configuration error."""
    with pytest.raises(ConfigError) as raised:
        Settings(**BASE, oauth=oauth, clients=clients)
    assert any(p.startswith(fragment) for p in raised.value.problems), raised.value.problems


def test_an_operator_may_allow_another_scheme_for_yaml_clients() -> None:
    settings = Settings(
        **BASE, oauth={"private_use_schemes": ["myapp"]}, clients=[{"client_id": "c", "redirect_uris": ["myapp:/cb"]}]
    )
    assert settings.clients[0].redirect_uris == ["myapp:/cb"]


@pytest.mark.parametrize("uri", ["ms-msdt:-id%20PCWDiagnostic", "search-ms:query=x"])
def test_cimd_documents_follow_the_scheme_policy(uri: str) -> None:
    """A CIMD document is client metadata like a DCR body: the same schemes are refused."""
    url = "https://client.example.com/meta"
    body = f'{{"client_id": "{url}", "client_name": "x", "redirect_uris": ["{uri}"]}}'.encode()
    with pytest.raises(CimdError):
        parse_document(url, body, now=NOW)


@pytest.mark.parametrize("uri", ["ms-msdt:-id%20PCWDiagnostic", "search-ms:query=x"])
async def test_clients_add_follows_the_scheme_policy(store, uri: str) -> None:
    """`clients add` (admin) refuses the same schemes, with the one-line reason the CLI prints."""
    with pytest.raises(AccountError, match="private-use scheme"):
        await add_static_client(
            store, client_id="admin-added", redirect_uris=[uri], auth_method="none", name=None, secret=None, now=NOW
        )
