"""Stream resumption through the gateway is bound to the caller (security review 2, R2; MCP 2025-11-25 Streamable
HTTP "Resumability and Redelivery"). The real upstream keeps every event (`--event-store`) and, like most
servers, replays a stream to whoever presents one of its event ids: the gateway must not let anyone but the caller
the stream belonged to, on its route, present one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.mcp.event_ids import MAC_LENGTH
from tests.conftest import route
from tests.mcp.test_event_ids import dispatched
from tests.mcp.test_resource_policy import sse_events
from tests.support.hostile_upstream import hostile_app
from tests.support.mcp_wire import legacy_initialize
from tests.support.processes import UpstreamProcess, start_upstream
from tests.support.tokens import issue

ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def resumable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamProcess]:
    process = start_upstream(tmp_path_factory.mktemp("resumable"), "--event-store")
    yield process
    process.stop()


@pytest.fixture
async def gateway(start_gateway, resumable, aiohttp_client):
    server = await start_gateway([route("alpha", resumable.url), route("beta", resumable.url)])
    return server, await aiohttp_client(server)


async def session(client, token: str, path: str = "/alpha/mcp") -> dict[str, str]:
    """An initialized 2025-11-25 session of the token's user: the headers of its later requests."""
    auth = {**ACCEPT, "Authorization": f"Bearer {token}"}
    started = await client.post(path, json=legacy_initialize(), headers=auth)
    await started.read()
    headers = {**auth, "Mcp-Session-Id": started.headers["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-11-25"}
    done = await client.post(path, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    await done.read()
    return headers


async def add_call(client, headers: dict[str, str], path: str = "/alpha/mcp") -> str:
    """A tools/call answered on an SSE stream; the id of its priming event, as the client got it."""
    call = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 20, "b": 22}},
    }
    stream = await client.post(path, json=call, headers=headers)
    assert stream.status == 200 and stream.content_type == "text/event-stream"
    (priming_id, _), (answer_id, answered) = await sse_events(stream, 2)
    stream.release()
    assert json.loads(answered)["result"]["content"][0]["text"] == "42"
    assert priming_id is not None and answer_id is not None
    return priming_id


async def refused(response) -> None:
    assert response.status == 400, (response.status, response.content_type)  # (a stream: its body never ends)
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["code"] == -32600 and "42" not in json.dumps(body)


async def test_another_user_cannot_replay_a_stream_while_its_owner_resumes_it(gateway, store):
    """Review 2, R2: user B, handed (or guessing) an event id of user A's stream, got A's answers replayed onto
    B's own session; the gateway forwarded Last-Event-ID as sent. Now the ids a client sees are bound to it."""
    server, client = gateway
    alice = await session(client, await issue(store, server, "alpha", user="alice", scopes=("alpha:read",)))
    bob = await session(client, await issue(store, server, "alpha", user="bob", scopes=("alpha:read",)))
    priming_id = await add_call(client, alice)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    await refused(await client.get("/alpha/mcp", headers={**bob, "Last-Event-ID": priming_id}))  # (main: replayed)
    upstream_id = priming_id.rpartition(".")[0]
    assert upstream_id.isdigit()  # the demo store's ids, bound by a MAC after the dot
    for presented in (priming_id, upstream_id, f"{upstream_id}.{'A' * 22}"):
        await refused(await client.get("/alpha/mcp", headers={**bob, "Last-Event-ID": presented}))
        await refused(await client.post("/alpha/mcp", json=ping, headers={**bob, "Last-Event-ID": presented}))

    replay = await client.get("/alpha/mcp", headers={**alice, "Last-Event-ID": priming_id})
    assert replay.status == 200 and replay.content_type == "text/event-stream"
    ((replayed_id, replayed),) = await sse_events(replay, 1)
    replay.close()
    assert json.loads(replayed)["result"]["content"][0]["text"] == "42"
    assert replayed_id is not None and replayed_id.rpartition(".")[0].isdigit()  # replayed ids are bound too


