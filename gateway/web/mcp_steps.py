"""The steps of the MCP route (gateway.web.mcp), in the order it runs them. Each reads and fills the `McpCall`;
one that ends the request raises `Refusal` with the answer (JSON-RPC errors, challenges, preflights)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.app_state import ROUTE_INFO_KEY, TOKEN_ID_KEY
from gateway.config import OAuthUpstreamAuth, ProviderTokenUpstreamAuth, TokenExchangeUpstreamAuth
from gateway.mcp import jsonrpc
from gateway.oauth.bearer import PolicyDeniedError, SessionNotFoundError, access_token, verify_token
from gateway.oauth.errors import InvalidDpopProofError, InvalidTokenError, OAuthError, UseDpopNonceError
from gateway.oauth.token_values import hash_token
from gateway.proxy.headers import request_header_problem, upstream_session_id
from gateway.proxy.upstream import UpstreamFailure, is_event_stream, open_upstream, relay, upstream_failure_response
from gateway.routing import RouteInfo
from gateway.store.records import SessionOwnerRecord
from gateway.store.tokens import SESSION_OWNER_TTL
from gateway.upstream_credentials import CredentialError
from gateway.upstream_oauth.connector import ConnectRequiredError, HeldCredentialError
from gateway.web import connect_required, legacy_sse
from gateway.web.body import BodyTimeoutError, BodyTooLargeError, read_body
from gateway.web.client_ip import client_ip_behind
from gateway.web.cors import mcp_cors_headers, mcp_preflight, origin_allowed
from gateway.web.errors import Refusal, bearer_challenge, jsonrpc_error
from gateway.web.mcp_policy import check_policy, check_rate_limits, inspect
from gateway.web.mcp_state import McpCall

HELD = (OAuthUpstreamAuth, ProviderTokenUpstreamAuth)  # per-user credentials the gateway holds (gateway.vault)

logger = logging.getLogger("gateway.web.mcp")
SESSION_HEADER = "Mcp-Session-Id"
AUDIT_NAME_LENGTH = 200
INPUT_REQUIRED = re.compile(rb'"resultType"\s*:\s*"input_required"')


def route(call: McpCall) -> RouteInfo:
    """The route this request's Host and path name (a host-based route's path on another host: 404); a legacy
    HTTP+SSE endpoint's path names its route (gateway.web.legacy_sse)."""
    request = call.request
    info = call.mcp.routes.match(request.host, request.path)
    if info is None:
        base, call.legacy_kind = legacy_sse.split_path(request.path)
        info = call.mcp.routes.match(request.host, base) if call.legacy_kind is not None else None
    if info is None:
        raise Refusal(web.json_response({"error": "not_found", "error_description": "Not Found"}, status=404))
    if call.legacy_kind == legacy_sse.MESSAGES:
        legacy_sse.as_upstream_request(call, info.route.path)
    call.info = request[ROUTE_INFO_KEY] = info
    call.client_ip = client_ip_behind(request, call.mcp.settings.trusted_proxies)
    return info


def origin(call: McpCall, info: RouteInfo) -> None:
    """Browser origins (MCP Streamable HTTP "Security Warning"); OPTIONS is answered here (CORS preflight)."""
    request = call.request
    given = request.headers.get("Origin")
    if given is not None:
        if not origin_allowed(call.mcp.settings, info, given):
            raise Refusal(jsonrpc_error(403, jsonrpc.FORBIDDEN, "Origin not allowed"), "origin")
        call.cors = mcp_cors_headers(given)
    if request.method == "OPTIONS":
        if given is None:
            raise Refusal(web.Response(status=204))
        raise Refusal(mcp_preflight(given, info.route, request.headers.get("Access-Control-Request-Headers")))


def transport_headers(call: McpCall) -> None:
    """Ambiguous MCP headers are refused before anything reads them, the token lookup included."""
    call.started = time.monotonic()
    problem = request_header_problem(call.request.headers)
    if problem is not None:  # (no body read: no id to echo)
        raise Refusal(jsonrpc_error(400, jsonrpc.HEADER_MISMATCH, problem))


