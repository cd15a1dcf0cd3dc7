"""The strict reader of client metadata JSON shared by /register and CIMD documents (RFC 7591 §2, RFC 8259 §8;
issue 10: a DCR body with a lone surrogate escape was a 500)."""

from __future__ import annotations

import json

import pytest

from gateway.oauth.client_metadata import MAX_MEMBERS, parse_metadata_json
from gateway.oauth.errors import InvalidClientMetadataError

CALLBACK = "https://client.example.com/callback"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"redirect_uris": ["https://c.example/cb"], "client_name": "\\ud800"}', id="high-surrogate"),
        pytest.param(b'{"redirect_uris": ["https://c.example/cb"], "client_name": "a\\udfffb"}', id="low-surrogate"),
        pytest.param(b'{"redirect_uris": ["https://c.example/\\ud83d"]}', id="in-a-redirect-uri"),
        pytest.param(b'{"redirect_uris": ["https://c.example/cb"], "contacts": [["\\ud800"]]}', id="nested-unknown"),
        pytest.param(b'{"redirect_uris": ["https://c.example/cb"], "\\udc00": 1}', id="in-a-member-name"),
        pytest.param(b'{"redirect_uris": ["https://c.example/cb"], "x": {"y": {"\\ud800": "z"}}}', id="deep-key"),
    ],
)
def test_strings_that_are_not_valid_unicode_are_refused(body: bytes) -> None:
    """json.loads accepts "\\ud800" (a lone surrogate); encoding the stored client then failed (500). Every string
    of the document, member names and unknown members included, must be valid Unicode."""
    assert json.loads(body)  # what the old code accepted
    with pytest.raises(InvalidClientMetadataError) as caught:
        parse_metadata_json(body)
    assert "Unicode" in caught.value.description


def test_a_proper_surrogate_pair_is_valid_unicode() -> None:
    """A escaped pair is one character (U+1F600), not a lone surrogate."""
    document = parse_metadata_json(b'{"redirect_uris": ["https://c.example/cb"], "client_name": "\\ud83d\\ude00"}')
    assert document["client_name"] == "\U0001f600"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"redirect_uris": ["https://c.example/cb"]}'.encode("utf-16"), id="utf-16"),
        pytest.param('{"redirect_uris": ["https://c.example/cb"]}'.encode("utf-32"), id="utf-32"),
        pytest.param(b'{"client_name": "\xff"}', id="invalid-utf8"),
        pytest.param(
            b'{"redirect_uris": ["https://a.example/cb"], "redirect_uris": ["https://b.example/cb"]}',
            id="duplicate-member",
        ),
        pytest.param(json.dumps({f"m{i}": 1 for i in range(MAX_MEMBERS + 1)}).encode(), id="too-many-members"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-nesting"),
        pytest.param(b'{"a":' * 5000 + b"1" + b"}" * 5000, id="deep-objects"),
        pytest.param(b"[]", id="array"),
        pytest.param(b"", id="empty"),
    ],
)
def test_bodies_that_are_not_one_utf8_json_object_are_refused(body: bytes) -> None:
    """RFC 8259 §8.1 (JSON between systems is UTF-8; json.loads would guess UTF-16/32), unique member names (parsers
    disagree on which duplicate wins), at most MAX_MEMBERS members, no depth that overflows the stack."""
    with pytest.raises(InvalidClientMetadataError):
        parse_metadata_json(body)


def test_a_real_registration_body_is_read() -> None:
    """Claude's DCR request shape, with an unknown member (RFC 7591 §2: ignored, not refused)."""
    body = {
        "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "client_name": "Claude",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_post",
        "scope": "claudeai",
        "contacts": ["a@b.example"],
    }
    assert parse_metadata_json(json.dumps(body).encode()) == body
