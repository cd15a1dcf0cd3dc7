"""Client ID Metadata Documents, the pure parts: URL shape, special-use addresses, document parsing
(draft-ietf-oauth-client-id-metadata-document; MCP CIMD-1, CIMD-2, CIMD-4, CIMD-8)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.clients.cimd import CimdError, check_url, is_cimd_client_id, parse_document, special_use

NOW = 1_800_000_000.0
VSCODE = "https://vscode.dev/oauth/client-metadata.json"
VSCODE_REDIRECTS = [
    "https://insiders.vscode.dev/redirect",
    "https://vscode.dev/redirect",
    "http://127.0.0.1/",
    "http://127.0.0.1:33418/",
]


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://claude.ai/oauth/mcp-oauth-client-metadata", id="claude"),
        pytest.param("https://claude.ai/oauth/claude-code-client-metadata", id="claude-code"),
        pytest.param(VSCODE, id="vscode"),
        pytest.param("https://grok.com/oauth/mcp-client.json", id="grok"),
        pytest.param("https://client.example.com:8443/meta", id="with-port"),
    ],
)
def test_check_url_accepts_https_urls_with_a_path(url: str) -> None:
    """MCP CIMD-1 / CIMD-8: the known client URLs are valid client identifiers."""
    check_url(url)
    assert is_cimd_client_id(url)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://client.example.com/meta", id="http"),
        pytest.param("ftp://client.example.com/meta", id="ftp"),
        pytest.param("https:///meta", id="no-host"),
        pytest.param("https://client.example.com", id="no-path"),
        pytest.param("https://client.example.com/", id="root-path"),
        pytest.param("https://client.example.com/./meta", id="single-dot-segment"),
        pytest.param("https://client.example.com/a/../meta", id="double-dot-segment"),
        pytest.param("https://client.example.com/meta/..", id="trailing-double-dot"),
        pytest.param("https://client.example.com/%2e%2e/meta", id="percent-encoded-double-dot"),
        pytest.param("https://client.example.com/meta#frag", id="fragment"),
        pytest.param("https://client.example.com/meta#", id="empty-fragment"),
        pytest.param("https://user@client.example.com/meta", id="userinfo"),
        pytest.param("https://user:pass@client.example.com/meta", id="userinfo-with-password"),
        pytest.param("https://client.example.com/meta?v=1", id="query"),
        pytest.param("https://client.example.com/meta?", id="empty-query"),
        pytest.param("https://xn--pple-43d.com/meta", id="punycode-host"),
        pytest.param("https://\u0430pple.com/meta", id="non-ascii-host"),
        pytest.param("https://client.example.com/\u202emeta", id="bidi-override-in-path"),
        pytest.param("https://client.example.com/me ta", id="space-in-path"),
    ],
)
def test_check_url_refuses_urls_that_are_not_valid_client_identifiers(url: str) -> None:
    """MCP CIMD-1 (CIMD "Client Identifier"): https with a path; no dot segments (RFC 3986 §6.2.2.2 makes
    %2e a dot), no fragment, no user info; a query SHOULD NOT be present (we refuse it). Its host names the client
    on the consent page: ASCII, never punycode (security review 2, R12)."""
    with pytest.raises(CimdError):
        check_url(url)


@pytest.mark.parametrize(
    "client_id",
    [
        pytest.param("mcpgw_c_abc", id="dcr"),
        pytest.param("chatgpt-predefined", id="static"),
        pytest.param("http://client.example.com/meta", id="http-url"),
    ],
)
def test_only_https_client_ids_are_metadata_documents(client_id: str) -> None:
    """MCP CIMD-1/CIMD-7: a client_id is a document URL iff it starts with https://."""
    assert is_cimd_client_id(client_id) is False


