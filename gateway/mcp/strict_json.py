"""JSON as every parser reads it alike (RFC 8259 §4, §9): no duplicate object keys (which one wins differs), no
NaN/Infinity, and at most MAX_DEPTH levels of nesting (§9 lets parsers limit it; Python's own limit is the
interpreter's recursion limit, which a deep document turns into a RecursionError wherever it is next walked).
Used for the JSON-RPC bodies the gateway judges and the upstream responses it filters."""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 64  # arrays and objects within each other; MCP messages need a handful
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 opens, -1 (as a signed byte) closes


def loads_strict(data: str) -> Any:
    """The value of `data`.

    Raises:
        ValueError: not strict JSON, or nested deeper than MAX_DEPTH (RecursionError included).
    """
    try:
        value = _STRICT.decode(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if isinstance(value, (list, dict)) and depth(data) > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    return value


def depth(data: str) -> int:
    """How deeply the arrays and objects of a valid JSON text nest (strings set aside; linear, no recursion), or
    their number when that is at most MAX_DEPTH."""
    opened = data.count("[") + data.count("{")  # (brackets in strings too: an upper bound)
    if opened <= MAX_DEPTH:  # the usual message: too few to matter, no need to set strings aside
        return opened
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", data)).encode("ascii").translate(_STEPS)
    if brackets.count(1) <= MAX_DEPTH:
        return brackets.count(1)
    return max(accumulate(memoryview(brackets).cast("b")), default=0)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_STRICT = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)  # (made once, not per body)
