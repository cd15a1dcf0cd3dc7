"""Prometheus metrics, one registry per app (tests build many apps in one process).

The request path updates plain numbers: no lock, no label validation, no allocation once a child exists. The
gateway runs one event loop per process and `/metrics` is rendered on that same loop, so nothing reads a value
while it is written; prometheus_client's own metric types take a lock on every `inc`, which the request path
paid several times per request. The registry exposes these families through one custom collector, in the same
exposition format (`_total`, `_bucket`/`_sum`/`_count`) as prometheus_client's own types.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

FAST_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class _Number:
    """One counter or gauge child."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class _Buckets:
    """One histogram child: a count per bucket (not cumulative until rendered) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, amount: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, amount)] += 1
        self.total += amount


class Family:
    """A labelled metric: `labels(*values)` returns its child for those values, made once and kept (label values
    on the request path are route names, methods, statuses and outcomes: a small, bounded set)."""

    def __init__(self, kind: str, name: str, documentation: str, labelnames: tuple[str, ...] = (), **options: object):
        self.kind, self.name, self.documentation, self.labelnames = kind, name, documentation, labelnames
        self.bounds: tuple[float, ...] = tuple(options.get("buckets", DEFAULT_BUCKETS))  # type: ignore[arg-type]
        self.children: dict[tuple[str, ...], _Number | _Buckets] = {}
        if not labelnames:
            self._default = self.labels()

    def labels(self, *values: str) -> Any:
        child = self.children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name}: {len(self.labelnames)} label values expected")
            child = self.children[values] = _Buckets(self.bounds) if self.kind == "histogram" else _Number()
        return child

    def inc(self, amount: float = 1.0) -> None:  # (an unlabelled counter)
        self._default.inc(amount)  # type: ignore[union-attr]

    def render(self) -> Metric:
        if self.kind == "histogram":
            family: Metric = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
            for values, child in self.children.items():
                assert isinstance(child, _Buckets)
                running, buckets = 0, []
                for bound, count in zip((*child.bounds, math.inf), child.counts, strict=True):
                    running += count
                    buckets.append((_bound(bound), running))
                family.add_metric([str(v) for v in values], buckets, child.total)  # type: ignore[attr-defined]
            return family
        make = CounterMetricFamily if self.kind == "counter" else GaugeMetricFamily
        family = make(self.name, self.documentation, labels=self.labelnames)
        for values, child in self.children.items():
            family.add_metric([str(v) for v in values], child.value)  # type: ignore[attr-defined,union-attr]
        return family


def _bound(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(float(bound))


class _Families(Collector):
    def __init__(self, families: list[Family]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.render()


class Metrics:
    def __init__(self) -> None:
        self.requests = Family(
            "counter", "mcpgw_mcp_requests", "MCP requests by route, method and status.", ("route", "method", "status")
        )
        self.upstream_seconds = Family(
            "histogram", "mcpgw_upstream_response_seconds", "Time to the upstream's response headers.", ("route",)
        )
        self.overhead_seconds = Family(
            "histogram",
            "mcpgw_gateway_overhead_seconds",
            "Time the gateway spends before calling the upstream (auth, policy, limits).",
            ("route",),
            buckets=FAST_BUCKETS,
        )
        self.auth_failures = Family(
            "counter", "mcpgw_auth_failures", "Rejected MCP requests by route and reason.", ("route", "reason")
        )
        self.token_validations = Family("counter", "mcpgw_token_validations", "Bearer checks by outcome.", ("outcome",))
        self.oauth_events = Family(
            "counter", "mcpgw_oauth_events", "OAuth events by kind and outcome.", ("event", "outcome")
        )
        self.sse_streams = Family("gauge", "mcpgw_sse_streams_open", "Open SSE streams relayed, by route.", ("route",))
        self.store_errors = Family("counter", "mcpgw_store_errors", "Requests failed because Redis was unreachable.")
        self.rate_limited = Family(
            "counter", "mcpgw_rate_limited", "Requests refused by a rate limit, by limit.", ("limit",)
        )
        self.upstream_credentials = Family(
            "counter",
            "mcpgw_upstream_credentials",
            "Per-user upstream credentials by route and outcome (cached, exchanged, refused, failed).",
            ("route", "outcome"),
        )
        self.held_credentials = Family(
            "counter",
            "mcpgw_held_credentials",
            "Per-user upstream credentials held in the vault (oauth, provider_token), by route and outcome"
            " (held, missing, refreshed, revoked, expired, failed, connected).",
            ("route", "outcome"),
        )
        self.registry = CollectorRegistry()
        self.registry.register(_Families([value for value in vars(self).values() if isinstance(value, Family)]))