async def test_an_event_id_of_one_route_is_refused_on_another(gateway, store):
    """The same user on another route of the same upstream: the id was issued for alpha only."""
    server, client = gateway
    alpha = await session(client, await issue(store, server, "alpha", scopes=("alpha:read",)))
    beta = await session(client, await issue(store, server, "beta", scopes=("beta:read",)), "/beta/mcp")
    priming_id = await add_call(client, alpha)
    await refused(await client.get("/beta/mcp", headers={**beta, "Last-Event-ID": priming_id}))


@pytest.mark.parametrize(
    "presented",
    [
        pytest.param("1", id="a-bare-upstream-id"),
        pytest.param("9" * 5000, id="oversized"),
        pytest.param("", id="empty"),
    ],
)
async def test_a_last_event_id_the_gateway_never_issued_is_refused(gateway, store, presented):
    server, client = gateway
    headers = await session(client, await issue(store, server, "alpha", scopes=("alpha:read",)))
    await refused(await client.get("/alpha/mcp", headers={**headers, "Last-Event-ID": presented}))


async def test_every_id_a_client_sees_is_bound_and_odd_ones_never_pass(
    start_gateway, aiohttp_server, aiohttp_client, store
):
    """On a route without a policy too: each event's last event id as a client reads it (§9.2.6, mixed line ends)
    is the sealed one; an id holding NUL is ignored (clients ignore it too), one a client could not echo back in a
    header is sent empty (no resumption); the upstream's own ids never reach the client."""
    which = {"reply": "sse-odd-ids"}
    hostile = await aiohttp_server(hostile_app(which))
    server = await start_gateway([route("alpha", str(hostile.make_url("/mcp")))])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read",))
    response = await client.get("/alpha/mcp", headers={**ACCEPT, "Authorization": f"Bearer {token}"})
    assert response.status == 200
    events, last = dispatched(await response.read())  # (read as an EventSource does: line ends kept as sent)
    first = events[0][0]
    assert first.startswith("7.") and len(first) == 2 + MAC_LENGTH
    assert events == [(first, "{}"), (first, "{}"), ("", "{}")] and last == ""  # (the NUL id is gone: 7 holds)
    alpha = await client.get(
        "/alpha/mcp", headers={**ACCEPT, "Authorization": f"Bearer {token}", "Last-Event-ID": first}
    )
    assert alpha.status == 200  # its owner may resume from it
    alpha.close()


async def test_a_compressed_sse_stream_is_refused_on_any_route(start_gateway, aiohttp_server, aiohttp_client, store):
    """The gateway cannot bind ids it cannot read: 502 rather than the upstream's ids passing unbound."""
    hostile = await aiohttp_server(hostile_app({"reply": "sse-gzip"}))
    server = await start_gateway([route("alpha", str(hostile.make_url("/mcp")))])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read",))
    response = await client.get("/alpha/mcp", headers={**ACCEPT, "Authorization": f"Bearer {token}"})
    assert response.status == 502
    assert (await response.json())["error"]["code"] == -31502


async def test_the_sdk_client_resumes_its_own_interrupted_call_through_the_gateway(gateway, store):
    """MCP 2025-11-25 resumability with the real `mcp` client: the upstream closes the call's stream after the
    first progress event; the client reconnects by GET with the (bound) Last-Event-ID it was given and gets the
    rest of the call, replayed by the upstream's event store."""
    server, _ = gateway
    token = await issue(store, server, "alpha", user="carol", scopes=("alpha:read",))
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with (
        http,
        Client(streamable_http_client(str(server.make_url("/alpha/mcp")), http_client=http), mode="legacy") as client,
    ):
        arguments = {"steps": 3, "delay": 0.05, "interrupt": True}
        result = await client.call_tool("slow_progress", arguments, progress_callback=on_progress)
    assert result.content[0].text == "done"
    assert progress == ["step 1", "step 2", "step 3"]
