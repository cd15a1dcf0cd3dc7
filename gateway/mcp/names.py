"""Tool and prompt names as policy reads them (MCP 2026-07-28 server/tools "Tool Names": case-sensitive, SHOULD
be 1-128 of A-Z a-z 0-9 _ - .).

The SDKs look names up exactly, but an upstream may fold case or Unicode compatibility forms (`ADMIN_delete`,
fullwidth `admin＿delete`). A rule decides on the name as sent and on its lenient reading (NFKC, case folded);
a name read differently by the two is refused (policy.decide). Names with control or invisible characters, or
surrounding white space, are refused outright: readers disagree on whether to keep them."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

MAX_NAME_LENGTH = 1024  # the spec asks for at most 128; room for generous servers, not for abuse
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})  # control, format, surrogate, private, unassigned

Form = tuple[str, bool]  # ("name", lenient)


def refusal(name: str) -> str | None:
    """Why `name` is refused whatever the rules say, or None."""
    if not name:
        return "empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"longer than {MAX_NAME_LENGTH} characters"
    if any(unicodedata.category(c) in _INVISIBLE for c in set(name)):
        return "control or invisible characters"
    if name != name.strip():
        return "leading or trailing white space"
    return None


def lenient(name: str) -> str:
    """NFKC with case folding: what a forgiving server may look up (`ＡＤＭＩＮ_Delete` -> `admin_delete`)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def readings(name: str) -> list[tuple[Form, str]]:
    return list(dict.fromkeys([(("name", False), name), (("name", True), lenient(name))]))


@lru_cache(maxsize=4096)
def pattern_forms(pattern: str) -> dict[Form, str]:
    return {("name", False): pattern, ("name", True): lenient(pattern)}


def pattern_problem(pattern: str) -> str | None:
    """Why a rule pattern could never match reliably (checked at configuration load), or None."""
    if any(unicodedata.category(c) in _INVISIBLE for c in pattern):
        return "control or invisible characters"
    if pattern != pattern.strip():
        return "leading or trailing white space"
    return None
