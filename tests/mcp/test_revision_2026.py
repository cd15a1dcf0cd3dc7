"""MCP 2026-07-28 through the gateway: mirrored-header validation (Streamable HTTP "Server Validation",
HeaderMismatch -32020), multi round-trip requests (MRTR: `input_required` results and their retries) and
subscriptions/listen under policy, against the real upstream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from gateway.mcp.jsonrpc import HEADER_MISMATCH, header_mismatch, read_messages
from tests.conftest import route
from tests.mcp.test_resource_policy import RESOURCE_POLICY
from tests.mcp.test_tool_policy import POLICY
from tests.support.mcp_wire import MODERN, legacy_initialize, modern_call, read_sse_event
from tests.support.tokens import issue

LEGACY = "2025-11-25"
ACCEPT = {"Accept": "application/json, text/event-stream"}
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
ACCEPTED = {"confirm": {"action": "accept", "content": {"ok": True}}}


def request(request_id: Any, method: str, params: dict[str, Any], *, meta: bool = True) -> dict[str, Any]:
    """A request; with `meta`, a 2026-07-28 one (its `_meta` names the protocol version)."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": method,
        "params": {**params, "_meta": META} if meta else params,
    }


def parsed(value: Any):
    return read_messages(json.dumps(value).encode())


# -- header_mismatch ------------------------------------------------------------------------------------------

MODERN_CALL = request(1, "tools/call", {"name": "add", "arguments": {}})
LEGACY_CALL = request(1, "tools/call", {"name": "add", "arguments": {}}, meta=False)


@pytest.mark.parametrize(
    ("body", "method", "name", "version"),
    [
        pytest.param(MODERN_CALL, "tools/call", "add", MODERN, id="modern-call-all-headers"),
        pytest.param(MODERN_CALL, "tools/call", "=?base64?YWRk?=", MODERN, id="modern-call-base64-name"),
        pytest.param(request(1, "tools/list", {}), "tools/list", None, MODERN, id="modern-list-needs-no-name"),
        pytest.param(
            request(1, "resources/read", {"uri": "file:///a"}), "resources/read", "file:///a", MODERN, id="modern-read"
        ),
        pytest.param(
            request(1, "prompts/get", {"name": "greeting"}), "prompts/get", "greeting", MODERN, id="modern-prompt"
        ),
        pytest.param(
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "_meta": META}},
            None,
            None,
            None,
            id="modern-notification-is-not-held-to-them",
        ),
        pytest.param(LEGACY_CALL, None, None, None, id="legacy-call-no-headers"),
        pytest.param(LEGACY_CALL, None, None, LEGACY, id="legacy-call-version-only"),
        pytest.param(LEGACY_CALL, "tools/call", "add", LEGACY, id="legacy-call-right-headers"),
        pytest.param([LEGACY_CALL, {**LEGACY_CALL, "id": 2}], None, None, None, id="legacy-batch-no-headers"),
    ],
)
def test_headers_that_agree_with_the_body_are_no_mismatch(
    body: Any, method: str | None, name: str | None, version: str | None
) -> None:
    """2026-07-28 "Server Validation": a modern request carries them all, matching; an older one the ones it has."""
    assert header_mismatch(parsed(body), method, name, version) is None


@pytest.mark.parametrize(
    ("body", "method", "name", "version"),
    [
        pytest.param(MODERN_CALL, "tools/call", "add", LEGACY, id="version-differs-from-meta"),
        pytest.param(MODERN_CALL, "tools/call", "add", None, id="version-missing"),
        pytest.param(MODERN_CALL, "tools/call", "add", MODERN + " ", id="version-not-exactly-equal"),
        pytest.param(MODERN_CALL, None, "add", MODERN, id="method-missing"),
        pytest.param(MODERN_CALL, None, None, MODERN, id="both-missing"),
        pytest.param(MODERN_CALL, "tools/call", None, MODERN, id="tool-name-missing"),
        pytest.param(
            request(1, "resources/read", {"uri": "file:///a"}), "resources/read", None, MODERN, id="uri-missing"
        ),
        pytest.param(request(1, "prompts/get", {"name": "g"}), "prompts/get", None, MODERN, id="prompt-name-missing"),
        pytest.param(request(1, "tools/list", {}), None, None, MODERN, id="modern-list-without-method"),
        pytest.param(MODERN_CALL, "tools/call", "echo_headers", MODERN, id="modern-wrong-name"),
        pytest.param(LEGACY_CALL, "tools/call", "echo_headers", LEGACY, id="legacy-wrong-name"),
        pytest.param(LEGACY_CALL, "tools/list", None, LEGACY, id="legacy-wrong-method"),
        pytest.param([MODERN_CALL, {**MODERN_CALL, "id": 2}], None, None, MODERN, id="batch-of-modern-requests"),
        pytest.param([LEGACY_CALL, {**MODERN_CALL, "id": 2}], None, None, None, id="batch-with-one-modern"),
        pytest.param([LEGACY_CALL, {**LEGACY_CALL, "id": 2}], "tools/call", None, None, id="batch-with-headers"),
    ],
)
def test_headers_missing_or_disagreeing_with_the_body_give_a_reason(
    body: Any, method: str | None, name: str | None, version: str | None
) -> None:
    reason = header_mismatch(parsed(body), method, name, version)
    assert isinstance(reason, str) and reason


