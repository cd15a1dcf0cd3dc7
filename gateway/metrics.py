"""Prometheus metrics, one registry per app (tests build many apps in one process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

FAST_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "mcpgw_mcp_requests", "MCP requests by route, method and status.", ["route", "method", "status"], registry=r
        )
        self.upstream_seconds = Histogram(
            "mcpgw_upstream_response_seconds", "Time to the upstream's response headers.", ["route"], registry=r
        )
        self.overhead_seconds = Histogram(
            "mcpgw_gateway_overhead_seconds",
            "Time the gateway spends before calling the upstream (auth, policy, limits).",
            ["route"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.auth_failures = Counter(
            "mcpgw_auth_failures", "Rejected MCP requests by route and reason.", ["route", "reason"], registry=r
        )
        self.token_validations = Counter(
            "mcpgw_token_validations", "Bearer checks by outcome.", ["outcome"], registry=r
        )
        self.oauth_events = Counter(
            "mcpgw_oauth_events", "OAuth events by kind and outcome.", ["event", "outcome"], registry=r
        )
        self.sse_streams = Gauge("mcpgw_sse_streams_open", "Open SSE streams relayed, by route.", ["route"], registry=r)
        self.store_errors = Counter("mcpgw_store_errors", "Requests failed because Redis was unreachable.", registry=r)
        self.rate_limited = Counter(
            "mcpgw_rate_limited", "Requests refused by a rate limit, by limit.", ["limit"], registry=r
        )
        for metric in (
            self.requests,
            self.upstream_seconds,
            self.overhead_seconds,
            self.token_validations,
            self.sse_streams,
        ):
            _memoize_labels(metric)


def _memoize_labels(metric: MetricWrapperBase) -> None:
    """`labels(...)` validates and locks on every call; on the request path the same few children come back, so
    keep them (label values here are route names, methods, statuses and outcomes: a small, bounded set)."""
    children: dict[tuple[str, ...], Any] = {}
    make: Callable[..., Any] = metric.labels

    def labels(*values: str) -> Any:
        child = children.get(values)
        if child is None:
            child = children[values] = make(*values)
        return child

    metric.labels = labels  # type: ignore[method-assign,assignment]
