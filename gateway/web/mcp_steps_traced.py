"""The MCP route's steps (gateway.web.mcp_steps) with a span around each, for traced requests (gateway.web.mcp_trace).

`gateway.web.mcp` runs its steps from the plain module when tracing is off and from `TRACED` when it is on: the
same functions, in the same order, so an untraced request pays nothing for tracing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway.routing import RouteInfo
from gateway.web import mcp_steps as step
from gateway.web.mcp_state import McpCall
from gateway.web.mcp_trace import with_meta_context


class TracedSteps:
    """`mcp_steps`, as an object with the same names: spans around bearer, dpop, policy, limiter, upstream, relay."""

    route = staticmethod(step.route)
    origin = staticmethod(step.origin)
    transport_headers = staticmethod(step.transport_headers)
    resumption = staticmethod(step.resumption)
    digest = staticmethod(step.digest)

    @staticmethod
    async def bearer(call: McpCall, info: RouteInfo) -> None:
        assert call.trace is not None
        with call.trace.step("bearer"):
            await step.bearer(call, info)

    @staticmethod
    async def proof(call: McpCall, info: RouteInfo) -> None:
        assert call.trace is not None
        if call.dpop or info.route.require_dpop:
            with call.trace.step("dpop"):
                await step.proof(call, info)
        else:
            await step.proof(call, info)

    @staticmethod
    async def body(call: McpCall) -> None:
        assert call.trace is not None
        await step.body(call)
        call.trace.open(call)  # the parent may be in the body (`_meta.traceparent`)

    @staticmethod
    async def inspection(call: McpCall, info: RouteInfo) -> None:
        assert call.trace is not None
        with call.trace.step("policy"):
            await step.inspection(call, info)

    @staticmethod
    async def limits(call: McpCall, info: RouteInfo) -> None:
        assert call.trace is not None
        with call.trace.step("limiter"):
            await step.limits(call, info)

    @staticmethod
    def verdict(call: McpCall, info: RouteInfo) -> None:
        assert call.trace is not None
        with call.trace.step("policy.verdict"):
            step.verdict(call, info)

    @staticmethod
    async def upstream(call: McpCall, info: RouteInfo) -> web.StreamResponse:
        """A CLIENT span until the upstream's head arrives (its context sent upstream), then the relay's."""
        trace = call.trace
        assert trace is not None
        with trace.step("upstream", client=True) as span:
            trace.upstream_context = context = trace.headers(span if span is not None else trace.span)
            if call.body:
                call.body = with_meta_context(call.body, context)
            if span is not None:
                span.set_attributes(_upstream_attributes(call, info))
            answer: Any = await step.answered(call, info)
            if span is not None:
                span.set_attribute("http.response.status_code", answer.status)
        with trace.step("relay"):
            return await step.upstream(call, info, answer)


def _upstream_attributes(call: McpCall, info: RouteInfo) -> dict[str, Any]:
    if info.route.bridged is not None:  # a stdio or HTTP+SSE server behind the gateway's own bridge
        return {"http.request.method": call.request.method, "mcp_gateway.upstream": "bridge"}
    target = urlsplit(info.route.upstream)
    return {
        "http.request.method": call.request.method,
        "server.address": target.hostname or "",
        "server.port": target.port or (443 if target.scheme == "https" else 80),
        "url.full": f"{target.scheme}://{target.netloc.rsplit('@', 1)[-1]}{target.path}",
    }


TRACED = TracedSteps()