async def bearer(call: McpCall, info: RouteInfo) -> None:
    """The bearer check (gateway.oauth.bearer); the request is watched from before the lookup, so a revocation
    landing while it is in flight still ends this request's stream."""
    request, mcp = call.request, call.mcp
    outcomes = mcp.metrics.token_validations
    try:
        presented = access_token(request.headers.get("Authorization"))
        if presented is None:
            raise Refusal(challenge(info, None), "no_token")
        token, call.dpop = presented
        call.token_hash = token_hash = hash_token(token)
        call.watch = mcp.streams.watch(token_hash)
        call.grant = grant = await verify_token(
            token_hash,
            info,
            session_id=request.headers.get(SESSION_HEADER),
            now=mcp.clock(),
            rules=mcp.rules[info.route.name],
            cache=mcp.cache,
            store=mcp.store,
        )
        _check_binding(call, info, grant.context.record.cnf_jkt)
    except OAuthError as error:
        outcomes.labels(error.error).inc()
        raise Refusal(challenge(info, error, dpop=call.dpop), error.error) from None
    except PolicyDeniedError:
        outcomes.labels("access_rules").inc()
        message = "Access to this MCP server is not allowed for this user"
        raise Refusal(jsonrpc_error(403, jsonrpc.FORBIDDEN, message), "policy") from None
    except SessionNotFoundError:
        outcomes.labels("session_owner").inc()
        raise Refusal(jsonrpc_error(404, jsonrpc.NOT_FOUND, "Session not found"), "session_owner") from None
    outcomes.labels("valid").inc()
    record = grant.context.record
    request[TOKEN_ID_KEY] = grant.context.token_id
    call.fields.update(user=record.user_id, client=record.client_id, token_id=grant.context.token_id)


def _check_binding(call: McpCall, info: RouteInfo, jkt: str | None) -> None:
    """A DPoP-bound token only with the DPoP scheme (RFC 9449 §7.2: never as a bearer token), the DPoP scheme only
    with a bound token, and a route that requires DPoP only with a bound token.

    Raises:
        InvalidTokenError: any other combination.
    """
    if jkt is not None and not call.dpop:
        raise InvalidTokenError("this access token is DPoP-bound: send it as Authorization: DPoP with a DPoP proof")
    if jkt is None and call.dpop:
        raise InvalidTokenError("this access token is not DPoP-bound: send it as Authorization: Bearer")
    if jkt is None and info.route.require_dpop:
        call.dpop = True  # (the challenge names the DPoP scheme)
        raise InvalidTokenError("this MCP server accepts DPoP-bound access tokens only (RFC 9449)")


async def proof(call: McpCall, info: RouteInfo) -> None:
    """The DPoP proof of a request with a DPoP-bound token (RFC 9449 §4.3, §7.1): signed by the token's key, for this
    method and URL, this token (`ath`), fresh, used once; before anything else is said about the request (a stolen
    token without its key learns nothing of event ids). Its `content_digest` waits for the body (`digest`)."""
    grant = call.grant
    assert grant is not None
    jkt = grant.context.record.cnf_jkt
    if jkt is None:
        return
    request, mcp = call.request, call.mcp
    origin = info.resource.removesuffix(info.route.path)  # (resource = origin + path: gateway.routing)
    try:
        checked = await mcp.dpop.check(
            request.headers,
            method=request.method,
            url=origin + (call.public_path or request.path),
            now=mcp.clock(),
            token_hash=call.token_hash,
            required=True,
        )
        if checked is None or checked.jkt != jkt:
            raise InvalidDpopProofError("the DPoP proof is not signed by the key this access token is bound to")
    except OAuthError as error:
        mcp.metrics.token_validations.labels(error.error).inc()
        raise Refusal(challenge(info, error, dpop=True), error.error) from None
    call.proof = checked


def digest(call: McpCall, info: RouteInfo) -> None:
    """The DPoP proof's `content_digest` against the body just read (when it has one, or where required)."""
    if call.proof is None:
        return
    try:
        call.mcp.dpop.check_body(call.proof, call.body)
    except OAuthError as error:
        call.mcp.metrics.token_validations.labels(error.error).inc()
        raise Refusal(challenge(info, error, dpop=True), error.error) from None


async def resumption(call: McpCall, info: RouteInfo) -> None:
    """A `Last-Event-ID` must be one this gateway issued to this caller on this route (gateway.mcp.event_ids)."""
    grant = call.grant
    assert grant is not None
    if grant.event_ids is None:
        record = grant.context.record
        grant.event_ids = await call.mcp.event_ids.binding(record.user_id, record.client_id, info.route.name)
    given = call.request.headers.get("Last-Event-ID")
    if given is not None and (resume_from := grant.event_ids.open(given)) is None:
        message = "Last-Event-ID was not issued to this caller on this route"  # another caller's stream, or a guess
        raise Refusal(jsonrpc_error(400, jsonrpc.INVALID_REQUEST, message), "event_id")
    call.resume_from = resume_from if given is not None else None


