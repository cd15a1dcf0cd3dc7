"""Clients of the legacy HTTP+SSE transport (MCP 2024-11-05; deprecated, still shipped) on every route: `GET
<path>/sse` opens the session's event stream, whose first event (`endpoint`) names `<path>/messages?session_id=…`,
where the client POSTs its messages; the answers come back on the stream.

Each POST takes the MCP route's own steps (bearer, DPoP, origin, body, policy, limits, audit: gateway.web.mcp)
and is then sent to the upstream as a Streamable HTTP request carrying the upstream session the session's
`initialize` opened; the POST is answered 202 at once and the upstream's answer (JSON or an SSE stream, through
the route's list filter) goes onto the session's stream. A session belongs to the user and client that opened it
(another one's POST: 404, as for an unknown id); its stream ends with the token (revoked or expired) or when the
client leaves, and then its id is gone. Sessions live in this gateway process: behind several workers a client
needs a sticky connection (or one worker).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from gateway.mcp import jsonrpc
from gateway.mcp.filtering import FilterError, ListFilter
from gateway.mcp.sse import MAX_EVENT_BYTES, SseFramer, UnreadableEventError, data
from gateway.proxy.upstream import is_event_stream
from gateway.web.cors import stamp
from gateway.web.errors import Refusal, jsonrpc_error
from gateway.web.legacy_sessions import LegacySession
from gateway.web.mcp_state import McpCall

logger = logging.getLogger(__name__)
STREAM, MESSAGES = "/sse", "/messages"
KEEPALIVE_SECONDS = 15.0


def split_path(path: str) -> tuple[str, str | None]:
    """(the route's path, "/sse" or "/messages") for a legacy endpoint's path, else (path, None)."""
    for suffix in (STREAM, MESSAGES, MESSAGES + "/"):
        if path.endswith(suffix) and len(path) > len(suffix) - (1 if suffix == STREAM else 0):
            return path[: -len(suffix)] or "/", suffix.rstrip("/")
    return path, None


def as_upstream_request(call: McpCall, base: str) -> None:
    """A POST to `<path>/messages?session_id=…` as the route's own request: the route's path (no query: the
    session id is the gateway's, never the upstream's), the upstream session and protocol version the session
    knows, and the Accept header Streamable HTTP wants. An unknown session: 404 (also before any token check:
    the id is a capability, nothing is said about it to anyone)."""
    request = call.request
    session = call.mcp.legacy.get(request.query.get("session_id"))
    if request.method != "POST" or session is None:
        raise Refusal(jsonrpc_error(404 if request.method == "POST" else 405, jsonrpc.NOT_FOUND, "Session not found"))
    headers = CIMultiDict(request.headers)
    headers["Accept"] = "application/json, text/event-stream"
    for name, value in (
        ("Mcp-Session-Id", session.upstream_session),
        ("MCP-Protocol-Version", session.protocol_version),
    ):
        headers.popall(name, None)
        if value is not None:
            headers[name] = value
    call.public_path = request.path  # (a DPoP proof is for the URL the client used)
    call.request = request.clone(rel_url=base, headers=headers)
    call.legacy = session


def check_owner(call: McpCall) -> None:
    """The POST's token must be the session's user's and client's (a stolen session id alone is nothing)."""
    session, grant = call.legacy, call.grant
    assert session is not None and grant is not None
    record = grant.context.record
    if (record.user_id, record.client_id, call.info.route.name if call.info else "") != (
        session.user,
        session.client,
        session.route,
    ):
        raise Refusal(jsonrpc_error(404, jsonrpc.NOT_FOUND, "Session not found"), "session_owner")


async def stream(call: McpCall) -> web.StreamResponse:
    """GET `<path>/sse`: open a session and stream its messages until the token ends or the client leaves."""
    request, grant, watch, info = call.request, call.grant, call.watch, call.info
    assert grant is not None and watch is not None and info is not None
    if request.method != "GET":
        raise Refusal(web.Response(status=405, headers={"Allow": "GET"}))
    record = grant.context.record
    session = call.mcp.legacy.open(record.user_id, record.client_id, info.route.name)
    call.fields["legacy_session"] = True
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    stamp(response.headers, call.request_id, call.cors)
    ended = asyncio.Event()
    watch.expire_in(record.expires_at - call.mcp.clock())
    watch.on_end(ended.set)
    try:
        await response.prepare(request)
        endpoint = f"{info.route.path.rstrip('/')}{MESSAGES}?session_id={session.id}"
        await response.write(f"event: endpoint\ndata: {endpoint}\n\n".encode())
        await _pump(response, session, ended)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        watch.on_end(None)
        call.mcp.legacy.close(session)
        if session.upstream_session is not None:  # the client is gone: so is its upstream session (MCP: DELETE)
            await _end_upstream(call, session.upstream_session)
    return response


async def _end_upstream(call: McpCall, upstream_session: str) -> None:
    """DELETE the session's upstream session, as the client's own request would (best effort)."""
    from gateway.web import mcp_steps  # (the steps import this module)
    from gateway.web.mcp_policy import Inspection

    info = call.info
    assert info is not None
    headers = CIMultiDict(call.request.headers)
    headers["Mcp-Session-Id"] = upstream_session
    own = McpCall(call.request.clone(method="DELETE", rel_url=info.route.path, headers=headers), call.mcp)  # type: ignore[arg-type]
    own.info, own.grant, own.watch, own.request_id = info, call.grant, call.watch, call.request_id
    own.inspection, own.client_ip = Inspection([], None), call.client_ip
    try:
        async with asyncio.timeout(info.route.timeout):
            (await mcp_steps.answered(own, info)).close()
    except (Refusal, TimeoutError, OSError) as exc:
        logger.info("legacy SSE session on %s: its upstream session was not ended (%s)", info.route.name, exc)


async def _pump(response: web.StreamResponse, session: LegacySession, ended: asyncio.Event) -> None:
    stop = asyncio.ensure_future(ended.wait())
    try:
        while not ended.is_set():
            getter = asyncio.ensure_future(session.queue.get())
            done, _ = await asyncio.wait({getter, stop}, timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                if not ended.is_set():
                    await response.write(b": keep-alive\n\n")
                continue
            message = getter.result()
            if message is None:
                return
            await response.write(b"event: message\ndata: " + jsonrpc.dumps(message) + b"\n\n")
    finally:
        stop.cancel()


def deliver(call: McpCall, answer: Any, list_filter: ListFilter | None) -> web.Response:
    """The upstream answered a session's POST: its messages go onto the session's stream (read in the background,
    an SSE answer event by event), and the POST is accepted."""
    session = call.legacy
    assert session is not None
    minted = answer.headers.get("Mcp-Session-Id")
    if minted:
        session.upstream_session = minted
    if (asked := _initialize_id(call.body)) is not None:
        session.initialize_id = asked
    task = asyncio.ensure_future(_read(answer, session, list_filter))
    session.tasks.add(task)
    task.add_done_callback(session.tasks.discard)
    return web.Response(status=202)


async def _read(answer: Any, session: LegacySession, list_filter: ListFilter | None) -> None:
    try:
        if is_event_stream(answer):
            framer = SseFramer([_collect(session, list_filter)])
            async for chunk in answer:
                framer.feed(chunk)
            framer.flush()
        else:
            body = b""
            async for chunk in answer:
                body += chunk
                if len(body) > MAX_EVENT_BYTES:
                    raise UnreadableEventError("the upstream's answer is too large")
            if body.strip():
                _received(session, json.loads(list_filter.json_body(body) if list_filter else body))
        answer.release()
    except (UnreadableEventError, FilterError, ValueError) as exc:
        logger.warning("legacy SSE session on %s: an upstream answer was dropped: %s", session.route, exc)
        answer.close()
    except BaseException:
        answer.close()
        raise


def _collect(session: LegacySession, list_filter: ListFilter | None):  # noqa: ANN202 (an EventRewrite)
    def collect(lines: list[bytes]) -> list[bytes]:
        lines = list_filter.event(lines) if list_filter is not None else lines
        payload = data(lines)
        if payload:
            _received(session, json.loads(payload.decode("utf-8", errors="replace")))
        return lines

    return collect


def _received(session: LegacySession, decoded: Any) -> None:
    for message in decoded if isinstance(decoded, list) else [decoded]:
        if not isinstance(message, dict):
            continue
        result = message.get("result")
        if (
            session.initialize_id is not None
            and message.get("id") == session.initialize_id
            and isinstance(result, dict)
        ):
            version = result.get("protocolVersion")
            session.protocol_version = version if isinstance(version, str) else None
        session.push(message)


def _initialize_id(body: bytes | None) -> Any:
    try:
        message = json.loads(body or b"")
    except ValueError:
        return None
    return message.get("id") if isinstance(message, dict) and message.get("method") == "initialize" else None


def refused(call: McpCall, response: web.StreamResponse) -> web.StreamResponse:
    """A legacy session's POST the gateway refused with a JSON-RPC error answering one of its requests (policy,
    rate limits, invalid params): the error goes onto the session's stream, as a 2024-11-05 server answers, and the
    POST is accepted. A refusal of the token itself (401) stays the POST's answer: the client must sign in again."""
    session = call.legacy
    if (
        session is None
        or call.grant is None
        or response.status == 401
        or "WWW-Authenticate" in response.headers  # (a step-up challenge: the client must see it)
        or not isinstance(response, web.Response)
    ):
        return response
    try:
        message = json.loads(response.body or b"")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return response
    if not isinstance(message, dict) or message.get("id") is None or "error" not in message:
        return response
    session.push(message)
    call.fields["refused_status"] = response.status
    return web.Response(status=202)
