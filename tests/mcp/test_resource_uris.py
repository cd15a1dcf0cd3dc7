"""Resource URIs as policy reads them, `gateway.mcp.uris` (RFC 3986 §5.2.4, §6.2.2, §6.2.3; RFC 3987 §3.1;
RFC 8089 §2): pure tables."""

from __future__ import annotations

import pytest

from gateway.mcp.uris import canonical, readings, refusal, remove_dot_segments


@pytest.mark.parametrize(
    ("uri", "normal"),
    [
        pytest.param("FILE:///secret/keys.txt", "file:///secret/keys.txt", id="scheme-lowercase"),
        pytest.param("https://EXAMPLE.com/A", "https://example.com/A", id="host-lowercase-path-kept"),
        pytest.param("https://Bob@EXAMPLE.com/", "https://Bob@example.com/", id="userinfo-kept"),
        pytest.param("file:///%73ecret/%7euser", "file:///secret/~user", id="unreserved-decoded"),
        pytest.param("file:///a%2fb%3a", "file:///a%2Fb%3A", id="reserved-kept-hex-uppercase"),
        pytest.param("file:///caf%c3%a9", "file:///caf%C3%A9", id="utf8-hex-uppercase"),
        pytest.param("file:///café", "file:///caf%C3%A9", id="iri-character-encoded"),
        pytest.param("file:///{+path}", "file:///%7B+path%7D", id="template-braces-encoded"),
        pytest.param("file:///a/./b/../c", "file:///a/c", id="dot-segments-removed"),
        pytest.param("https://h.example:443/x", "https://h.example/x", id="default-port-dropped"),
        pytest.param("http://h.example:/x", "http://h.example/x", id="empty-port-dropped"),
        pytest.param("http://h.example:08080/x", "http://h.example:8080/x", id="port-leading-zero"),
        pytest.param("http://h.example", "http://h.example/", id="http-empty-path-is-slash"),
        pytest.param("file://localhost/etc/hosts", "file:///etc/hosts", id="file-localhost"),
        pytest.param("file:/etc/hosts", "file:///etc/hosts", id="file-single-slash"),
        pytest.param("db://prod/users?q=A%2fB#Frag", "db://prod/users?q=A%2FB#Frag", id="query-and-fragment-kept"),
        pytest.param("urn:ISBN:0451450523", "urn:ISBN:0451450523", id="opaque-path-kept"),
        pytest.param("file:///secret/*", "file:///secret/*", id="glob-survives"),
        pytest.param("file:///report?.txt", "file:///report?.txt", id="glob-question-mark-survives"),
    ],
)
def test_canonical_is_the_rfc_3986_normal_form(uri: str, normal: str) -> None:
    """RFC 3986 §6.2.2 (case, percent-encoding, dot segments) and §6.2.3 (scheme-based), RFC 8089 §2."""
    assert canonical(uri) == normal
    assert canonical(normal) == normal  # idempotent


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a/b/c/./../../g", "/a/g"),
        ("mid/content=5/../6", "mid/6"),
        ("/../a", "/a"),
        ("/a/..", "/"),
        ("/a/.", "/a/"),
        (".", ""),
        ("../", ""),
    ],
)
def test_remove_dot_segments_follows_rfc_3986_5_2_4(path: str, expected: str) -> None:
    """RFC 3986 §5.2.4's examples."""
    assert remove_dot_segments(path) == expected


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        pytest.param("file:///a/../b", "dot segment", id="dot-dot"),
        pytest.param("file:///a/%2E%2E/b", "dot segment", id="encoded-dot-dot"),
        pytest.param("file:///a/%252E%252E/b", "dot segment", id="double-encoded-dot-dot"),
        pytest.param("file:///a/.../b", "dot segment", id="three-dots"),
        pytest.param("file:///a/.. /b", "dot segment", id="dots-and-space"),
        pytest.param("file:///a\\b", "backslash", id="backslash"),
        pytest.param("file:///a%5cb", "backslash", id="encoded-backslash"),
        pytest.param("file:///a%255Cb", "backslash", id="double-encoded-backslash"),
        pytest.param("file:///a%00b", "control", id="nul"),
        pytest.param("file:///a%0Ab", "control", id="encoded-newline"),
        pytest.param("file:///a\u202eb", "control", id="bidi-override"),
        pytest.param("file:///a%E2%80%8Bb", "control", id="encoded-zero-width-space"),
        pytest.param(" file:///a", "absolute", id="leading-space"),
        pytest.param("file:///a ", "white space", id="trailing-space"),
        pytest.param("file:///a%", "percent", id="dangling-percent"),
        pytest.param("file:///a%C3", "UTF-8", id="truncated-utf8"),
        pytest.param("//host/a", "absolute", id="network-path-reference"),
        pytest.param("a/b", "absolute", id="relative-path"),
        pytest.param("f" * 9000 + ":x", "longer", id="too-long"),
        pytest.param("file:///a/\uff0e\uff0e/b", "dot segment", id="fullwidth-dot-dot"),
        pytest.param("file:///a/%EF%BC%8E%EF%BC%8E/b", "dot segment", id="encoded-fullwidth-dot-dot"),
        pytest.param("file:///a\ufe68b", "backslash", id="small-reverse-solidus"),
        pytest.param("file:///a%25252Fb", "nested more than twice", id="triple-encoded"),
    ],
)
def test_constructs_readers_disagree_on_are_refused_outright(uri: str, reason: str) -> None:
    """Refused whatever the rules say: no honest client needs them, and some reader resolves them to another
    resource (a file server joins `..`, Windows splits at `\\`, a C library stops at NUL)."""
    found = refusal(uri)
    assert found is not None and reason in found


@pytest.mark.parametrize(
    "uri",
    [
        "file:///public/readme.md",
        "file:///a%2Fb",
        "file:///100%25.txt",
        "file:///hello world.txt",
        "file:///文档/a",
        "file:///{+path}",
        "db://x/y?a=1#f",
        "file:///.well-known/x",
        "urn:isbn:0451450523",
    ],
)
def test_ordinary_uris_are_accepted(uri: str) -> None:
    assert refusal(uri) is None


def test_readings_cover_the_uri_as_sent_normalized_decoded_once_and_twice_and_folded() -> None:
    found = {text for _, text in readings("file:///A%252Fb")}
    assert {"file:///A%252Fb", "file:///A%2Fb", "file:///A/b", "file:///a/b"} <= found