async def body(call: McpCall) -> None:
    """The request body, whole, bounded in size and time (gateway.web.body)."""
    request, proxy = call.request, call.mcp.settings.proxy
    if not request.body_exists:
        return
    try:
        call.body = await read_body(request, proxy.max_body_bytes, call.mcp.settings.listen)
    except BodyTooLargeError:
        message = f"Request body exceeds {proxy.max_body_bytes} bytes"
        raise Refusal(jsonrpc_error(413, jsonrpc.PAYLOAD_TOO_LARGE, message)) from None
    except BodyTimeoutError:
        refused = jsonrpc_error(408, jsonrpc.REQUEST_TIMEOUT, "Request body not received in time")
        refused.force_close()
        raise Refusal(refused) from None


async def inspection(call: McpCall, info: RouteInfo) -> None:
    """The body read strictly and checked against the MCP headers (gateway.web.mcp_policy; GET and DELETE too:
    their responses are filtered); described in the audit line, a refused body leniently."""
    assert call.grant is not None
    try:
        call.inspection = inspect(
            call.mcp.settings, call.request.headers, info, call.grant.context, call.body, call.mcp.clock()
        )
    except Refusal:
        if call.mcp.audit.enabled:
            await _describe(call, jsonrpc.parse_messages(call.body or b"") or [], info.route.audit_arguments)
        raise
    if call.mcp.audit.enabled:
        await _describe(call, call.inspection.messages, info.route.audit_arguments)


async def limits(call: McpCall, info: RouteInfo) -> None:
    """Rate limits (before the policy's verdict: the costly part of policy)."""
    mcp, grant, inspection = call.mcp, call.grant, call.inspection
    assert grant is not None and inspection is not None
    try:
        await check_rate_limits(mcp.limiter, mcp.settings, info, grant.context, inspection.messages, call.body or b"")
    except Refusal:
        mcp.metrics.rate_limited.labels("mcp").inc()
        raise


def verdict(call: McpCall, info: RouteInfo) -> None:
    """The policy's verdict on each name the body touches."""
    assert call.grant is not None and call.inspection is not None
    check_policy(info, call.grant.context, call.inspection)


async def upstream(call: McpCall, info: RouteInfo, answer: Any = None) -> web.StreamResponse:
    """Forward to the upstream (gateway.proxy), bind a session it mints to this principal, relay the answer (to a
    legacy HTTP+SSE session's stream, for its POSTs: gateway.web.legacy_sse)."""
    answer = answer if answer is not None else await answered(call, info)  # (given: a virtual server's member)
    mcp, request, grant = call.mcp, call.request, call.grant
    assert grant is not None and call.inspection is not None and call.watch is not None
    list_filter, event_ids, own = call.inspection.list_filter, grant.event_ids, (call.request_id, call.cors)
    if call.legacy is not None:
        return legacy_sse.deliver(call, answer, list_filter)
    observe = _result_types(call) if mcp.audit.enabled else None
    if not is_event_stream(answer):
        try:
            return await relay(request, answer, list_filter, event_ids=event_ids, own=own, observe=observe)
        except UpstreamFailure as failure:  # (a short answer that broke off before anything was sent)
            raise Refusal(upstream_failure_response(failure, jsonrpc.peek_id(call.body or b""))) from None
    watch = call.watch  # SSE (a POST's response stream or a GET stream): ends with its token
    watch.expire_in(grant.context.record.expires_at - mcp.clock())
    name = info.route.name
    streams = mcp.metrics.sse_streams.labels(name)
    streams.inc()
    try:
        return await relay(request, answer, list_filter, event_ids=event_ids, watch=watch, own=own, observe=observe)
    finally:
        streams.dec()
        if watch.reason is not None:
            logger.info("stream of token %s on %s ended: token %s", grant.context.token_id, name, watch.reason)
            call.fields["stream_ended"] = f"token {watch.reason}"


