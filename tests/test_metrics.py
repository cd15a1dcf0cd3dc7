"""gateway.metrics' lock-free families expose exactly what prometheus_client's own types would for the same
updates (names, `_total`, cumulative `_bucket`s with `le`, `_sum`, `_count`, label values), minus `_created`."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway.metrics import FAST_BUCKETS, Metrics


def samples(registry: CollectorRegistry) -> set[str]:
    lines = generate_latest(registry).decode().splitlines()
    return {line for line in lines if line and not line.startswith("#") and "_created" not in line}


def test_the_exposition_matches_prometheus_clients_own_types():
    ours = Metrics()
    theirs = CollectorRegistry()
    requests = Counter("mcpgw_mcp_requests", "x", ["route", "method", "status"], registry=theirs)
    overhead = Histogram("mcpgw_gateway_overhead_seconds", "x", ["route"], buckets=FAST_BUCKETS, registry=theirs)
    upstream = Histogram("mcpgw_upstream_response_seconds", "x", ["route"], registry=theirs)
    streams = Gauge("mcpgw_sse_streams_open", "x", ["route"], registry=theirs)
    errors = Counter("mcpgw_store_errors", "x", registry=theirs)
    for status in ("200", "200", "502"):
        ours.requests.labels("alpha", "POST", status).inc()
        requests.labels("alpha", "POST", status).inc()
    for seconds in (0.0001, 0.0005, 0.0007, 0.003, 2.0, 1e-9):  # on a bound, between, above the last
        ours.overhead_seconds.labels("alpha").observe(seconds)
        overhead.labels("alpha").observe(seconds)
        ours.upstream_seconds.labels("beta").observe(seconds * 10)
        upstream.labels("beta").observe(seconds * 10)
    for change in (1, 1, -1):
        ours.sse_streams.labels("alpha").inc(change)
        streams.labels("alpha").inc(change)
    ours.store_errors.inc()
    errors.inc()
    assert samples(ours.registry) == samples(theirs)  # (families with no child yet render no samples)


def test_a_child_is_made_once_and_label_counts_are_checked():
    metrics = Metrics()
    assert metrics.requests.labels("a", "GET", "200") is metrics.requests.labels("a", "GET", "200")
    with pytest.raises(ValueError):
        metrics.requests.labels("a")
