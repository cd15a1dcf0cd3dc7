"""Parse `WWW-Authenticate: Bearer k="v", …` (RFC 9110 §11.6.1) strictly enough for assertions."""

from __future__ import annotations

import re

_PARAM = re.compile(r'\s*([A-Za-z_]+)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_bearer(header: str) -> list[tuple[str, str]]:
    """Ordered (name, value) pairs; duplicates kept so tests can assert there is exactly one."""
    scheme, _, rest = header.partition(" ")
    assert scheme == "Bearer", header
    pairs, pos = [], 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        assert match, f"unparseable challenge at {rest[pos:]!r}"
        pairs.append((match.group(1), match.group(2)))
        pos = match.end()
    return pairs
