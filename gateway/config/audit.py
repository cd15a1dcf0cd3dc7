"""`audit`: the JSON-lines audit log of MCP requests and OAuth events."""

from __future__ import annotations

from pydantic import Field

from gateway.config.base import Model


class AuditSettings(Model):
    enabled: bool = Field(default=True, description="One JSON line per MCP request and per OAuth event.")
    path: str = Field(
        default="-",
        description="'-' for standard output, else a file (appended, created 0600; reopened if rotated away).",
    )
