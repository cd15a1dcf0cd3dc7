"""The in-band answer to an MCP request whose route needs a per-user credential the user does not hold (never
connected, disconnected, revoked upstream, or no longer refreshable): the client is told where to connect, in the
way its protocol revision offers, and its retry succeeds once the user has.

- 2026-07-28, a client that declares URL-mode elicitation (`_meta` clientCapabilities) on tools/call, prompts/get
  or resources/read: an input-required result (MRTR) asking for a URL elicitation of the connect page, with a
  `requestState` the gateway signs (user, route, expiry). The retry carries it back: once the user has connected
  (the gateway waits up to CONNECT_WAIT seconds for that), the gateway's own `requestState` and `inputResponses`
  are taken out and the request goes upstream as the client first sent it.
- 2025-11-25, a session whose `initialize` declared URL-mode elicitation (or that `initialize` itself): the
  URL-elicitation-required error (-32042) naming the connect page.
- Anything else: a JSON-RPC error (403) whose message names the connect page (2026-07-28: the
  missing-capability error, -32021, with the URL in its data too).

The connect page (gateway.web.upstream_connect) keeps the credential for whoever is signed in there; a link
passed to someone else connects their own account, never the sender's."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from aiohttp import web

from gateway.mcp import jsonrpc
from gateway.upstream_oauth.connector import ConnectRequiredError
from gateway.web.errors import NO_STORE, Refusal, jsonrpc_error
from gateway.web.mcp_state import McpCall
from gateway.web.upstream_connect import connect_url

URL_ELICITATION_REQUIRED = -32042  # 2025-11-25 only
MISSING_CAPABILITY = -32021  # 2026-07-28
MODERN = "2026-07-28"
INPUT_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})
CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
VERSION_META = "io.modelcontextprotocol/protocolVersion"
STATE_PREFIX = "mcpgw-connect1."
STATE_PREFIX_BYTES = STATE_PREFIX.encode()
STATE_SECRET = "connect-state"
STATE_SECONDS = 900
CONNECT_WAIT = 60.0  # seconds a retry waits for the user to finish connecting
WAIT_STEP = 0.5
INPUT_KEY = "mcpgw_connect"


def single_message(body: bytes | None) -> dict[str, Any] | None:
    try:
        message = json.loads(body or b"")
    except (ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


def url_elicitation_declared(capabilities: object) -> bool:
    elicitation = capabilities.get("elicitation") if isinstance(capabilities, dict) else None
    return isinstance(elicitation, dict) and isinstance(elicitation.get("url"), dict)


def initialize_declares_url_elicitation(body: bytes | None) -> bool:
    """A 2025-11-25 `initialize` whose client capabilities include URL-mode elicitation."""
    message = single_message(body)
    params = message.get("params") if message is not None and message.get("method") == "initialize" else None
    return isinstance(params, dict) and url_elicitation_declared(params.get("capabilities"))


async def answer(call: McpCall, error: ConnectRequiredError) -> Refusal:
    """The refusal that tells this client where to connect."""
    assert call.grant is not None
    mcp, record = call.mcp, call.grant.context.record
    message = single_message(call.body) or {}
    request_id = message.get("id") if isinstance(message.get("id"), (str, int)) else None
    params = message.get("params") if isinstance(message.get("params"), dict) else {}
    meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
    version = call.request.headers.get("MCP-Protocol-Version") or str(meta.get(VERSION_META) or "")
    url = connect_url(mcp.settings.public_url, error.route)
    if error.provider is not None:  # (no connect page: the sign-in itself gives that token)
        text = f"Sign in again with {error.provider} to use {error.route}: reconnect the MCP server in your application"
        return Refusal(jsonrpc_error(403, jsonrpc.FORBIDDEN, text, request_id), "connect_required")
    text = f"Connect your account for {error.route}: open {url} and sign in there, then retry"
    if version >= MODERN:
        if url_elicitation_declared(meta.get(CAPABILITIES_META)) and message.get("method") in INPUT_METHODS:
            state = await _sign_state(call, record.user_id, error.route)
            result = {
                "resultType": "input_required",
                "inputRequests": {
                    INPUT_KEY: {"method": "elicitation/create", "params": {"mode": "url", "url": url, "message": text}}
                },
                "requestState": state,
            }
            return Refusal(_json({"jsonrpc": "2.0", "id": request_id, "result": result}, 200), "connect_required")
        data = {"requiredCapabilities": {"elicitation": {"url": {}}}, "url": url}
        body = jsonrpc.error_body(MISSING_CAPABILITY, text, request_id, data)
        return Refusal(_json(body, 400), "connect_required")
    if initialize_declares_url_elicitation(call.body) or await _session_declared_url(call):
        elicitation = {"mode": "url", "elicitationId": str(uuid.uuid4()), "url": url, "message": text}
        body = jsonrpc.error_body(URL_ELICITATION_REQUIRED, text, request_id, {"elicitations": [elicitation]})
        return Refusal(_json(body, 200), "connect_required")
    return Refusal(jsonrpc_error(403, jsonrpc.FORBIDDEN, text, request_id), "connect_required")


async def connected_retry(call: McpCall, route: str) -> bool:
    """A retry of a request the gateway answered with input-required (its signed `requestState`): waits for the
    user to connect, then takes the gateway's fields out of the body. False: not such a retry, or not yet."""
    if STATE_PREFIX_BYTES not in (call.body or b""):  # (every request of a held route: no JSON parse for the rest)
        return False
    message = single_message(call.body)
    params = message.get("params") if message is not None else None
    state = params.get("requestState") if isinstance(params, dict) else None
    if not isinstance(state, str) or not state.startswith(STATE_PREFIX) or call.grant is None:
        return False
    user_id = call.grant.context.record.user_id
    if not await _state_ok(call, state, user_id, route):
        return False
    waiting, key = call.mcp.connector.waiting, (user_id, route)
    if key in waiting:  # (one retry of a user waits per route and process; the others are asked again at once)
        if not await call.mcp.connector.holds(user_id, route):
            return False
    else:
        waiting.add(key)
        try:
            deadline = time.monotonic() + CONNECT_WAIT
            while not await call.mcp.connector.holds(user_id, route):
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(WAIT_STEP)
        finally:
            waiting.discard(key)
    assert message is not None and isinstance(params, dict)
    inputs = params.get("inputResponses")
    rest = {k: v for k, v in params.items() if k != "requestState"}
    if isinstance(inputs, dict):
        others = {k: v for k, v in inputs.items() if k != INPUT_KEY}
        rest = {k: v for k, v in rest.items() if k != "inputResponses"} | ({"inputResponses": others} if others else {})
    try:
        call.body = json.dumps({**message, "params": rest}, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:  # (a number beyond a float's range: the client's body stays as it is)
        return False
    return True


async def _session_declared_url(call: McpCall) -> bool:
    session_id = call.request.headers.get("Mcp-Session-Id")
    if not session_id or call.token_hash is None:
        return False
    _, owner = await call.mcp.store.load_access_token_with_session(call.token_hash, session_id)
    return owner is not None and owner.url_elicitation


async def _sign_state(call: McpCall, user_id: str, route: str) -> str:
    expires = int(call.mcp.clock()) + STATE_SECONDS
    mac = await _mac(call, f"{user_id}\0{route}\0{expires}")
    return f"{STATE_PREFIX}{expires}.{mac}"


async def _state_ok(call: McpCall, state: str, user_id: str, route: str) -> bool:
    expires, _, mac = state.removeprefix(STATE_PREFIX).partition(".")
    if not (expires.isascii() and expires.isdigit()) or len(expires) > 12 or int(expires) < call.mcp.clock():
        return False
    return hmac.compare_digest(mac.encode(), (await _mac(call, f"{user_id}\0{route}\0{expires}")).encode())


async def _mac(call: McpCall, text: str) -> str:
    secret = bytes.fromhex(await call.mcp.store.load_or_create_secret(STATE_SECRET))
    digest = hmac.new(secret, text.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _json(body: dict[str, Any], status: int) -> web.Response:
    return web.json_response(body, status=status, headers=NO_STORE)