def test_a_message_with_meta_naming_a_version_is_read_as_a_modern_request() -> None:
    """jsonrpc.py: the envelope is the `_meta` protocol version; `inputResponses`/`requestState` mark a retry."""
    (modern,) = parsed(request(1, "tools/call", {"name": "add", "inputResponses": ACCEPTED}))
    (legacy,) = parsed(request(2, "tools/call", {"name": "add", "requestState": "s"}, meta=False))
    (plain,) = parsed(LEGACY_CALL)
    assert (modern.envelope, modern.retry) == ((MODERN,), True)
    assert (legacy.envelope, legacy.retry) == (None, True)
    assert (plain.envelope, plain.retry) == (None, False)


# -- header validation through the gateway ---------------------------------------------------------------------


@pytest.fixture
async def policed(start_gateway, upstream, store, aiohttp_client):
    """A route with the tool policy of tests/mcp/test_tool_policy.py, and a token that may call `add`."""
    server = await start_gateway([route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"], policy=POLICY)])
    token = await issue(store, server, "alpha", scopes=("alpha:read", "alpha:write"), groups=("ops",))
    return await aiohttp_client(server), token


async def answer(response: aiohttp.ClientResponse) -> dict[str, Any]:
    if response.content_type == "text/event-stream":
        async with asyncio.timeout(5):
            while "result" not in (event := await read_sse_event(response)) and "error" not in event:
                pass
        return event
    return await response.json()


async def post(client, token: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
    headers = {k: v for k, v in headers.items() if v is not None}
    response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    return response.status, await answer(response)


def assert_mismatch(status: int, reply: dict[str, Any], request_id: Any) -> None:
    assert status == 400, reply
    assert reply["error"]["code"] == HEADER_MISMATCH == -32020
    assert reply["id"] == request_id


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"MCP-Protocol-Version": LEGACY}, id="version-differs-from-meta"),
        pytest.param({"MCP-Protocol-Version": None}, id="version-missing"),
        pytest.param({"Mcp-Method": None}, id="method-missing"),
        pytest.param({"Mcp-Name": None}, id="name-missing"),
        pytest.param({"Mcp-Name": "echo_headers"}, id="name-differs"),
    ],
)
async def test_a_modern_call_without_its_mirrored_headers_is_a_header_mismatch(policed, change):
    """2026-07-28 Streamable HTTP "Server Validation": 400 with HeaderMismatch, echoing the id; the upstream is
    not called."""
    client, token = policed
    headers, body = modern_call("m-1", "add", {"a": 2, "b": 3})
    assert_mismatch(*await post(client, token, {**headers, **change}, body), "m-1")


async def test_a_modern_call_with_matching_headers_is_forwarded(policed):
    client, token = policed
    status, reply = await post(client, token, *modern_call(4, "add", {"a": 2, "b": 3}))
    assert status == 200 and reply["id"] == 4 and reply["result"]["content"][0]["text"] == "5"


async def legacy_session(client, token: str) -> dict[str, str]:
    """A 2025-11-25 session (initialize, then initialized): the headers its requests carry."""
    auth = {**ACCEPT, "Authorization": f"Bearer {token}"}
    started = await client.post("/alpha/mcp", json=legacy_initialize(), headers=auth)
    assert started.status == 200
    await started.read()
    session = {"Mcp-Session-Id": started.headers["Mcp-Session-Id"], "MCP-Protocol-Version": LEGACY, **ACCEPT}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await client.post("/alpha/mcp", json=initialized, headers={**session, **auth})).status == 202
    return session


