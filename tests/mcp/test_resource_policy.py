"""Policy on resources, prompts, completion and batches through the gateway to the real upstream, and the list
filter on every stream (issue 10 findings 2, 5, 7; MCP 2026-07-28 server/resources, server/utilities/completion,
2025-11-25 Streamable HTTP resumability)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import route
from tests.mcp.test_tool_policy import POLICY, listed
from tests.support.hostile_upstream import HIDDEN_TOOL, hostile_app
from tests.support.mcp_wire import MODERN, legacy_initialize, read_sse_event
from tests.support.processes import UpstreamProcess, start_upstream
from tests.support.tokens import issue

RESOURCE_POLICY = {
    "resources": [{"match": "file:///secret/*", "deny": True}],
    "prompts": [{"match": "internal_*", "deny": True}, {"match": "greeting", "scopes": ["alpha:write"]}],
    "tools": POLICY["tools"],
}
ALTERNATE_SPELLINGS = [
    "file:///%73ecret/keys.txt",
    "file:///secret%2Fkeys.txt",
    "file:///public/../secret/keys.txt",
    "file:///public/%2E%2E/secret/keys.txt",
    "file:///SECRET/keys.txt",
    "file://localhost/secret/keys.txt",
    "FILE:///secret/keys.txt",
    "file:///secret%252Fkeys.txt",
    "file:////secret/keys.txt",  # review 2, R3: where a server looks
    "file://fileserver/secret/keys.txt",
    "file:///secret;v=1/keys.txt",
    "file:///public/\uff0e\uff0e/secret/keys.txt",
]


def modern(
    request_id: Any, method: str, params: dict[str, Any], name: str | None = None
) -> tuple[dict[str, str], dict[str, Any]]:
    """Headers and body of a stateless 2026-07-28 request (mirrored headers included)."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = name if name.isascii() else "=?base64?" + _b64(name) + "?="
    return headers, {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": meta}}


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


async def answer(response) -> dict[str, Any]:
    if response.content_type == "text/event-stream":
        while "result" not in (event := await read_sse_event(response)) and "error" not in event:
            pass
        return event
    return await response.json()


async def post(client, token: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    return response.status, await answer(response)


@pytest.fixture
async def policed(start_gateway, upstream, store, aiohttp_client):
    server = await start_gateway(
        [route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"], policy=RESOURCE_POLICY)]
    )
    return await aiohttp_client(server), await issue(store, server, "alpha", scopes=("alpha:read",))


async def read(client, token: str, uri: str, request_id: Any = 1) -> tuple[int, dict[str, Any]]:
    headers, body = modern(request_id, "resources/read", {"uri": uri}, uri)
    return await post(client, token, headers, body)


async def test_the_plain_spelling_is_served_and_the_protected_one_refused(policed):
    client, token = policed
    status, reply = await read(client, token, "file:///public/readme.md")
    assert status == 200 and reply["result"]["contents"][0]["text"].startswith("# Public readme")
    status, reply = await read(client, token, "file:///secret/keys.txt", "r-1")
    assert status == 403 and reply["id"] == "r-1" and reply["error"]["code"] == -31403


@pytest.mark.parametrize("uri", ALTERNATE_SPELLINGS)
async def test_every_alternate_spelling_of_the_protected_resource_is_refused(policed, uri):
    """Finding 2: the upstream (the SDK's template `file:///{+path}`, a forgiving file server) serves
    top-secret-key-material for each of these; the gateway answers 400 invalid params echoing the id."""
    client, token = policed
    status, reply = await read(client, token, uri, "alt")
    assert status == 400, reply
    assert reply["id"] == "alt" and reply["error"]["code"] == -32602
    assert "top-secret" not in json.dumps(reply)


@pytest.mark.parametrize(
    ("method", "params", "status"),
    [
        pytest.param("resources/subscribe", {"uri": "file:///secret/keys.txt"}, 403, id="subscribe"),
        pytest.param("resources/unsubscribe", {"uri": "file:///%73ecret/keys.txt"}, 400, id="unsubscribe-encoded"),
        pytest.param(
            "subscriptions/listen",
            {"notifications": {"resourceSubscriptions": ["file:///public/readme.md", "file:///secret/keys.txt"]}},
            403,
            id="listen",
        ),
        pytest.param(
            "completion/complete",
            {"ref": {"type": "ref/prompt", "name": "internal_review"}, "argument": {"name": "x", "value": ""}},
            403,
            id="complete-denied-prompt",
        ),
        pytest.param(
            "completion/complete",
            {"ref": {"type": "ref/prompt", "name": "INTERNAL_review"}, "argument": {"name": "x", "value": ""}},
            400,
            id="complete-prompt-other-case",
        ),
        pytest.param(
            "completion/complete",
            {
                "ref": {"type": "ref/resource", "uri": "file:///secret/{name}"},
                "argument": {"name": "name", "value": ""},
            },
            403,
            id="complete-denied-template",
        ),
        pytest.param("prompts/get", {"name": "internal_review"}, 403, id="denied-prompt"),
        pytest.param("tools/call", {"name": "SLOW_progress", "arguments": {}}, 400, id="denied-tool-other-case"),
        pytest.param("tools/call", {"name": "ｓｌｏｗ_progress", "arguments": {}}, 400, id="denied-tool-fullwidth"),
    ],
)
async def test_everything_that_names_a_protected_thing_follows_its_policy(policed, method, params, status):
    """Finding 2: subscribe/unsubscribe (and 2026-07-28 subscriptions/listen), completion of a prompt's or a
    template's arguments, and tool and prompt names in other spellings; none reaches the upstream."""
    client, token = policed
    name = params.get("name") or params.get("uri")
    headers, body = modern(
        9,
        method,
        params,
        name if method in ("tools/call", "prompts/get", "resources/unsubscribe", "resources/subscribe") else None,
    )
    got, reply = await post(client, token, headers, body)
    assert got == status, reply
    assert reply["id"] == 9


async def test_completion_of_an_allowed_prompt_reaches_the_upstream_and_needs_its_scopes(
    policed, start_gateway, upstream, store, aiohttp_client
):
    """The prompt's own rule applies to completing it: `greeting` needs alpha:write (step-up), then completes."""
    client, token = policed
    params = {"ref": {"type": "ref/prompt", "name": "greeting"}, "argument": {"name": "name", "value": "a"}}
    status, reply = await post(client, token, *modern(3, "completion/complete", params))
    assert status == 403 and reply["error"]["message"].startswith("Insufficient scope")
    writer = await issue(store, client.server, "alpha", user="writer", scopes=("alpha:read", "alpha:write"))
    status, reply = await post(client, writer, *modern(3, "completion/complete", params))
    assert status == 200 and reply["result"]["completion"]["values"] == ["alice"]


async def test_resource_lists_show_only_what_the_caller_may_read(policed):
    client, token = policed
    status, reply = await post(client, token, *modern(1, "resources/list", {}))
    assert status == 200 and [r["uri"] for r in reply["result"]["resources"]] == ["file:///public/readme.md"]
    status, reply = await post(client, token, *modern(2, "resources/templates/list", {}))
    assert [t["uriTemplate"] for t in reply["result"]["resourceTemplates"]] == ["file:///{+path}"]


# -- finding 5: bounded batches, bounded buckets ---------------------------------------------------------------


async def rate_limit_keys(store) -> list[str]:
    pattern = store.key("rl", "*").replace("{*}", "*")  # every user's buckets
    return [k async for k in store._redis.scan_iter(match=pattern, count=1000)]  # noqa: SLF001


def batch_call(request_id: int, tool: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": tool, "arguments": {}}}


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param([batch_call(i, "add") for i in range(101)], id="101-messages"),
        pytest.param([batch_call(i, f"tool_{i}") for i in range(11)], id="11-distinct-tools"),
        pytest.param(
            [
                {"jsonrpc": "2.0", "id": 7, "method": "tools/list"},
                {"jsonrpc": "2.0", "id": 7, "method": "prompts/list"},
            ],
            id="duplicate-ids",
        ),
        pytest.param(
            [
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "subscriptions/listen",
                    "params": {"notifications": {"resourceSubscriptions": [f"file:///r/{j}" for j in range(100)]}},
                }
                for i in range(2)
            ],
            id="200-names-for-policy",
        ),
        pytest.param([batch_call(i, "t" * 2000) for i in range(9)], id="18-KB-of-names-for-policy"),
    ],
)
async def test_an_oversized_or_ambiguous_batch_is_refused_before_any_bucket_or_upstream(
    start_gateway, upstream, store, aiohttp_client, batch
):
    """Finding 5 (a flood of buckets), 7 (reused ids) and review 2 R1 (more than policy may judge): 400 invalid
    request; no rate-limit key is created and nothing is forwarded. Routes without any policy are covered too (the
    default tool limit reads every body)."""
    server = await start_gateway([route("alpha", upstream.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    response = await client.post(
        "/alpha/mcp",
        json=batch,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": MODERN,
        },
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == -32600
    assert await rate_limit_keys(store) == []


async def test_a_batch_within_the_bounds_makes_one_bucket_per_distinct_tool(
    start_gateway, upstream, store, aiohttp_client
):
    """The other side of the bound: 10 distinct tools, 100 messages: charged (1 + 10 buckets) and forwarded (the
    SDK upstream itself refuses batches, which 2025-06-18 removed; that is its answer, not the gateway's)."""
    server = await start_gateway([route("alpha", upstream.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    batch = [batch_call(i, f"tool_{i % 10}") for i in range(100)]
    response = await client.post(
        "/alpha/mcp",
        json=batch,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": MODERN,
        },
    )
    assert "Invalid request: " not in await response.text()
    assert len(await rate_limit_keys(store)) == 11


# -- finding 7: every response of a policed route is filtered, GET replays included -----------------------------


@pytest.fixture(scope="session")
def resumable_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamProcess]:
    """The real upstream keeping every SSE event (an event store), so GET with Last-Event-ID replays them."""
    process = start_upstream(tmp_path_factory.mktemp("resumable-upstream"), "--event-store")
    yield process
    process.stop()


async def sse_events(response, count: int) -> list[tuple[str | None, str]]:
    """The next `count` events as (id, data), empty data included (priming events)."""
    events: list[tuple[str | None, str]] = []
    event_id, data = None, []
    async with asyncio.timeout(10):
        while len(events) < count:
            line = (await response.content.readline()).decode().rstrip("\r\n")
            if line == "":
                events.append((event_id, "\n".join(data)))
                event_id, data = None, []
            elif line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
    return events


async def test_a_resumed_get_stream_replays_an_earlier_tools_list_filtered(
    start_gateway, resumable_upstream, store, aiohttp_client
):
    """Finding 7: MCP 2025-11-25 resumability. The answer to tools/list is stored by the upstream's event store and
    replayed on GET with Last-Event-ID; the old gateway filtered only POST answers to ids it tracked."""
    server = await start_gateway(
        [route("alpha", resumable_upstream.url, scopes=["alpha:read", "alpha:write"], policy=POLICY)]
    )
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read", "alpha:write"), groups=("ops",))
    auth = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    started = await client.post("/alpha/mcp", json=legacy_initialize(), headers=auth)
    await started.read()
    session = {**auth, "Mcp-Session-Id": started.headers["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-11-25"}
    await (
        await client.post("/alpha/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
    ).read()
    listing = await client.post("/alpha/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=session)
    (priming_id, _), (_, answered) = await sse_events(listing, 2)
    listing.release()
    assert HIDDEN_TOOL not in answered and "add" in answered

    replay = await client.get("/alpha/mcp", headers={**session, "Last-Event-ID": priming_id})
    assert replay.status == 200 and replay.content_type == "text/event-stream"
    ((_, replayed),) = await sse_events(replay, 1)
    replay.close()
    message = json.loads(replayed)
    assert message["id"] == 2
    assert [t["name"] for t in message["result"]["tools"]] == ["echo_headers", "add", "confirm_add"]


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        pytest.param("gzip-json", 502, id="encoded-body"),
        pytest.param("json-naming-sse-too", 502, id="content-type-read-differently-by-sdks"),
        pytest.param("duplicate-key-json", 502, id="duplicate-key-json"),
        pytest.param("deep-json", 502, id="nested-deeper-than-max-depth"),
        pytest.param("very-deep-json", 502, id="nested-beyond-the-recursion-limit"),
    ],
)
async def test_a_response_the_gateway_cannot_read_as_a_client_would_is_a_502(
    start_gateway, aiohttp_server, store, aiohttp_client, reply, status
):
    """Finding 7: fail closed on a filtered route. A gzip body (the gateway asked for identity), a Content-Type the
    TypeScript SDK reads as SSE and the Python SDK as JSON, a JSON body with a duplicate key: the old relay passed
    each on, unfiltered. A body nested deeper than strict_json.MAX_DEPTH too (review 2, R4d), never a 500."""
    which = {"reply": reply}
    hostile = await aiohttp_server(hostile_app(which))
    server = await start_gateway(
        [route("alpha", str(hostile.make_url("/mcp")), scopes=["alpha:read", "alpha:write"], policy=POLICY)]
    )
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read", "alpha:write"), groups=("ops",))
    response = await client.post(
        "/alpha/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    assert response.status == status
    assert HIDDEN_TOOL not in await response.text()


@pytest.mark.parametrize(
    "reply", ["json-with-parameters", "two-content-types", "unlabelled-json", "sse-mixed-line-ends"]
)
async def test_any_readable_response_of_a_filtered_route_is_filtered(
    start_gateway, aiohttp_server, store, aiohttp_client, reply
):
    """Whatever the response claims to be, if it parses it is filtered (a client may read it as JSON-RPC)."""
    which = {"reply": reply}
    hostile = await aiohttp_server(hostile_app(which))
    server = await start_gateway(
        [route("alpha", str(hostile.make_url("/mcp")), scopes=["alpha:read", "alpha:write"], policy=POLICY)]
    )
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read", "alpha:write"), groups=("ops",))
    response = await client.post(
        "/alpha/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    text = await response.text()
    assert response.status == 200 and '"add"' in text
    assert HIDDEN_TOOL not in text


@pytest.mark.parametrize("reply", ["sse-unparseable-then-list", "sse-deep-then-list", "sse-endless-event"])
async def test_an_sse_stream_ends_at_an_event_it_cannot_read(
    start_gateway, aiohttp_server, store, aiohttp_client, reply
):
    """Finding 7, our choice: the stream ends there (what came before is delivered, filtered); nothing after it,
    and an event larger than the bound is never held whole."""
    which = {"reply": reply}
    hostile = await aiohttp_server(hostile_app(which))
    server = await start_gateway(
        [route("alpha", str(hostile.make_url("/mcp")), scopes=["alpha:read", "alpha:write"], policy=POLICY)]
    )
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read", "alpha:write"), groups=("ops",))
    response = await client.get(
        "/alpha/mcp", headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    )
    async with asyncio.timeout(10):
        text = (await response.read()).decode()
    assert HIDDEN_TOOL not in text and '"id":8' not in text and "0,0,0" not in text  # (nothing of the endless one)
    assert ('"add"' in text) == (reply != "sse-endless-event")


async def test_tools_list_through_the_sdk_client_is_still_filtered(start_gateway, upstream, store, aiohttp_client):
    """The honest path keeps working: the real upstream's SSE answer, filtered."""
    server = await start_gateway([route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"], policy=POLICY)])
    client = await aiohttp_client(server)
    reader = await issue(store, server, "alpha", user="reader", scopes=("alpha:read",), groups=())
    assert await listed(client, reader) == ["confirm_add"]
