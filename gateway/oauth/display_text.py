"""Client-chosen text that the gateway shows to people (the consent and sign-in pages): names and URIs from a
registration or a metadata document, and the hosts the pages name (security review 2, R11 and R12).

Such text must look like what it is. Control characters, bidirectional overrides and isolates (U+202A-202E,
U+2066-2069, which reorder what follows: "Acme" U+202E "gnp.exe"), zero-width and other invisible characters (which
make two different names look alike) are refused where the client sends them, never cleaned up later; hosts are
ASCII and never punycode (`xn--`), since a homograph such as `аpple.com` (Cyrillic а) would be shown as the
name of who publishes a client or where it returns. The one exception is emoji sequences: variation selector-16
(U+FE0F, emoji presentation) directly after an emoji, and a zero width joiner (U+200D) between two emoji
("☁️ Cloud Agent", "👩‍💻 Dev"); anywhere else they are refused like the rest.
"""

from __future__ import annotations

import unicodedata

# Unicode general categories that are never visible text: controls, format characters (bidi controls, zero
# width space/joiners, word joiner, BOM, soft hyphen, tags), private use, surrogates, unassigned, line and
# paragraph separators.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
# letters and symbols that render as blanks (Hangul fillers, braille blank) or join invisibly (CGJ)
_BLANK_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f")
_EMOJI_PRESENTATION, _ZERO_WIDTH_JOINER = "\ufe0f", "\u200d"


def _emoji(character: str) -> bool:
    """An emoji-like symbol (category So) or a skin-tone modifier (U+1F3FB-1F3FF)."""
    return unicodedata.category(character) == "So" or 0x1F3FB <= ord(character) <= 0x1F3FF


def _in_emoji_sequence(text: str, at: int) -> bool:
    """True when the FE0F or ZWJ at `at` is part of an emoji sequence: FE0F right after an emoji, ZWJ right after
    an emoji (or its FE0F) and right before one."""
    before = text[at - 1] if at > 0 else ""
    if text[at] == _EMOJI_PRESENTATION:
        return bool(before) and _emoji(before)
    after = text[at + 1] if at + 1 < len(text) else ""
    joined = bool(before) and (_emoji(before) or (before == _EMOJI_PRESENTATION and _in_emoji_sequence(text, at - 1)))
    return joined and bool(after) and _emoji(after)


def hidden_character(text: str) -> str | None:
    """The first character of `text` that is a control, a bidi control or invisible, as "U+XXXX"; else None."""
    for at, character in enumerate(text):
        if (
            unicodedata.category(character) in _INVISIBLE_CATEGORIES
            or character in _BLANK_CHARACTERS
            or 0xFE00 <= ord(character) <= 0xFE0F  # variation selectors
            or 0xE0100 <= ord(character) <= 0xE01EF
        ) and not (character in (_EMOJI_PRESENTATION, _ZERO_WIDTH_JOINER) and _in_emoji_sequence(text, at)):
            return f"U+{ord(character):04X}"
    return None


def host_problem(host: str) -> str | None:
    """Why `host` may not be shown as who publishes a client or where it returns (ASCII only, no `xn--` label)."""
    if not host.isascii():
        return "the host must be ASCII (internationalized names are refused: they can imitate other names)"
    if any(label.startswith("xn--") for label in host.lower().split(".")):
        return "the host must not be punycode (xn--): it can imitate other names"
    return None