async def test_an_older_request_is_held_to_the_mirrored_headers_it_carries(policed):
    """No `_meta` (2025-11-25): no header is required, but a wrong Mcp-Name is still refused, and a right one
    forwarded (the gateway never passes on a header it has not checked against the body)."""
    client, token = policed
    session = await legacy_session(client, token)
    body = request(11, "tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}, meta=False)
    wrong = {**session, "Mcp-Method": "tools/call", "Mcp-Name": "echo_headers"}
    assert_mismatch(*await post(client, token, wrong, body), 11)
    status, reply = await post(client, token, {**session, "Mcp-Method": "tools/call", "Mcp-Name": "add"}, body)
    assert status == 200 and reply["id"] == 11 and reply["result"]["content"][0]["text"] == "3"
    status, reply = await post(client, token, session, {**body, "id": 12})  # no mirrored headers at all
    assert status == 200 and reply["result"]["content"][0]["text"] == "3"


async def test_a_batch_of_modern_requests_is_a_header_mismatch(policed):
    """2026-07-28 has no batches (removed in 2025-06-18); one set of mirrored headers cannot describe two."""
    client, token = policed
    headers, first = modern_call(1, "add", {"a": 1, "b": 2})
    _, second = modern_call(2, "add", {"a": 3, "b": 4})
    status, reply = await post(client, token, {**headers, "Mcp-Name": None, "Mcp-Method": None}, [first, second])
    assert status == 400 and reply["error"]["code"] == HEADER_MISMATCH


async def test_a_one_element_batch_carrying_mirrored_headers_is_a_header_mismatch(policed):
    """A batch with Mcp-Method/Mcp-Name is a mismatch: headers describe one message, not an array of them."""
    client, token = policed
    headers, call = modern_call(1, "add", {"a": 1, "b": 2})
    status, reply = await post(client, token, headers, [call])
    assert status == 400 and reply["error"]["code"] == HEADER_MISMATCH


# -- MRTR: input_required results and their retries --------------------------------------------------------------


def mcp_lines(path) -> list[dict[str, Any]]:
    """The audit log's mcp.request lines (as tests/mcp/test_audit_log.py reads them)."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r["event"] == "mcp.request"]


def retried(request_id: Any, state: str | None) -> tuple[dict[str, str], dict[str, Any]]:
    headers, body = modern_call(request_id, "confirm_add", {"a": 20, "b": 22})
    body["params"]["inputResponses"] = ACCEPTED
    if state is not None:
        body["params"]["requestState"] = state
    return headers, body


async def direct(upstream_url: str, headers: dict[str, str], body: Any) -> dict[str, Any]:
    """What the upstream itself answers (no gateway in between)."""
    async with aiohttp.ClientSession() as session, session.post(upstream_url, json=body, headers=headers) as response:
        assert response.status == 200
        return await answer(response)


@pytest.mark.parametrize("framing", ["sse", "json"])
async def test_an_input_required_result_passes_unchanged_and_its_retry_gets_the_answer(
    start_gateway, upstream, json_upstream, store, aiohttp_client, tmp_path, framing
):
    """MRTR: the interim result (resultType, inputRequests, requestState) reaches the client as the upstream
    shapes it; the retry carrying the elicitation's answer and the requestState returns the sum. The audit line
    says which request got an input_required result and which one was a retry."""
    target = upstream if framing == "sse" else json_upstream
    log = tmp_path / "audit.jsonl"
    server = await start_gateway(
        [route("alpha", target.url, scopes=["alpha:read", "alpha:write"], policy=POLICY)], audit={"path": str(log)}
    )
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read",))
    headers, first = modern_call(1, "confirm_add", {"a": 20, "b": 22})

    status, reply = await post(client, token, headers, first)
    expected = (await direct(target.url, headers, first))["result"]
    assert status == 200 and reply["id"] == 1
    result = reply["result"]
    assert result["resultType"] == "input_required"
    assert result["inputRequests"] == expected["inputRequests"]
    assert result["inputRequests"]["confirm"]["method"] == "elicitation/create"
    assert isinstance(result["requestState"], str) and result["requestState"]
    assert {k: v for k, v in result.items() if k != "requestState"} == {
        k: v for k, v in expected.items() if k != "requestState"
    }  # (the state is sealed afresh for each answer)

    status, reply = await post(client, token, *retried(2, result["requestState"]))
    assert status == 200 and reply["id"] == 2 and reply["result"]["content"][0]["text"] == "42"

    asked, answered = mcp_lines(log)
    assert asked["status"] == 200 and asked["tools"] == ["confirm_add"]
    assert asked["result_type"] == "input_required" and "input_retry" not in asked
    assert answered["status"] == 200 and answered["input_retry"] is True and "result_type" not in answered


async def test_a_retry_carrying_only_request_state_is_audited_as_a_retry(
    start_gateway, upstream, store, aiohttp_client, tmp_path
):
    """jsonrpc.py: inputResponses or requestState, either marks a retry."""
    log = tmp_path / "audit.jsonl"
    server = await start_gateway([route("alpha", upstream.url, policy=POLICY)], audit={"path": str(log)})
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    headers, body = modern_call(1, "add", {"a": 1, "b": 1})
    body["params"]["requestState"] = "opaque"
    await post(client, token, headers, body)
    (line,) = mcp_lines(log)
    assert line["input_retry"] is True


async def test_policy_refuses_a_denied_tool_on_its_retry_too(start_gateway, upstream, store, aiohttp_client, tmp_path):
    """A retry is a request like any other: the policy denying confirm_add refuses the first call and the retried
    one (inputResponses and a requestState the upstream did issue), 403 echoing the id, nothing forwarded."""
    log = tmp_path / "audit.jsonl"
    denying = {"tools": [{"match": "confirm_*", "deny": True}]}
    server = await start_gateway([route("alpha", upstream.url, policy=denying)], audit={"path": str(log)})
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    headers, first = modern_call("c-1", "confirm_add", {"a": 20, "b": 22})
    status, reply = await post(client, token, headers, first)
    assert status == 403 and reply["id"] == "c-1" and "result" not in reply

    state = (await direct(upstream.url, headers, first))["result"]["requestState"]
    status, reply = await post(client, token, *retried("c-2", state))
    assert status == 403 and reply["id"] == "c-2" and "result" not in reply
    assert "confirm_add" in reply["error"]["message"]

    refused, refused_retry = mcp_lines(log)
    assert refused["status"] == 403 and "result_type" not in refused and "input_retry" not in refused
    assert refused_retry["status"] == 403 and refused_retry["input_retry"] is True


@pytest.fixture
async def policed_reader(start_gateway, upstream, store, aiohttp_client):
    server = await start_gateway([route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"], policy=POLICY)])
    return await aiohttp_client(server), await issue(store, server, "alpha", scopes=("alpha:read",))


async def test_a_retry_needing_more_scope_gets_the_step_up_challenge(policed_reader):
    """POLICY: `add` needs alpha:write; a retried call of it is judged like the first one."""
    client, token = policed_reader
    headers, body = modern_call(9, "add", {"a": 1, "b": 1})
    body["params"]["inputResponses"] = ACCEPTED
    status, reply = await post(client, token, headers, body)
    assert status == 403 and reply["id"] == 9 and reply["error"]["message"].startswith("Insufficient scope")


# -- subscriptions/listen under policy ---------------------------------------------------------------------------


def listen(request_id: Any, uris: list[str]) -> tuple[dict[str, str], dict[str, Any]]:
    headers = {**ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": "subscriptions/listen"}
    params = {"notifications": {"resourceSubscriptions": uris}}
    return headers, request(request_id, "subscriptions/listen", params)


@pytest.fixture
async def resource_policed(start_gateway, upstream, store, aiohttp_client):
    """RESOURCE_POLICY of tests/mcp/test_resource_policy.py: file:///secret/* is denied."""
    server = await start_gateway(
        [route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"], policy=RESOURCE_POLICY)]
    )
    return await aiohttp_client(server), await issue(store, server, "alpha", scopes=("alpha:read",))


@pytest.mark.parametrize(
    "uris",
    [
        pytest.param(["file:///secret/keys.txt"], id="forbidden-only"),
        pytest.param(["file:///public/readme.md", "file:///secret/keys.txt"], id="one-of-two-forbidden"),
    ],
)
async def test_listening_to_a_forbidden_resource_is_refused(resource_policed, uris):
    client, token = resource_policed
    status, reply = await post(client, token, *listen("l-1", uris))
    assert status == 403 and reply["id"] == "l-1" and reply["error"]["code"] == -31403


async def test_listening_to_an_allowed_resource_is_forwarded(resource_policed):
    """The upstream opens the stream and acknowledges the subscription (MCP 2026-07-28 subscriptions/listen)."""
    client, token = resource_policed
    headers, body = listen(5, ["file:///public/readme.md"])
    response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    try:
        assert response.status == 200 and response.content_type == "text/event-stream"
        async with asyncio.timeout(5):
            event = await read_sse_event(response)
    finally:
        response.close()
    assert event["method"] == "notifications/subscriptions/acknowledged"
    assert event["params"]["notifications"]["resourceSubscriptions"] == ["file:///public/readme.md"]