@pytest.mark.parametrize(
    ("address", "special"),
    [
        pytest.param("127.0.0.1", True, id="ipv4-loopback"),
        pytest.param("127.255.255.254", True, id="ipv4-loopback-range"),
        pytest.param("0.0.0.0", True, id="unspecified"),
        pytest.param("10.1.2.3", True, id="rfc1918-10"),
        pytest.param("172.16.0.1", True, id="rfc1918-172.16"),
        pytest.param("172.31.255.255", True, id="rfc1918-172.31"),
        pytest.param("192.168.1.1", True, id="rfc1918-192.168"),
        pytest.param("169.254.169.254", True, id="link-local-cloud-metadata"),
        pytest.param("100.64.0.1", True, id="cgnat"),
        pytest.param("224.0.0.1", True, id="ipv4-multicast"),
        pytest.param("::1", True, id="ipv6-loopback"),
        pytest.param("::", True, id="ipv6-unspecified"),
        pytest.param("fc00::1", True, id="ula-fc00"),
        pytest.param("fd12:3456::1", True, id="ula-fd"),
        pytest.param("fe80::1", True, id="ipv6-link-local"),
        pytest.param("fe80::1%eth0", True, id="ipv6-link-local-with-zone"),
        pytest.param("ff02::1", True, id="ipv6-multicast"),
        pytest.param("::ffff:127.0.0.1", True, id="ipv4-mapped-loopback"),
        pytest.param("::ffff:10.0.0.1", True, id="ipv4-mapped-private"),
        pytest.param("1.1.1.1", False, id="public-ipv4"),
        pytest.param("8.8.8.8", False, id="public-ipv4-google"),
        pytest.param("172.32.0.1", False, id="just-outside-172.16/12"),
        pytest.param("100.128.0.1", False, id="just-outside-cgnat"),
        pytest.param("2606:4700:4700::1111", False, id="public-ipv6"),
        pytest.param("::ffff:1.1.1.1", False, id="ipv4-mapped-public"),
    ],
)
def test_special_use_refuses_every_non_global_address(address: str, special: bool) -> None:
    """MCP CIMD-4 (S26, SEP-991 "SSRF Protection"; RFC 6890): loopback, RFC 1918, link-local, ULA, CGNAT,
    multicast (as cimd.special_use documents), and their IPv4-mapped IPv6 forms."""
    assert special_use(address) is special


# parse_document ---------------------------------------------------------------------------------------------------


