"""Issue 11's targets, checked against one bench/compare.py run: one line per target with the figure measured,
the bound and the verdict, so that a run states plainly which targets it meets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    bound: float
    at_most: bool  # True: the figure must be <= bound; False: >= bound
    unit: str


THROUGHPUT = Target("throughput vs nginx, 32 connections", 0.40, False, "x")
CPU = Target("CPU per request vs the bare aiohttp relay", 1.2, True, "x")
ONE_P50 = Target("added latency, one connection, p50", 0.30, True, " ms")
ONE_P99 = Target("added latency, one connection, p99", 0.60, True, " ms")
OPEN_P99 = Target("added p99, open loop at 500 req/s", 1.5, True, " ms")
SSE_KIB = Target("SSE memory per open stream", 25.0, True, " KiB")


def verdict(target: Target, figure: float) -> str:
    met = figure <= target.bound if target.at_most else figure >= target.bound
    sign = "<=" if target.at_most else ">="
    figure_text = f"{figure:+.3f}" if target.unit == " ms" else f"{figure:.2f}"
    return (
        f"  {'met    ' if met else 'NOT MET'}  {target.name}: {figure_text}{target.unit} "
        f"(target {sign} {target.bound:g}{target.unit})"
    )


def summary(figures: dict[Target, float], lossless: bool, streams: int, events: tuple[int, int]) -> str:
    """The verdict block: each target's line, then whether every SSE stream got its events."""
    lines = ["targets (issue 11), this run:"]
    lines += [verdict(target, figure) for target, figure in figures.items()]
    fewest, expected = events
    lines.append(
        f"  {'met    ' if lossless else 'NOT MET'}  SSE, {streams} streams lossless: "
        + (
            f"every stream got >= {expected} events"
            if lossless
            else f"the fewest events on a stream {fewest} (want >= {expected}), or a stream ended early"
        )
    )
    return "\n".join(lines)
