"""Canonical resources, audience comparison, PRM URLs (RFC 8707, RFC 9728) and opaque tokens (RFC 6750)."""

from __future__ import annotations

import hashlib
import re

import pytest

from gateway.oauth.resource import canonical_resource, metadata_url, normalize_resource, same_resource
from gateway.oauth.token_values import ACCESS_TOKEN_PREFIX, hash_token, new_access_token, parse_scopes, token_id


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://gw.example.com/u/mcp", "https://gw.example.com/u/mcp"),
        ("HTTPS://GW.Example.COM/u/mcp", "https://gw.example.com/u/mcp"),
        ("https://gw.example.com/", "https://gw.example.com"),
        ("https://gw.example.com", "https://gw.example.com"),
        ("https://gw.example.com/U/MCP", "https://gw.example.com/U/MCP"),
        ("https://gw.example.com/u/mcp/", "https://gw.example.com/u/mcp/"),
        ("https://gw.example.com/u/mcp#frag", "https://gw.example.com/u/mcp"),
        ("https://gw.example.com/u/mcp?tenant=A", "https://gw.example.com/u/mcp?tenant=A"),
        ("http://GW.example.com:8080/mcp", "http://gw.example.com:8080/mcp"),
        ("  https://gw.example.com/mcp \n", "https://gw.example.com/mcp"),
    ],
)
def test_normalize_resource_lowercases_origin_and_drops_root_slash_and_fragment(url: str, normalized: str) -> None:
    """RFC 3986 §6.2.2.1 (scheme and host are case-insensitive); RFC 8707 §2 (no fragment); MCP canonical URI."""
    assert normalize_resource(url) == normalized


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://gw.example.com/u/mcp", "https://gw.example.com/u/mcp", True),
        ("https://gw.example.com/u/mcp", "HTTPS://GW.EXAMPLE.COM/u/mcp", True),
        ("https://gw.example.com", "https://gw.example.com/", True),
        ("https://GW.example.com/", "https://gw.example.com", True),
        ("https://gw.example.com/u/mcp", "https://gw.example.com/U/mcp", False),
        ("https://gw.example.com/u/mcp", "https://gw.example.com/u/mcp/", False),
        ("https://gw.example.com/u/mcp", "http://gw.example.com/u/mcp", False),
        ("https://gw.example.com/u/mcp", "https://gw.example.com:8443/u/mcp", False),
        ("https://gw.example.com/u/mcp", "https://other.example.com/u/mcp", False),
        ("https://gw.example.com/u/mcp", "https://gw.example.com/v/mcp", False),
        ("https://gw.example.com/u/mcp", "https://gw.example.com/u", False),
        ("https://gw.example.com/u/mcp", "https://gw.example.com/u/mcp?x=1", False),
    ],
)
def test_same_resource_ignores_origin_case_and_nothing_else(a: str, b: str, same: bool) -> None:
    """MCP RS-8 audience check: scheme and host compare case-insensitively, the path exactly."""
    assert same_resource(a, b) is same
    assert same_resource(b, a) is same


@pytest.mark.parametrize(
    ("resource", "url"),
    [
        ("https://gw.example.com/u/mcp", "https://gw.example.com/.well-known/oauth-protected-resource/u/mcp"),
        ("https://gw.example.com/mcp", "https://gw.example.com/.well-known/oauth-protected-resource/mcp"),
        ("https://gw.example.com", "https://gw.example.com/.well-known/oauth-protected-resource"),
        ("https://gw.example.com/", "https://gw.example.com/.well-known/oauth-protected-resource"),
        ("http://127.0.0.1:8080/a/mcp", "http://127.0.0.1:8080/.well-known/oauth-protected-resource/a/mcp"),
        ("https://gw.example.com/u/mcp/", "https://gw.example.com/.well-known/oauth-protected-resource/u/mcp/"),
        pytest.param(
            "https://gw.example.com/mcp?tenant=a",
            "https://gw.example.com/.well-known/oauth-protected-resource/mcp?tenant=a",
            id="query-is-kept",
        ),
    ],
)
def test_metadata_url_inserts_the_well_known_segment_after_the_origin(resource: str, url: str) -> None:
    """RFC 9728 §3.1: the well-known string goes between the host and the path and/or query components;
    a terminating slash right after the host is removed first."""
    assert metadata_url(resource) == url


@pytest.mark.parametrize(
    ("origin", "path", "resource"),
    [
        ("https://gw.example.com", "/notes/mcp", "https://gw.example.com/notes/mcp"),
        ("http://127.0.0.1:8080", "/mcp", "http://127.0.0.1:8080/mcp"),
    ],
)
def test_canonical_resource_is_origin_plus_path_byte_for_byte(origin: str, path: str, resource: str) -> None:
    """docs/contract.md: canonical resource = public_url + path, advertised byte for byte."""
    assert canonical_resource(origin, path) == resource


# -- opaque tokens ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["mcpgw_at_abc", "", "ünïcödé", "a" * 1000],
)
def test_hash_token_is_the_sha256_hex_digest(token: str) -> None:
    """Our choice (style guide): a token exists in Redis only as SHA-256 hex."""
    digest = hash_token(token)
    assert digest == hashlib.sha256(token.encode("utf-8")).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)


@pytest.mark.parametrize(
    ("token_hash", "ident"),
    [
        (hashlib.sha256(b"x").hexdigest(), hashlib.sha256(b"x").hexdigest()[:8]),
        ("0123456789abcdef" * 4, "01234567"),
    ],
)
def test_token_id_is_the_first_eight_hex_digits_of_the_hash(token_hash: str, ident: str) -> None:
    """Our choice (style guide): logs and `tokens list` show an 8-hex id, never the token."""
    assert token_id(token_hash) == ident
    assert re.fullmatch(r"[0-9a-f]{8}", token_id(token_hash))


def test_new_access_tokens_are_unique_prefixed_and_high_entropy() -> None:
    """RFC 6750 §5.2 / RFC 9700: unguessable values; the prefix lets secret scanners spot leaks."""
    tokens = [new_access_token() for _ in range(200)]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        assert token.startswith(ACCESS_TOKEN_PREFIX) and ACCESS_TOKEN_PREFIX == "mcpgw_at_"
        body = token[len(ACCESS_TOKEN_PREFIX) :]
        assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", body)  # >= 256 bits of token_urlsafe
    assert len({token_id(hash_token(t)) for t in tokens}) > 190  # ids spread (collisions possible, rare)


@pytest.mark.parametrize(
    ("value", "scopes"),
    [
        (None, ()),
        ("", ()),
        ("   ", ()),
        ("a:read", ("a:read",)),
        ("a:read a:write", ("a:read", "a:write")),
        ("a:write a:read", ("a:write", "a:read")),
        ("a:read  a:write\ta:read", ("a:read", "a:write")),
        ("b a b c a", ("b", "a", "c")),
        ("A a", ("A", "a")),
    ],
)
def test_parse_scopes_splits_on_whitespace_and_dedupes_keeping_order(
    value: str | None, scopes: tuple[str, ...]
) -> None:
    """RFC 6749 §3.3: space-delimited, case-sensitive, order does not matter (we keep the first occurrence)."""
    assert parse_scopes(value) == scopes
