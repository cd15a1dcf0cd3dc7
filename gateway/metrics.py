"""Prometheus metrics, one registry per app (tests build many apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mcpgw_mcp_requests", "MCP requests by route, method and status.", ["route", "method", "status"],
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "mcpgw_upstream_response_seconds", "Time to the upstream's response headers.", ["route"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "mcpgw_auth_failures", "Rejected MCP requests by route and reason.", ["route", "reason"],
            registry=self.registry,
        )