async def answered(call: McpCall, info: RouteInfo) -> Any:
    """The upstream's answer (its head), with the per-user credential retried once, the session it mints bound."""
    mcp, request, grant = call.mcp, call.request, call.grant
    assert grant is not None and call.inspection is not None and call.watch is not None
    signed = await mcp.signer.sign(grant.context, info.resource) if info.route.identity_jwt_header else None
    credential = await _per_user_credential(call, info) if info.route.upstream_auth is not None else None
    started = time.monotonic()
    name = info.route.name
    mcp.metrics.overhead_seconds.labels(name).observe(started - call.started)
    answer = await _open(call, info, signed, credential)
    if answer.status == 401 and isinstance(info.route.upstream_auth, HELD):
        answer.close()  # the upstream ended the user's credential early: refreshed (or connected again) once
        await mcp.connector.expire(name, info.route.upstream_auth, grant.context.record.user_id)
        credential = await _per_user_credential(call, info)
        answer = await _open(call, info, signed, credential)
    waited = time.monotonic() - started
    mcp.metrics.upstream_seconds.labels(name).observe(waited)
    call.fields["upstream_ms"] = round(waited * 1000, 1)
    if answer.status == 401 and info.route.upstream_auth is not None:
        answer.close()
        raise await _credential_refused(call, info, credential)
    mcp.metrics.requests.labels(name, request.method, str(answer.status)).inc()
    try:
        await _track_session(call, info, answer.headers, answer.status)
    except BaseException:
        answer.close()
        raise
    return answer


async def _open(call: McpCall, info: RouteInfo, signed: str | None, credential: tuple[str, str] | None) -> Any:
    """The upstream's answer (its head), or the refusal that relays its failure."""
    mcp, request, grant = call.mcp, call.request, call.grant
    assert grant is not None
    try:
        return await open_upstream(
            mcp.http,
            request,
            info,
            grant.context,
            call.body,
            public_proto=mcp.public_proto,
            client_address=call.client_ip,
            identity_jwt=signed,
            last_event_id=call.resume_from,
            request_id=call.request_id,
            credential=credential,
            trace_context=call.trace.upstream_context if call.trace is not None else None,
        )
    except UpstreamFailure as failure:
        mcp.metrics.requests.labels(info.route.name, request.method, str(failure.status)).inc()
        raise Refusal(upstream_failure_response(failure, jsonrpc.peek_id(call.body or b""))) from None


async def _per_user_credential(call: McpCall, info: RouteInfo) -> tuple[str, str] | None:
    """This user's credential for the route's upstream (`upstream_auth` token_exchange, oauth, provider_token), or
    None (a static one travels with the route's header plan; no `upstream_auth`: none). One the user must connect
    first is answered in-band (gateway.web.connect_required)."""
    auth = info.route.upstream_auth
    assert call.grant is not None
    if isinstance(auth, HELD):
        record = call.grant.context.record
        name = info.route.name
        await connect_required.connected_retry(call, name)  # (a retry after the connect page: the client's own body)
        try:
            line = await call.mcp.connector.header_line(name, auth, record.user_id, info.route.upstream)
        except ConnectRequiredError as error:
            raise await connect_required.answer(call, error) from None
        except HeldCredentialError as error:
            raise Refusal(
                jsonrpc_error(502, jsonrpc.UPSTREAM_UNAVAILABLE, str(error), jsonrpc.peek_id(call.body or b""))
            ) from None
        call.fields["credential"] = auth.type
        return line
    if not isinstance(auth, TokenExchangeUpstreamAuth):
        call.fields["credential"] = auth.type if auth is not None else None  # (static: in the route's header plan)
        return None
    try:
        line = await call.mcp.credentials.header_line(info.route.name, auth, call.grant.context)
    except CredentialError as error:
        code = jsonrpc.FORBIDDEN if error.status == 403 else jsonrpc.UPSTREAM_UNAVAILABLE
        raise Refusal(jsonrpc_error(error.status, code, error.message, jsonrpc.peek_id(call.body or b""))) from None
    call.fields["credential"] = auth.type
    return line


