"""A SERVER span for each request that is not an MCP request (OAuth endpoints, metadata, login and consent pages),
when tracing is on (gateway.tracing): the HTTP semantic conventions' attributes, the client's context as parent."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.tracing import Tracing


def traced_requests(tracing: Tracing) -> Any:
    """The outermost middleware but for `mcp_first` (MCP requests are traced by their own handler)."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    tracer, propagator = tracing.tracer, tracing.propagator

    @web.middleware
    async def trace(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else None
        parent = propagator.extract(request.headers) if "traceparent" in request.headers else None
        span = tracer.start_span(f"{request.method} {route}" if route else request.method, parent, SpanKind.SERVER)
        span.set_attributes(
            {
                "http.request.method": request.method,
                "url.path": request.path,
                "url.scheme": request.scheme,
                "network.protocol.version": f"{request.version.major}.{request.version.minor}",
            }
        )
        if route:
            span.set_attribute("http.route", route)
        if agent := request.headers.get("User-Agent"):
            span.set_attribute("user_agent.original", agent[:256])
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR))
            span.end()

    return trace
