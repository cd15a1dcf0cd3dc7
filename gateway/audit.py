"""The audit log: one JSON object per line, per MCP request and per OAuth event. Never a token or secret;
tool arguments only as a SHA-256 digest unless the route opts in (`audit_arguments`)."""

from __future__ import annotations

import hashlib
import json
import logging
import logging.handlers
import sys
import time
from typing import Any

from gateway.config import AuditSettings


class AuditLog:
    def __init__(self, settings: AuditSettings) -> None:
        self.enabled = settings.enabled
        self._logger = logging.getLogger(f"gateway.audit.{id(self)}")  # one per app: tests build several
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        handler: logging.Handler
        if settings.path == "-":
            handler = logging.StreamHandler(sys.stdout)
        else:
            handler = logging.handlers.WatchedFileHandler(settings.path, encoding="utf-8")  # logrotate-friendly
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._handler = handler
        if self.enabled:
            self._logger.addHandler(handler)

    def emit(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"time": _now(), "event": event, **{k: v for k, v in fields.items() if v is not None}}
        self._logger.info(json.dumps(record, separators=(",", ":"), default=str))

    def close(self) -> None:
        self._logger.removeHandler(self._handler)
        self._handler.close()


def argument_digest(arguments: Any) -> str:
    """sha256 of the canonical JSON of the arguments: equal calls are recognisable, contents are not logged."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