def document(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_id": VSCODE,
        "client_name": "Visual Studio Code",
        "redirect_uris": VSCODE_REDIRECTS,
        "grant_types": ["authorization_code", "refresh_token"],
        "application_type": "native",
        "client_uri": "https://code.visualstudio.com",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def test_a_valid_document_becomes_a_public_cimd_client() -> None:
    """MCP CIMD-2 / R26: client_id equal to the URL, client_name and redirect_uris present; public client."""
    record = parse_document(VSCODE, json.dumps(document()).encode(), now=NOW)
    assert record.client_id == VSCODE
    assert record.kind == "cimd"
    assert record.token_endpoint_auth_method == "none"
    assert record.client_secret_hash is None
    assert record.is_public
    assert record.client_name == "Visual Studio Code"
    assert record.redirect_uris == tuple(VSCODE_REDIRECTS)
    assert record.grant_types == ("authorization_code", "refresh_token")
    assert record.application_type == "native"
    assert record.client_uri == "https://code.visualstudio.com"
    assert record.client_id_issued_at == int(NOW)


def test_document_with_explicit_method_none_and_some_bad_redirects_keeps_the_good_ones() -> None:
    """MCP CIMD-2 (token_endpoint_auth_method none is fine) and DCR-4's policy applied to documents."""
    body = document(token_endpoint_auth_method="none", redirect_uris=["javascript:alert(1)", "https://c.example/cb"])
    record = parse_document(VSCODE, json.dumps(body).encode(), now=NOW)
    assert record.redirect_uris == ("https://c.example/cb",)
    assert record.token_endpoint_auth_method == "none"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            json.dumps(document(client_id="https://evil.example/oauth/client-metadata.json")).encode(),
            id="client-id-mismatch",
        ),
        pytest.param(json.dumps(document(client_id=VSCODE + "/")).encode(), id="client-id-trailing-slash"),
        pytest.param(
            json.dumps(document(client_id=VSCODE.replace("vscode.dev", "VSCODE.dev"))).encode(),
            id="client-id-case-differs",
        ),
        pytest.param(json.dumps(document(client_id=None)).encode(), id="client-id-missing"),
        pytest.param(json.dumps(document(client_name=None)).encode(), id="client-name-missing"),
        pytest.param(json.dumps(document(client_name="   ")).encode(), id="client-name-blank"),
        pytest.param(json.dumps(document(client_name=["VS Code"])).encode(), id="client-name-not-string"),
        pytest.param(json.dumps(document(client_name="VS Code\u202e")).encode(), id="client-name-bidi-override"),
        pytest.param(json.dumps(document(client_name="VS\u200bCode")).encode(), id="client-name-zero-width"),
        pytest.param(json.dumps(document(logo_uri="https://c.example/\u2066.png")).encode(), id="logo-uri-isolate"),
        pytest.param(
            json.dumps(document(redirect_uris=["https://xn--pple-43d.com/cb"])).encode(), id="redirect-uri-punycode"
        ),
        pytest.param(json.dumps(document(redirect_uris=None)).encode(), id="redirect-uris-missing"),
        pytest.param(json.dumps(document(redirect_uris="https://c.example/cb")).encode(), id="redirect-uris-string"),
        pytest.param(json.dumps(document(redirect_uris=[])).encode(), id="redirect-uris-empty"),
        pytest.param(
            json.dumps(document(redirect_uris=["http://evil.example/cb"])).encode(), id="redirect-uris-all-refused"
        ),
        pytest.param(
            json.dumps(document(token_endpoint_auth_method="client_secret_post")).encode(), id="client-secret-post"
        ),
        pytest.param(
            json.dumps(document(token_endpoint_auth_method="client_secret_basic")).encode(), id="client-secret-basic"
        ),
        pytest.param(
            json.dumps(document(token_endpoint_auth_method="client_secret_jwt")).encode(), id="client-secret-jwt"
        ),
        pytest.param(json.dumps(document(client_secret="s3cret")).encode(), id="client-secret-present"),
        pytest.param(json.dumps(document(client_secret_expires_at=0)).encode(), id="client-secret-expires-at"),
        pytest.param(b"<html>not json</html>", id="not-json"),
        pytest.param(b"", id="empty-body"),
        pytest.param(b"\xff\xfe{", id="not-utf8"),
        pytest.param(json.dumps([document()]).encode(), id="array"),
        pytest.param(json.dumps(VSCODE).encode(), id="string"),
        pytest.param(b"null", id="null"),
    ],
)
def test_unusable_documents_raise_cimd_error(body: bytes) -> None:
    """MCP CIMD-2: valid JSON (R26 MUST), client_id equal by simple string comparison, client_name and
    redirect_uris required, no shared-secret authentication and no client_secret(_expires_at)."""
    with pytest.raises(CimdError) as caught:
        parse_document(VSCODE, body, now=NOW)
    assert str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            json.dumps(document(redirect_uris=[f"https://c.example/{i}" for i in range(11)])).encode(),
            id="eleven-redirect-uris",
        ),
        pytest.param(
            json.dumps(document(redirect_uris=["https://c.example/" + "a" * 2000])).encode(),
            id="redirect-uri-over-2000",
        ),
        pytest.param(json.dumps(document(client_name="n" * 201)).encode(), id="client-name-over-200"),
        pytest.param(json.dumps(document(client_uri="https://c.example/" + "a" * 2000)).encode(), id="client-uri-long"),
        pytest.param(json.dumps(document(logo_uri="https://c.example/" + "a" * 2000)).encode(), id="logo-uri-long"),
        pytest.param(json.dumps(document(grant_types=["authorization_code"] * 11)).encode(), id="eleven-grant-types"),
        pytest.param(json.dumps(document(application_type="x" * 300)).encode(), id="application-type-long"),
        pytest.param(json.dumps(document(application_type="browser")).encode(), id="application-type-unknown"),
        pytest.param(json.dumps(document(client_name="\ud800"), ensure_ascii=True).encode(), id="lone-surrogate"),
        pytest.param(json.dumps(document(contacts=["\udfff"])).encode(), id="lone-surrogate-in-unknown-member"),
        pytest.param(json.dumps(document(redirect_uris=["ms-msdt:-id%20x"])).encode(), id="ms-msdt-scheme"),
        pytest.param(
            f'{{"client_id": "{VSCODE}", "client_id": "{VSCODE}", "client_name": "x", '
            f'"redirect_uris": ["{VSCODE_REDIRECTS[0]}"]}}'.encode(),
            id="duplicate-member",
        ),
        pytest.param(json.dumps(document()).encode("utf-16"), id="utf-16"),
    ],
)
def test_documents_are_held_to_the_same_bounds_as_registrations(body: bytes) -> None:
    """Issue 10 finding 1 ("same review for CIMD documents"): the DCR reader and bounds apply to documents (10
    redirect URIs of <= 2000 characters, 200-character names, valid Unicode, no duplicate members, UTF-8), and
    the private-use scheme rule (finding 18). Before, long names were cut, a surrogate was stored."""
    with pytest.raises(CimdError) as caught:
        parse_document(VSCODE, body, now=NOW)
    assert str(caught.value)
