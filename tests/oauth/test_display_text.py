"""What client-chosen text may look like where people read it (security review 2, R11 and R12)."""

from __future__ import annotations

import json
import re

import pytest

from gateway.oauth.client_metadata import parse_metadata_json
from gateway.oauth.display_text import hidden_character, host_problem
from gateway.oauth.errors import InvalidClientMetadataError

HIDDEN = [
    pytest.param("Acme\u202egnp.exe", "U+202E", id="right-to-left-override"),
    pytest.param("Acme\u202aNotes", "U+202A", id="left-to-right-embedding"),
    pytest.param("Acme\u2066Notes\u2069", "U+2066", id="isolate"),
    pytest.param("Acme\u200bNotes", "U+200B", id="zero-width-space"),
    pytest.param("Acme\u200dNotes", "U+200D", id="zero-width-joiner"),
    pytest.param("Acme\u2060Notes", "U+2060", id="word-joiner"),
    pytest.param("\ufeffAcme", "U+FEFF", id="byte-order-mark"),
    pytest.param("Acme\u00adNotes", "U+00AD", id="soft-hyphen"),
    pytest.param("Acme\u061cNotes", "U+061C", id="arabic-letter-mark"),
    pytest.param("Acme\u200fNotes", "U+200F", id="right-to-left-mark"),
    pytest.param("Acme\nNotes", "U+000A", id="newline"),
    pytest.param("Acme\x1bNotes", "U+001B", id="escape"),
    pytest.param("Acme\x85Notes", "U+0085", id="c1-control"),
    pytest.param("Acme\u2028Notes", "U+2028", id="line-separator"),
    pytest.param("Acme\ue000Notes", "U+E000", id="private-use"),
    pytest.param("Acme\U000e0041Notes", "U+E0041", id="tag-character"),
    pytest.param("Acme\u3164Notes", "U+3164", id="hangul-filler"),
    pytest.param("Acme\u2800Notes", "U+2800", id="braille-blank"),
    pytest.param("Acme\ufe0fNotes", "U+FE0F", id="variation-selector"),
    pytest.param("\ufe0fAcme", "U+FE0F", id="emoji-presentation-first"),
    pytest.param("\u2601\ufe0f\ufe0f Acme", "U+FE0F", id="emoji-presentation-twice"),
    pytest.param("\u2601\u200d Acme", "U+200D", id="joiner-after-an-emoji-only"),
    pytest.param("Acme\u200d\U0001f4bb", "U+200D", id="joiner-before-an-emoji-only"),
    pytest.param("\U0001f469\u200d\u200d\U0001f4bb", "U+200D", id="joiner-twice"),
]
EMOJI_NAMES = [
    "\u2601\ufe0f Cloud Agent",
    "\U0001f469\u200d\U0001f4bb Dev",
    "\U0001f468\u200d\u2764\ufe0f\u200d\U0001f468 Pair",
]


@pytest.mark.parametrize(("text", "found"), HIDDEN)
def test_hidden_character_finds_controls_bidi_and_invisible_characters(text: str, found: str) -> None:
    assert hidden_character(text) == found


@pytest.mark.parametrize(
    "text", ["Acme Notes Desktop", "Café Notes", "メモ帳", "Заметки", "ملاحظات", "Notes 2.0 (beta)"]
)
def test_ordinary_names_in_any_script_are_shown(text: str) -> None:
    assert hidden_character(text) is None


@pytest.mark.parametrize("text", EMOJI_NAMES)
def test_emoji_sequences_are_shown_and_registered(text: str) -> None:
    """U+FE0F right after an emoji and U+200D between two emoji are parts of emoji ("☁️ Cloud Agent",
    "👩‍💻 Dev"): the shared reader of DCR bodies and CIMD documents accepts them (elsewhere they are refused)."""
    assert hidden_character(text) is None
    for ascii_only in (True, False):  # escaped as surrogate pairs, and as UTF-8
        body = json.dumps({"client_name": text, "redirect_uris": []}, ensure_ascii=ascii_only).encode()
        assert parse_metadata_json(body)["client_name"] == text


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        pytest.param("notes.example.com", True, id="ascii"),
        pytest.param("xn--pple-43d.com", False, id="punycode"),
        pytest.param("app.XN--80ak6aa92e.com", False, id="punycode-inner-label-any-case"),
        pytest.param("\u0430pple.com", False, id="cyrillic-a"),
        pytest.param("bücher.example", False, id="non-ascii"),
    ],
)
def test_hosts_are_ascii_and_never_punycode(host: str, allowed: bool) -> None:
    assert (host_problem(host) is None) is allowed


@pytest.mark.parametrize("member", ["client_name", "client_uri", "logo_uri", "policy_uri", "tos_uri", "client_name#ja"])
@pytest.mark.parametrize(("text", "found"), HIDDEN[:5])
def test_shown_members_with_hidden_characters_are_refused_by_the_shared_reader(
    member: str, text: str, found: str
) -> None:
    """One reader for DCR bodies and CIMD documents: refused where the client sends it, never cleaned later."""
    body = f'{{"{member}": "{text.encode("unicode_escape").decode()}", "redirect_uris": []}}'.encode()
    with pytest.raises(InvalidClientMetadataError, match=re.escape(found)):
        parse_metadata_json(body)
