"""Every audit line is bounded whatever a caller passes (issue 10, findings 1 and 5: a 3.9 MB registration line,
a 5 MB line for a 50,000-call batch): long strings and arrays are cut, deep values summarised, and the cut is
marked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import MAX_ITEMS, MAX_LINE_CHARS, MAX_STRING_CHARS, AuditLog, _Budget, _short_strings, bounded
from gateway.config import AuditSettings

LINE_BOUND = MAX_LINE_CHARS + 4096  # the budget of the values, plus keys, markers and punctuation


def emit(tmp_path: Path, **fields: Any) -> tuple[str, dict[str, Any]]:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(AuditSettings(path=str(path)))
    log.emit("test.event", **fields)  # no event loop: written at once
    log.close()
    line = path.read_text().splitlines()[-1]
    return line, json.loads(line)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": [value]}
    return value


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"client_name": "n" * 4_000_000}, id="one-huge-string"),
        pytest.param({"redirect_uris": [f"https://c.example/{i}" for i in range(140_000)]}, id="140000-uris"),
        pytest.param(
            {"tools": [f"tool_{i}" for i in range(50_000)], "argument_digests": ["sha256:" + "0" * 64] * 50_000},
            id="50000-call-batch",
        ),
        pytest.param({"arguments": [{"k" * 1000: "v" * 100_000} for _ in range(1000)]}, id="wide-arguments"),
        pytest.param({"arguments": nested(500)}, id="deep-arguments"),
        pytest.param({"arguments": {f"key{i}": i for i in range(100_000)}}, id="many-members"),
        pytest.param({f"f{i}": "x" * 10_000 for i in range(20)}, id="many-long-fields"),
    ],
)
def test_no_line_exceeds_the_bound(tmp_path: Path, fields: dict[str, Any]) -> None:
    line, record = emit(tmp_path, **fields)
    assert len(line) < LINE_BOUND
    assert record["event"] == "test.event" and record["time"]


def test_cuts_are_marked(tmp_path: Path) -> None:
    """A cut string ends with "…(+N)" (N characters left out); a cut array's last item is "…(+N)"; a value nested
    too deep becomes {"truncated": "..."}; small values are untouched."""
    _, record = emit(
        tmp_path, name="n" * 1000, uris=[str(i) for i in range(100)], deep=nested(10), small="ok", count=3, flag=True
    )
    assert record["name"] == "n" * MAX_STRING_CHARS + f"…(+{1000 - MAX_STRING_CHARS})"
    assert record["uris"][:MAX_ITEMS] == [str(i) for i in range(MAX_ITEMS)]
    assert record["uris"][MAX_ITEMS] == f"…(+{100 - MAX_ITEMS})"
    assert len(record["uris"]) == MAX_ITEMS + 1
    assert "truncated" in json.dumps(record["deep"])
    assert (record["small"], record["count"], record["flag"]) == ("ok", 3, True)


def test_values_json_cannot_carry_are_written_as_text(tmp_path: Path) -> None:
    """NaN and infinities (json.loads accepts them) are not JSON; a huge integer cannot be printed: text instead,
    so the line stays parseable JSON."""
    line, record = emit(tmp_path, nan=float("nan"), inf=float("inf"), big=1 << 20000, ok=1.5)

    def not_json(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    json.loads(line, parse_constant=not_json)
    assert record["nan"] == "nan" and record["inf"] == "inf" and record["ok"] == 1.5
    assert record["big"] == "(20001-bit integer)"


@settings(max_examples=400, deadline=None)
@given(
    items=st.lists(st.text(alphabet="ab…\u2028", max_size=MAX_STRING_CHARS + 2), max_size=MAX_ITEMS + 2),
    left=st.integers(min_value=-10, max_value=MAX_LINE_CHARS),
)
def test_the_short_list_path_keeps_only_what_bounded_keeps(items: list[str], left: int) -> None:
    """emit's fast path for lists of short strings (methods, tools, digests) takes a list only when `bounded`
    would keep it whole, and charges the line's budget as `bounded` does."""
    fast, general = _Budget(left), _Budget(left)
    if _short_strings(items, fast):
        assert bounded(items, general) == items and fast.left == general.left
    else:
        assert fast.left == left  # (nothing charged: the general path then does it all)
