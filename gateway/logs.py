"""Process logging: human-readable lines, or one JSON object per line (`serve --log-format json`).

Messages carry client-controlled text (paths, user and client names, header values). In plain lines every
control character (CR and LF included), C1 control, Unicode line separator and bidi override is escaped
(`\\x0a`, `\\u2028`), so no input can start a forged log line or hide text; traceback lines are indented. JSON
lines are escaped by the encoder."""

from __future__ import annotations

import json
import logging
import re
import time

STRUCTURED_FIELDS = ("request_id", "remote", "method", "path", "status", "ms", "token_id", "route")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """`text` on one line, with the characters above written as escapes."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


class PlainFormatter(logging.Formatter):
    """`PLAIN_FORMAT` lines whose message is escaped (`escape_controls`)."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: object) -> str:  # noqa: N802
        text = super().formatException(ei)  # type: ignore[arg-type]
        return "\n".join("    " + escape_controls(line) for line in text.split("\n"))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return "\n".join("    " + escape_controls(line) for line in stack_info.split("\n"))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in STRUCTURED_FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)


ACCESS_LOGGER = "aiohttp.access"  # the access log's lines (gateway.web.middleware.AccessLogger)
QUIET_LIBRARIES = ("httpx2", "httpx", "httpcore", "mcp.client.sse")


def configure(level: str, fmt: str, *, access_log: bool = False) -> None:
    """Log at `level` in `fmt`; the access log only with `access_log` (and a level that shows info)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET if access_log else logging.WARNING)
    # the SDK's HTTP client (HTTP+SSE upstreams, gateway.stdio) logs every URL at info: a legacy server's session id
    # travels in its message URL, and is as good as the session
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