async def _credential_refused(call: McpCall, info: RouteInfo, credential: tuple[str, str] | None) -> Refusal:
    """The upstream answered 401 to the gateway's own credential (`upstream_auth`): not the client's token's fault.
    A user's held credential (oauth, provider_token) was revoked or expired upstream: dropped, and the client told
    to connect again. Else the gateway's configuration is at fault: a 502 (relayed, the 401 would send the client
    back to sign in with the gateway, and again after that); said in the log for the operator, without the
    credential. A per-user exchanged one is forgotten: the next request asks for a new one."""
    name = info.route.name
    auth = info.route.upstream_auth
    if call.grant is not None and isinstance(auth, HELD):
        await call.mcp.connector.forget(name, auth, call.grant.context.record.user_id, credential)
        call.mcp.metrics.requests.labels(name, call.request.method, "401").inc()
        provider = auth.provider if isinstance(auth, ProviderTokenUpstreamAuth) else None
        return await connect_required.answer(call, ConnectRequiredError(name, provider))
    if call.grant is not None and credential is not None:
        call.mcp.credentials.forget(name, call.grant.context, credential)
    logger.warning("the upstream of route %s refused the gateway's credential (401): check upstream_auth", name)
    call.mcp.metrics.requests.labels(name, call.request.method, "502").inc()
    message = "The upstream MCP server refused the gateway's credential for this route"
    return Refusal(jsonrpc_error(502, jsonrpc.UPSTREAM_UNAVAILABLE, message, jsonrpc.peek_id(call.body or b"")))


async def _track_session(call: McpCall, info: RouteInfo, headers: object, status: int) -> None:
    """A new upstream session (MCP 2025-11-25 initialize) is bound to this principal; a DELETE ends it."""
    request, mcp, grant = call.request, call.mcp, call.grant
    assert grant is not None
    minted, presented = upstream_session_id(headers), request.headers.get(SESSION_HEADER)  # type: ignore[arg-type]
    if minted and minted != presented:
        record = grant.context.record
        owner = SessionOwnerRecord(
            user_id=record.user_id,
            client_id=record.client_id,
            route=info.route.name,
            url_elicitation=info.route.upstream_auth is not None
            and connect_required.initialize_declares_url_elicitation(call.body),
        )
        await mcp.store.save_session_owner(minted, owner, SESSION_OWNER_TTL)
    elif presented and request.method == "DELETE" and status < 300:
        await mcp.store.delete_session_owner(presented)  # the session ended
        mcp.cache.evict_owner(presented)


def _result_types(call: McpCall) -> Callable[[bytes], None]:
    """What the audit line says about the answer: `result_type: input_required` once an interim result asking the
    client for input (MCP 2026-07-28 MRTR) passed through, unchanged. A stream is looked at chunk by chunk (a
    result split across two chunks is not seen: the line is a record, not a control)."""

    def observe(data: bytes) -> None:
        if b"input_required" in data and INPUT_REQUIRED.search(data):
            call.fields["result_type"] = "input_required"

    return observe


async def _describe(call: McpCall, messages: list[jsonrpc.Message], with_arguments: bool) -> None:
    """What the audit line says about the JSON-RPC body: methods, tools, and keyed argument digests (or arguments).
    Bounded whatever the body: at most MAX_BATCH_MESSAGES entries (a refused body is described leniently and in
    part), each name cut to AUDIT_NAME_LENGTH characters."""
    messages = messages[: jsonrpc.MAX_BATCH_MESSAGES]
    fields = call.fields
    fields["methods"] = [m.method[:AUDIT_NAME_LENGTH] for m in messages] or None
    if any(m.retry for m in messages):
        fields["input_retry"] = True  # answers an input_required result (MRTR): judged like any other request
    calls = [m for m in messages if m.method == "tools/call" and m.target is not None]
    fields["tools"] = [m.target[1][:AUDIT_NAME_LENGTH] for m in calls if m.target] or None
    if calls:
        digester = call.mcp.digester
        fields["argument_digests"] = [await digester.digest(m.arguments) for m in calls]
        if with_arguments:
            fields["arguments"] = [m.arguments for m in calls]


def challenge(info: RouteInfo, error: OAuthError | None, *, dpop: bool = False) -> web.Response:
    """401 (no or bad token, a DPoP proof that fails) or 403 (insufficient scope) with the route's WWW-Authenticate
    challenge: the DPoP scheme (RFC 9449 §7.1, with `algs`) for DPoP requests and on routes that require it."""
    scopes = info.route.required_scopes or info.route.scopes
    status = 401 if isinstance(error, (InvalidDpopProofError, UseDpopNonceError)) else error.status if error else 401
    message = "Authentication required" if error is None else error.description or error.error
    scheme = "DPoP" if dpop or info.route.require_dpop else "Bearer"
    header = bearer_challenge(info.metadata_url, scopes, error, scheme=scheme)
    return jsonrpc_error(
        status,
        jsonrpc.UNAUTHORIZED if status == 401 else jsonrpc.FORBIDDEN,
        message,
        headers={"WWW-Authenticate": header, **(error.headers if error is not None else {})},
    )
