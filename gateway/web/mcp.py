"""The protected MCP endpoint of each route: Origin -> bearer -> body cap -> stream to the upstream."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway.app_state import (
    AUDIT_KEY,
    CLOCK_KEY,
    CORS_HEADERS_KEY,
    DIGESTER_KEY,
    EVENT_IDS_KEY,
    HTTP_KEY,
    METRICS_KEY,
    REQUEST_ID_KEY,
    ROUTE_INFO_KEY,
    ROUTES_KEY,
    SETTINGS_KEY,
    SIGNER_KEY,
    STORE_KEY,
    STREAM_WATCH_KEY,
    STREAMS_KEY,
    TOKEN_CACHE_KEY,
    TOKEN_ID_KEY,
)
from gateway.mcp import jsonrpc
from gateway.oauth.errors import OAuthError
from gateway.oauth.token_values import hash_token
from gateway.proxy.headers import request_header_problem, upstream_session_id
from gateway.proxy.upstream import UpstreamFailure, is_event_stream, open_upstream, relay, upstream_failure_response
from gateway.routing import RouteInfo
from gateway.store.records import SessionOwnerRecord
from gateway.store.tokens import SESSION_OWNER_TTL
from gateway.web.bearer import (
    SESSION_HEADER,
    PolicyDeniedError,
    SessionNotFoundError,
    authenticate,
    bearer_token,
)
from gateway.web.body import BodyTimeoutError, BodyTooLargeError, read_body
from gateway.web.client_ip import client_ip
from gateway.web.cors import mcp_cors_headers, mcp_preflight, origin_allowed
from gateway.web.errors import bearer_challenge, jsonrpc_error
from gateway.web.mcp_policy import Inspection, inspect, rate_limited, refusal

logger = logging.getLogger(__name__)
AUDIT_NAME_LENGTH = 200


async def handle_mcp(request: web.Request) -> web.StreamResponse:
    """POST (JSON-RPC), GET (SSE stream), DELETE (end session) and OPTIONS (CORS preflight); audited."""
    fields: dict[str, Any] = {}
    response: web.StreamResponse | None = None
    try:
        response = await _serve(request, fields)
        return response
    finally:
        watch = request.get(STREAM_WATCH_KEY)
        if watch is not None:
            watch.release()
        info = request.get(ROUTE_INFO_KEY)
        if info is not None and request.method != "OPTIONS":
            request.app[AUDIT_KEY].emit(
                "mcp.request",
                request_id=request.get(REQUEST_ID_KEY),
                route=info.route.name,
                http_method=request.method,
                client_ip=client_ip(request),
                status=response.status if response is not None else None,
                bytes=response.body_length if response is not None and response.prepared else None,
                **fields,
            )


async def _serve(request: web.Request, fields: dict[str, Any]) -> web.StreamResponse:
    settings = request.app[SETTINGS_KEY]
    info = request.app[ROUTES_KEY].match(request.host, request.path)
    if info is None:  # a host-based route's path on another host
        raise web.HTTPNotFound()
    request[ROUTE_INFO_KEY] = info
    metrics = request.app[METRICS_KEY]

    origin = request.headers.get("Origin")
    if origin is not None:
        if not origin_allowed(settings, info, origin):
            metrics.auth_failures.labels(info.route.name, "origin").inc()
            return jsonrpc_error(403, jsonrpc.FORBIDDEN, "Origin not allowed")
        request[CORS_HEADERS_KEY] = mcp_cors_headers(origin)
    if request.method == "OPTIONS":
        if origin is None:
            return web.Response(status=204)
        return mcp_preflight(origin, info.route, request.headers.get("Access-Control-Request-Headers"))

    handling_started = time.monotonic()
    problem = request_header_problem(request.headers)
    if problem is not None:  # (before anything reads them, the token lookup included; no body read: no id to echo)
        return jsonrpc_error(400, jsonrpc.HEADER_MISMATCH, problem)
    try:
        token = bearer_token(request)
        if token is None:
            metrics.auth_failures.labels(info.route.name, "no_token").inc()
            return _challenge(info, None)
        # watched from before the lookup: a revocation landing while it is in flight still ends this request's stream
        request[STREAM_WATCH_KEY] = request.app[STREAMS_KEY].watch(hash_token(token))
        context = await authenticate(request, info, token)
    except OAuthError as error:
        metrics.auth_failures.labels(info.route.name, error.error).inc()
        metrics.token_validations.labels(error.error).inc()
        return _challenge(info, error)
    except PolicyDeniedError:
        metrics.auth_failures.labels(info.route.name, "policy").inc()
        metrics.token_validations.labels("access_rules").inc()
        return jsonrpc_error(403, jsonrpc.FORBIDDEN, "Access to this MCP server is not allowed for this user")
    except SessionNotFoundError:
        metrics.auth_failures.labels(info.route.name, "session_owner").inc()
        metrics.token_validations.labels("session_owner").inc()
        return jsonrpc_error(404, jsonrpc.NOT_FOUND, "Session not found")
    request[TOKEN_ID_KEY] = context.token_id
    metrics.token_validations.labels("valid").inc()
    fields.update(user=context.record.user_id, client=context.record.client_id, token_id=context.token_id)
    event_ids = await request.app[EVENT_IDS_KEY].binding(
        context.record.user_id, context.record.client_id, info.route.name
    )
    resume_from = request.headers.get("Last-Event-ID")
    if resume_from is not None and (resume_from := event_ids.open(resume_from)) is None:
        metrics.auth_failures.labels(info.route.name, "event_id").inc()  # another caller's stream, or a guess
        return jsonrpc_error(400, jsonrpc.INVALID_REQUEST, "Last-Event-ID was not issued to this caller on this route")

    try:
        body = await read_body(request, settings.proxy.max_body_bytes, settings.listen) if request.body_exists else None
    except BodyTooLargeError:
        return jsonrpc_error(
            413, jsonrpc.PAYLOAD_TOO_LARGE, f"Request body exceeds {settings.proxy.max_body_bytes} bytes"
        )
    except BodyTimeoutError:
        refused = jsonrpc_error(408, jsonrpc.REQUEST_TIMEOUT, "Request body not received in time")
        refused.force_close()
        return refused
    inspection = inspect(request, info, context, body)  # (GET and DELETE too: their responses are filtered)
    if request.app[AUDIT_KEY].enabled:
        described = inspection.messages if isinstance(inspection, Inspection) else jsonrpc.parse_messages(body or b"")
        fields.update(await _describe(request, described or [], info.route.audit_arguments))
    if isinstance(inspection, web.Response):
        metrics.auth_failures.labels(info.route.name, "mcp_policy").inc()
        return inspection
    limited = await rate_limited(request, info, context, inspection.messages, body or b"")
    if limited is not None:
        metrics.rate_limited.labels("mcp").inc()
        return limited
    refused = refusal(info, context, inspection)  # (after the rate limit: the costly part of policy)
    if refused is not None:
        metrics.auth_failures.labels(info.route.name, "mcp_policy").inc()
        return refused

    signed = await request.app[SIGNER_KEY].sign(context, info.resource) if info.route.identity_jwt_header else None
    started = time.monotonic()
    metrics.overhead_seconds.labels(info.route.name).observe(started - handling_started)
    try:
        upstream = await open_upstream(
            request.app[HTTP_KEY],
            request,
            info,
            context,
            body,
            public_proto=urlsplit(settings.public_url).scheme,
            client_address=client_ip(request),
            identity_jwt=signed,
            last_event_id=resume_from,
        )
    except UpstreamFailure as failure:
        metrics.requests.labels(info.route.name, request.method, str(failure.status)).inc()
        return upstream_failure_response(failure, jsonrpc.peek_id(body or b""))  # (parsed only on failure)
    metrics.upstream_seconds.labels(info.route.name).observe(time.monotonic() - started)
    fields["upstream_ms"] = round((time.monotonic() - started) * 1000, 1)
    metrics.requests.labels(info.route.name, request.method, str(upstream.status)).inc()

    minted, presented = upstream_session_id(upstream.headers), request.headers.get(SESSION_HEADER)
    try:
        if minted and minted != presented:  # a new upstream session (initialize): bind it to this principal
            owner = SessionOwnerRecord(
                user_id=context.record.user_id, client_id=context.record.client_id, route=info.route.name
            )
            await request.app[STORE_KEY].save_session_owner(minted, owner, SESSION_OWNER_TTL)
        elif presented and request.method == "DELETE" and upstream.status < 300:
            await request.app[STORE_KEY].delete_session_owner(presented)  # the session ended
            request.app[TOKEN_CACHE_KEY].evict_owner(presented)
    except BaseException:
        upstream.close()
        raise
    if not is_event_stream(upstream):
        return await relay(request, upstream, inspection.list_filter, event_ids=event_ids)
    watch = request[STREAM_WATCH_KEY]  # SSE (a POST's response stream or a GET stream): ends with its token
    watch.expire_in(context.record.expires_at - request.app[CLOCK_KEY]())
    streams = metrics.sse_streams.labels(info.route.name)
    streams.inc()
    try:
        return await relay(request, upstream, inspection.list_filter, event_ids=event_ids, ended=watch.ended)
    finally:
        streams.dec()
        if watch.reason is not None:
            logger.info("stream of token %s on %s ended: token %s", context.token_id, info.route.name, watch.reason)
            fields["stream_ended"] = f"token {watch.reason}"


async def _describe(request: web.Request, messages: list[jsonrpc.Message], with_arguments: bool) -> dict[str, Any]:
    """What the audit line says about the JSON-RPC body: methods, tools, and keyed argument digests (or arguments).
    Bounded whatever the body: at most MAX_BATCH_MESSAGES entries (a refused body is described leniently and in
    part), each name cut to AUDIT_NAME_LENGTH characters."""
    messages = messages[: jsonrpc.MAX_BATCH_MESSAGES]
    calls = [m for m in messages if m.method == "tools/call" and m.target is not None]
    described: dict[str, Any] = {
        "methods": [m.method[:AUDIT_NAME_LENGTH] for m in messages] or None,
        "tools": [m.target[1][:AUDIT_NAME_LENGTH] for m in calls if m.target] or None,
    }
    if calls:
        digester = request.app[DIGESTER_KEY]
        described["argument_digests"] = [await digester.digest(m.arguments) for m in calls]
        if with_arguments:
            described["arguments"] = [m.arguments for m in calls]
    return described


def _challenge(info: RouteInfo, error: OAuthError | None) -> web.Response:
    """401 (no or bad token) or 403 (insufficient scope) with the route's WWW-Authenticate challenge."""
    scopes = info.route.required_scopes or info.route.scopes
    status = error.status if error is not None else 401
    message = "Authentication required" if error is None else error.description or error.error
    return jsonrpc_error(
        status,
        jsonrpc.UNAUTHORIZED if status == 401 else jsonrpc.FORBIDDEN,
        message,
        headers={"WWW-Authenticate": bearer_challenge(info.metadata_url, scopes, error)},
    )
