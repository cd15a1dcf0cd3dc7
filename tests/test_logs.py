"""Plain log lines cannot be forged or split by client input (security review 2, R14): control characters,
C1 controls, Unicode line separators and bidi overrides in a message are escaped (OWASP log injection);
traceback lines are indented under their record."""

from __future__ import annotations

import logging
import sys

import pytest

from gateway.logs import PlainFormatter, escape_controls

FORGED = "/x\r\n2026-01-01 00:00:00,000 INFO gateway: admin signed in"


def record(message: str, *args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.getLogger("aiohttp.access").makeRecord(
        "aiohttp.access",
        logging.INFO,
        __file__,
        1,
        message,
        args,
        exc_info,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "value", [FORGED, "a\nb", "a\rb", "\x1b[31mred", "tab\there", "nel\x85x", "ls\u2028ps\u2029", "\u202eevil", "\x00"]
)
def test_client_text_in_a_message_stays_on_one_line_with_controls_escaped(value: str) -> None:
    line = PlainFormatter().format(record('%s "%s %s" %s', "127.0.0.1", "GET", value, 404))
    assert "\n" not in line and "\r" not in line
    assert not any(ch in line for ch in "\x1b\x85\u2028\u2029\u202e\x00\t")
    assert escape_controls(value) in line


def test_the_escapes_name_the_characters() -> None:
    assert escape_controls("a\r\nb\u2028") == "a\\x0d\\x0ab\\u2028"
    assert escape_controls("plain ünïcode ✓") == "plain ünïcode ✓"


def test_traceback_lines_are_indented_under_their_record() -> None:
    try:
        raise ValueError(FORGED)
    except ValueError:
        line = PlainFormatter().format(record("unhandled error (request %s)", "GET", exc_info=sys.exc_info()))
    first, *rest = line.split("\n")
    assert first.endswith("unhandled error (request GET)")
    assert rest and all(part.startswith("    ") for part in rest)
    assert not any(part.startswith("2026-01-01") for part in line.split("\n"))
