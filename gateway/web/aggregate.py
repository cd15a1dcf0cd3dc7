"""A virtual server's requests (`virtual_servers[]`, gateway.config.aggregate), after its own steps (bearer, origin,
body, its rate limits: gateway.web.mcp): each is dispatched to its member routes as that member's own request:
the member's access rules, required scopes, policy, rate limits and upstream credential apply, and its answer is
filtered by the member's policy and renamed (gateway.mcp.namespacing).

- a call naming one thing (tools/call, prompts/get, resources/read, completion, subscriptions) goes to the member
  its name says, under that member's own name, and its answer is relayed as the member's would be;
- a list goes to every member at once; a member that fails or does not answer in its route's timeout is left out
  (a warning in the log, its name in the audit line), not the list; its pages are read together: the virtual
  `nextCursor` carries each member's own cursor;
- `initialize` (2025-11-25 clients) opens a session on each member and answers with one session of its own, whose
  requests carry each member's session; `server/discover` (2026-07-28) combines the members'; `ping` is answered
  here. Sessions are held by this gateway process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
from collections import OrderedDict
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.access import allowed
from gateway.config.aggregate import Aggregate
from gateway.mcp import jsonrpc
from gateway.mcp.filtering import FilterError, ListFilter
from gateway.mcp.namespacing import Namespace
from gateway.mcp.sse import MAX_EVENT_BYTES, SseFramer, UnreadableEventError, data
from gateway.mcp.strict_json import loads_strict
from gateway.oauth.errors import InsufficientScopeError, InvalidTokenError
from gateway.proxy.upstream import is_event_stream
from gateway.routing import RouteInfo
from gateway.store.records import SessionOwnerRecord
from gateway.store.tokens import SESSION_OWNER_TTL
from gateway.web import mcp_steps as step
from gateway.web.errors import Refusal, bearer_challenge, jsonrpc_error
from gateway.web.mcp_policy import Inspection, check_policy, check_rate_limits, inspect
from gateway.web.mcp_state import McpCall

logger = logging.getLogger(__name__)
LISTS = {
    "tools/list": "tools",
    "prompts/list": "prompts",
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
}
KINDS = {"tools": "tools", "prompts": "prompts", "resources": "resources", "resourceTemplates": "resources"}
MAX_CURSOR = 8192
MAX_SESSIONS = 10_000
SESSION_HEADER = "Mcp-Session-Id"
MAX_SESSIONS_PER_USER = 16
# (virtual session id) -> (its user, {member route: its upstream session id}); the oldest forgotten first
_sessions: OrderedDict[str, tuple[str, dict[str, str]]] = OrderedDict()


async def serve(call: McpCall, info: RouteInfo) -> web.StreamResponse:
    aggregate = info.route.aggregate
    assert aggregate is not None
    request = call.request
    if request.method == "DELETE":
        return await _end_session(call, aggregate)
    if request.method != "POST":
        return web.Response(status=405, headers={"Allow": "POST, DELETE"})
    message = _message(call.body)
    method, request_id = message.get("method"), jsonrpc.message_id(message)
    if not isinstance(method, str) or "id" not in message:
        if method == "notifications/initialized":
            await _fan_out(call, aggregate, call.body or b"")
        return web.Response(status=202)  # client answers and other notifications: nothing is asked of the client
    if method == "ping":
        return _answer(request_id, {})
    if method in LISTS:
        return await _list(call, aggregate, message, LISTS[method])
    if method in ("initialize", "server/discover"):
        return await _combined(call, aggregate, message)
    target = _target(message, Namespace(aggregate))
    if target is None:
        status = 404 if jsonrpc.is_modern(message) else 200
        return _error(status, -32601, f"Method not found on a virtual server: {method[:64]}", request_id)
    member, rewritten = target
    return await _dispatch(call, member, rewritten)


def _message(body: bytes | None) -> dict[str, Any]:
    try:
        decoded = loads_strict((body or b"").decode("utf-8"))
    except ValueError:
        raise Refusal(jsonrpc_error(400, jsonrpc.PARSE_ERROR, "Parse error: the body is not strict JSON")) from None
    if not isinstance(decoded, dict):
        raise Refusal(jsonrpc_error(400, jsonrpc.INVALID_REQUEST, "Invalid request: one JSON-RPC object per POST"))
    return decoded


def _target(message: dict[str, Any], names: Namespace) -> tuple[str, dict[str, Any]] | None:
    """(member, the message under the member's own names) for a call naming one thing; None for other methods.

    Raises:
        Refusal: a name no member has (-32602), subscriptions to several members.
    """
    method = message["method"]
    params = message.get("params") if isinstance(message.get("params"), dict) else {}
    if method in ("tools/call", "prompts/get", "resources/read", "resources/subscribe", "resources/unsubscribe"):
        field, kind = ("uri", "resources") if method.startswith("resources/") else ("name", method.split("/")[0])
        member, own = _inward(names, kind, params.get(field), message)
        return member, {**message, "params": {**params, field: own}}
    if method == "completion/complete" and isinstance(params.get("ref"), dict):
        ref = params["ref"]
        field, kind = ("name", "prompts") if ref.get("type") == "ref/prompt" else ("uri", "resources")
        member, own = _inward(names, kind, ref.get(field), message)
        return member, {**message, "params": {**params, "ref": {**ref, field: own}}}
    if method == "subscriptions/listen":
        notifications = params.get("notifications") if isinstance(params.get("notifications"), dict) else {}
        uris = notifications.get("resourceSubscriptions")
        if isinstance(uris, list) and len(uris) > jsonrpc.MAX_SUBSCRIPTIONS:  # (as on any route: bounded first)
            text = f"Invalid params: at most {jsonrpc.MAX_SUBSCRIPTIONS} resource subscriptions"
            raise Refusal(jsonrpc_error(400, jsonrpc.INVALID_PARAMS, text, jsonrpc.message_id(message)))
        read = [_inward(names, "resources", uri, message) for uri in uris] if isinstance(uris, list) else []
        members = {member for member, _ in read}
        if len(members) != 1:
            raise Refusal(
                _error(
                    400,
                    jsonrpc.INVALID_PARAMS,
                    "Invalid params: subscribe to one server's resources at once",
                    message.get("id"),
                )
            )
        wanted = {**notifications, "resourceSubscriptions": [own for _, own in read]}
        return members.pop(), {**message, "params": {**params, "notifications": wanted}}
    return None


def _inward(names: Namespace, kind: str, value: Any, message: dict[str, Any]) -> tuple[str, str]:
    found = names.inward(kind, value) if isinstance(value, str) else None
    if found is None:
        what = "tool" if kind == "tools" else kind.rstrip("s")
        text = f"Invalid params: no {what} {str(value)[:200]!r} on this virtual server"
        raise Refusal(jsonrpc_error(400, jsonrpc.INVALID_PARAMS, text, jsonrpc.message_id(message)))
    return found


async def _dispatch(call: McpCall, member: str, message: dict[str, Any]) -> web.StreamResponse:
    """One member's request, relayed to the client as that member's answer (resources renamed back)."""
    own = await _member_call(call, member, jsonrpc.dumps(message), message)
    call.fields["members"] = [member]
    try:
        answer = await step.answered(own, own.info)  # type: ignore[arg-type]
        kept = CIMultiDict((k, v) for k, v in answer.headers.items() if k.lower() != "mcp-session-id")
        answer.headers = CIMultiDictProxy(kept)  # (the member's session is the gateway's to hold, never the client's)
        return await step.upstream(own, own.info, answer)  # type: ignore[arg-type]
    finally:
        call.fields.update((k, v) for k, v in own.fields.items() if k in ("upstream_ms", "credential", "stream_ended"))


async def _member_call(call: McpCall, member: str, body: bytes, message: dict[str, Any]) -> McpCall:
    """The request as `member`'s own: its access rules, required scopes, policy and rate limits judged here
    (Refusal otherwise), its session (if the virtual one has one), its Mcp-Name."""
    mcp, grant = call.mcp, call.grant
    assert grant is not None and call.info is not None and call.info.route.aggregate is not None
    info = mcp.routes.by_name(member)
    record = grant.context.record
    if not allowed(mcp.rules[member], user_id=record.user_id, email=record.email, groups=record.groups):
        raise Refusal(
            jsonrpc_error(
                403, jsonrpc.FORBIDDEN, f"Access to {member} is not allowed for this user", message.get("id")
            ),
            "policy",
        )
    if info.route.require_dpop and record.cnf_jkt is None:  # (the member takes DPoP-bound tokens only)
        error = InvalidTokenError(f"{member} accepts DPoP-bound access tokens only (RFC 9449)")
        raise Refusal(step.challenge(call.info, error, dpop=True), "invalid_token")
    missing = [s for s in info.route.required_scopes if s not in record.scopes]
    if missing:
        needed = tuple(dict.fromkeys((*record.scopes, *call.info.route.required_scopes, *missing)))
        challenge = bearer_challenge(call.info.metadata_url, needed, InsufficientScopeError(f"{member} needs more"))
        text = f"Insufficient scope: {member} needs {' '.join(missing)}"
        refused = jsonrpc_error(403, jsonrpc.FORBIDDEN, text, message.get("id"), {"WWW-Authenticate": challenge})
        raise Refusal(refused, "insufficient_scope")
    headers = CIMultiDict(call.request.headers)
    for name in (SESSION_HEADER, "Mcp-Name", "Last-Event-ID"):
        headers.popall(name, None)
    given = call.request.headers.get(SESSION_HEADER)
    if given is not None:
        held = _sessions.get(given)
        if held is None or held[0] != record.user_id:  # (forgotten, or another process's: start again)
            refused = jsonrpc_error(404, jsonrpc.NOT_FOUND, "Session not found", message.get("id"))
            raise Refusal(refused, "session_owner")
        if member in held[1]:
            headers[SESSION_HEADER] = held[1][member]
    named = _named(message)
    if named is not None and "Mcp-Method" in headers:
        headers["Mcp-Name"] = _header_value(named)
    own = McpCall(call.request.clone(headers=headers), mcp)  # type: ignore[arg-type]
    own.info, own.grant, own.watch, own.body = info, grant, call.watch, body
    own.request_id, own.cors, own.client_ip, own.started = call.request_id, call.cors, call.client_ip, call.started
    own.trace = call.trace  # (upstream: the server span's context)
    inspection = inspect(mcp.settings, own.request.headers, info, grant.context, body, mcp.clock())
    await check_rate_limits(mcp.limiter, mcp.settings, info, grant.context, inspection.messages, body)
    check_policy(info, grant.context, inspection, challenged=call.info)
    own.inspection = _renaming(inspection, Namespace(call.info.route.aggregate), member)
    return own


def _renaming(inspection: Inspection, names: Namespace, member: str) -> Inspection:
    """The member's list filter (its policy, on its own names), showing the virtual server's names."""
    given = inspection.list_filter or ListFilter(lambda kind, name: True)
    renamed = given.renaming(lambda kind, name: names.outward(member, kind, name))
    return Inspection(inspection.messages, renamed, inspection.judge)


def _named(message: dict[str, Any]) -> str | None:
    params = message.get("params") if isinstance(message.get("params"), dict) else {}
    field = jsonrpc.NAMED.get(str(message.get("method")))
    value = params.get(field) if field else None
    return value if isinstance(value, str) else None


def _header_value(value: str) -> str:
    """A name as Mcp-Name carries it (MCP 2026-07-28 "Value Encoding": Base64 unless plain visible ASCII)."""
    plain = value.isascii() and value.isprintable() and value == value.strip() and not value.startswith("=?base64?")
    return value if plain else "=?base64?" + base64.b64encode(value.encode()).decode() + "?="


async def _ask(call: McpCall, member: str, message: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """`member`'s answer to `message` (renamed), and the session it minted; (None, None) when it failed."""
    info = call.mcp.routes.by_name(member)
    try:
        own = await _member_call(call, member, jsonrpc.dumps(message), message)
        async with asyncio.timeout(info.route.timeout):
            answer = await step.answered(own, info)
            try:
                found = await _read(answer, message.get("id"), own.inspection.list_filter if own.inspection else None)
            finally:
                answer.close()
        if found is None or "error" in found or answer.status >= 400:
            raise ValueError(str((found or {}).get("error", answer.status))[:200])
        return found, answer.headers.get(SESSION_HEADER)
    except Refusal as refused:
        logger.info(
            "virtual server %s: %s left out (refused: %s)", call.info.route.name, member, refused.response.status
        )  # type: ignore[union-attr]
    except (TimeoutError, ValueError, FilterError, UnreadableEventError) as exc:
        logger.warning("virtual server %s: %s left out: %s", call.info.route.name, member, exc or type(exc).__name__)  # type: ignore[union-attr]
    call.fields.setdefault("members_failed", []).append(member)
    return None, None


async def _read(answer: Any, request_id: Any, list_filter: ListFilter | None) -> dict[str, Any] | None:
    """The member's response to `request_id` in its answer (a JSON body, or the SSE stream up to it), filtered."""
    if not is_event_stream(answer):
        body = bytearray()
        async for chunk in answer:
            body += chunk
            if len(body) > MAX_EVENT_BYTES:
                raise UnreadableEventError("the answer is too large")
        decoded = json.loads(list_filter.json_body(bytes(body)) if list_filter else bytes(body))
        return decoded if isinstance(decoded, dict) and decoded.get("id") == request_id else None
    found: list[dict[str, Any]] = []

    def collect(lines: list[bytes]) -> list[bytes]:
        lines = list_filter.event(lines) if list_filter is not None else lines
        payload = data(lines)
        message = json.loads(payload) if payload else None
        if isinstance(message, dict) and message.get("id") == request_id and "method" not in message:
            found.append(message)
        return lines

    framer = SseFramer([collect])
    async for chunk in answer:
        framer.feed(chunk)
        if found:
            return found[0]
    framer.flush()
    return found[0] if found else None


async def _fan_out(call: McpCall, aggregate: Aggregate, body: bytes) -> None:
    """A notification to every member (best effort: nothing is answered)."""
    message = _message(body)
    for member in aggregate.members:
        try:
            own = await _member_call(call, member, body, message)
            answer = await step.answered(own, own.info)  # type: ignore[arg-type]
            answer.close()
        except (Refusal, TimeoutError):
            continue


async def _list(call: McpCall, aggregate: Aggregate, message: dict[str, Any], field: str) -> web.Response:
    """Every member's page at once; the next virtual page asks each member with more for its next one."""
    params = message.get("params") if isinstance(message.get("params"), dict) else {}
    cursors = _cursors(params.get("cursor"), aggregate, message.get("id"))
    asked = [m for m in aggregate.members if cursors is None or m in cursors]
    results = await asyncio.gather(*(_ask(call, m, _page(message, params, cursors, m)) for m in asked))
    items: list[Any] = []
    more: dict[str, str] = {}
    ttls = []
    for member, (found, _) in zip(asked, results, strict=True):
        result = found.get("result") if found else None
        if not isinstance(result, dict):
            continue
        items += result.get(field, []) if isinstance(result.get(field), list) else []
        if isinstance(result.get("nextCursor"), str):
            more[member] = result["nextCursor"]
        if isinstance(result.get("ttlMs"), int):
            ttls.append(result["ttlMs"])
    combined: dict[str, Any] = {field: items}
    if more:
        combined["nextCursor"] = base64.urlsafe_b64encode(jsonrpc.dumps(more)).decode()
    if jsonrpc.is_modern(message):
        combined.update(resultType="complete", ttlMs=min(ttls, default=0), cacheScope="private")
    call.fields["members"] = asked
    return _answer(message.get("id"), combined)


def _page(
    message: dict[str, Any], params: dict[str, Any], cursors: dict[str, str] | None, member: str
) -> dict[str, Any]:
    own = {k: v for k, v in params.items() if k != "cursor"}
    if cursors is not None:
        own["cursor"] = cursors[member]
    return {**message, "params": own}


def _cursors(given: Any, aggregate: Aggregate, request_id: Any) -> dict[str, str] | None:
    """The members' cursors a virtual cursor carries (None: the first page).

    Raises:
        Refusal: a cursor this virtual server did not give (-32602).
    """
    if given is None:
        return None
    try:
        if not isinstance(given, str) or len(given) > MAX_CURSOR:
            raise ValueError
        decoded = loads_strict(base64.urlsafe_b64decode(given.encode()).decode("utf-8"))
        if (
            not isinstance(decoded, dict)
            or not decoded
            or any(m not in aggregate.members or not isinstance(c, str) for m, c in decoded.items())
        ):
            raise ValueError
    except (ValueError, binascii.Error, RecursionError):
        raise Refusal(_error(400, jsonrpc.INVALID_PARAMS, "Invalid params: unknown cursor", request_id)) from None
    return decoded


async def _combined(call: McpCall, aggregate: Aggregate, message: dict[str, Any]) -> web.Response:
    """initialize or server/discover, asked of every member and answered for all of them."""
    results = await asyncio.gather(*(_ask(call, m, message) for m in aggregate.members))
    answered = [
        (m, found["result"], minted)
        for m, (found, minted) in zip(aggregate.members, results, strict=True)
        if found and isinstance(found.get("result"), dict)
    ]
    if not answered:
        return _error(502, jsonrpc.UPSTREAM_UNAVAILABLE, "No server of this virtual server answered", message.get("id"))
    capabilities: dict[str, Any] = {}
    for _, result, _ in answered:
        for kind in ("tools", "prompts", "resources", "completions"):
            if isinstance(result.get("capabilities"), dict) and kind in result["capabilities"]:
                capabilities[kind] = {}
    info = {"name": call.info.route.name, "version": "1"}  # type: ignore[union-attr]
    if message["method"] == "server/discover":
        versions = [set(r.get("supportedVersions") or []) for _, r, _ in answered]
        result = {
            "resultType": "complete",
            "supportedVersions": sorted(set.intersection(*versions), reverse=True),
            "capabilities": capabilities,
            "_meta": {"io.modelcontextprotocol/serverInfo": info},
            "ttlMs": 0,
            "cacheScope": "private",
        }
        return _answer(message.get("id"), result)
    version = min(str(r.get("protocolVersion", "")) for _, r, _ in answered)
    response = _answer(
        message.get("id"), {"protocolVersion": version, "capabilities": capabilities, "serverInfo": info}
    )
    minted = {m: session for m, _, session in answered if session}
    if minted:
        record = call.grant.context.record  # type: ignore[union-attr]
        session = secrets.token_urlsafe(24)
        mine = [k for k, (user, _) in _sessions.items() if user == record.user_id]
        for old in mine[: max(0, len(mine) - MAX_SESSIONS_PER_USER + 1)]:  # (a user's oldest make room)
            del _sessions[old]
        _sessions[session] = (record.user_id, minted)
        while len(_sessions) > MAX_SESSIONS:
            _sessions.popitem(last=False)
        owner = SessionOwnerRecord(user_id=record.user_id, client_id=record.client_id, route=call.info.route.name)  # type: ignore[union-attr]
        await call.mcp.store.save_session_owner(session, owner, SESSION_OWNER_TTL)
        response.headers[SESSION_HEADER] = session
    return response


async def _end_session(call: McpCall, aggregate: Aggregate) -> web.Response:
    """DELETE: each member's session ended (as that member's own request), then the virtual one."""
    session = call.request.headers.get(SESSION_HEADER, "")
    held = _sessions.get(session)
    record = call.grant.context.record  # type: ignore[union-attr]
    if held is None or held[0] != record.user_id:
        return _error(404, jsonrpc.NOT_FOUND, "Session not found")
    for member in held[1]:
        try:
            own = await _member_call(call, member, b"", {})
            (await step.answered(own, own.info)).close()  # type: ignore[arg-type]
        except (Refusal, TimeoutError):
            continue
    _sessions.pop(session, None)
    await call.mcp.store.delete_session_owner(session)
    return web.Response(status=204)


def _answer(request_id: Any, result: dict[str, Any]) -> web.Response:
    return web.Response(
        body=jsonrpc.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}), content_type="application/json"
    )


def _error(status: int, code: int, message: str, request_id: Any = None) -> web.Response:
    return jsonrpc_error(status, code, message, request_id)
