"""Caching hints of lists the gateway filters per caller, `gateway.mcp.filtering` and `gateway.mcp.policy`
(MCP 2026-07-28 server/utilities/caching: `cacheScope`, `ttlMs`; our choice: a per-caller view is private and
fresh no longer than the token that saw it)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from gateway.config.policy import PolicySettings
from gateway.mcp.filtering import ListFilter
from gateway.mcp.policy import per_caller_kinds
from gateway.mcp.sse import SseFramer
from tests.conftest import route
from tests.mcp.test_resource_policy import RESOURCE_POLICY
from tests.mcp.test_tool_policy import POLICY
from tests.support.mcp_wire import MODERN, read_sse_event
from tests.support.tokens import issue

HOUR_MS = 3_600_000  # what the demo upstream says of its lists and of server/discover
CAP_MS = 60_000


def response(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def hinting(private: frozenset[str], ttl_ms: int | None = CAP_MS) -> ListFilter:
    return ListFilter(lambda kind, name: name != "hidden", private=private, ttl_ms=ttl_ms)


# -- ListFilter: hints of per-caller lists ---------------------------------------------------------------------

MEMBERS = [
    pytest.param("tools", "tools", {"name": "add"}, id="tools"),
    pytest.param("prompts", "prompts", {"name": "greeting"}, id="prompts"),
    pytest.param("resources", "resources", {"uri": "file:///a"}, id="resources"),
    pytest.param("resourceTemplates", "resources", {"uriTemplate": "file:///{+path}"}, id="resource-templates"),
    pytest.param("contents", "resources", {"uri": "file:///a", "text": "a"}, id="read-contents"),
]


@pytest.mark.parametrize(("member", "kind", "item"), MEMBERS)
def test_a_per_caller_list_becomes_private_and_fresh_no_longer_than_the_cap(
    member: str, kind: str, item: dict[str, Any]
) -> None:
    """filtering.py: "public" becomes "private" and a longer ttlMs is cut, for every list member of a private kind;
    the items and the other fields are kept."""
    result = {member: [item], "cacheScope": "public", "ttlMs": HOUR_MS, "resultType": "complete", "_meta": {"k": 1}}
    out = hinting(frozenset({kind})).message(response(3, result))
    assert out == response(3, {**result, "cacheScope": "private", "ttlMs": CAP_MS})


def test_hints_are_rewritten_alongside_the_filtering_of_items() -> None:
    result = {"tools": [{"name": "add"}, {"name": "hidden"}], "cacheScope": "public", "ttlMs": HOUR_MS}
    out = hinting(frozenset({"tools"})).message(response(1, result))
    assert out["result"] == {"tools": [{"name": "add"}], "cacheScope": "private", "ttlMs": CAP_MS}


def test_one_private_kind_among_several_lists_makes_the_whole_result_private() -> None:
    """A result is cached whole: one per-caller member is enough."""
    result = {"tools": [{"name": "add"}], "prompts": [{"name": "greeting"}], "cacheScope": "public", "ttlMs": HOUR_MS}
    out = hinting(frozenset({"prompts"})).message(response(1, result))
    assert out["result"]["cacheScope"] == "private" and out["result"]["ttlMs"] == CAP_MS


@pytest.mark.parametrize(
    "hints",
    [
        pytest.param({"cacheScope": "private", "ttlMs": CAP_MS}, id="already-private-at-the-cap"),
        pytest.param({"cacheScope": "private", "ttlMs": 5}, id="private-and-shorter"),
        pytest.param({"ttlMs": 0}, id="zero-ttl"),
        pytest.param({"cacheScope": "private", "ttlMs": 59_999.5}, id="float-below-the-cap"),
        pytest.param({}, id="no-hints"),
    ],
)
def test_hints_already_within_bounds_leave_the_very_same_message(hints: dict[str, Any]) -> None:
    """filtering.py: the same object when nothing changes (so the upstream's bytes pass as they came)."""
    message = response(1, {"tools": [{"name": "add"}], **hints})
    assert hinting(frozenset({"tools"})).message(message) is message


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        pytest.param({"cacheScope": "public"}, {"cacheScope": "private"}, id="scope-only-gets-no-ttl"),
        pytest.param({"ttlMs": HOUR_MS}, {"ttlMs": CAP_MS}, id="ttl-only-gets-no-scope"),
    ],
)
def test_hints_the_upstream_did_not_send_are_not_added(hints: dict[str, Any], expected: dict[str, Any]) -> None:
    """filtering.py `_private_hints`: "none it does not carry are added"."""
    out = hinting(frozenset({"tools"})).message(response(1, {"tools": [{"name": "add"}], **hints}))
    assert out["result"] == {"tools": [{"name": "add"}], **expected}


@pytest.mark.parametrize("ttl", ["3600000", True, None, [HOUR_MS], {"ms": HOUR_MS}])
def test_a_ttl_that_is_not_a_number_is_left_alone(ttl: Any) -> None:
    """Only a JSON number is a ttlMs (a bool is no number, though Python's True > 0); the scope still changes."""
    result = {"tools": [{"name": "add"}], "cacheScope": "public", "ttlMs": ttl}
    out = hinting(frozenset({"tools"}), ttl_ms=0).message(response(1, result))
    assert out["result"] == {**result, "cacheScope": "private"}


def test_a_float_ttl_longer_than_the_cap_is_cut() -> None:
    out = hinting(frozenset({"tools"})).message(response(1, {"tools": [], "ttlMs": 1e12}))
    assert out["result"]["ttlMs"] == CAP_MS


def test_without_a_cap_the_ttl_is_kept_and_only_the_scope_changes() -> None:
    result = {"tools": [{"name": "add"}], "cacheScope": "public", "ttlMs": HOUR_MS}
    out = hinting(frozenset({"tools"}), ttl_ms=None).message(response(1, result))
    assert out["result"] == {**result, "cacheScope": "private"}


@pytest.mark.parametrize(
    ("private", "result"),
    [
        pytest.param(frozenset(), {"tools": [{"name": "add"}]}, id="nothing-private"),
        pytest.param(frozenset({"tools"}), {"prompts": [{"name": "greeting"}]}, id="prompts-when-tools-private"),
        pytest.param(frozenset({"prompts"}), {"resources": [{"uri": "file:///a"}]}, id="resources-when-prompts"),
        pytest.param(frozenset({"resources"}), {"tools": [{"name": "add"}]}, id="tools-when-resources-private"),
    ],
)
def test_lists_of_kinds_not_filtered_per_caller_keep_their_hints(private: frozenset[str], result: dict) -> None:
    """filtering.py: lists no rule varies by caller keep their hints (everyone sees the same)."""
    message = response(1, {**result, "cacheScope": "public", "ttlMs": HOUR_MS})
    assert hinting(private).message(message) is message


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(
            response(
                1,
                {
                    "resultType": "input_required",
                    "inputRequests": {"confirm": {"method": "elicitation/create", "params": {"message": "ok?"}}},
                    "requestState": "confirm-add",
                },
            ),
            id="input-required",
        ),
        pytest.param(response(1, {"cacheScope": "public", "ttlMs": HOUR_MS, "capabilities": {}}), id="discover"),
        pytest.param(response(1, {"content": [{"type": "text", "text": "5"}]}), id="tool-result"),
        pytest.param({"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": "no"}}, id="error"),
    ],
)
def test_results_without_a_list_member_pass_unchanged(message: dict[str, Any]) -> None:
    """MCP 2026-07-28 MRTR: an interim input_required result carries no hints and passes as it came."""
    everything = frozenset({"tools", "prompts", "resources"})
    assert hinting(everything, ttl_ms=0).message(message) is message


def test_the_input_message_is_not_mutated() -> None:
    result = {"tools": [{"name": "add"}], "cacheScope": "public", "ttlMs": HOUR_MS}
    message = response(1, dict(result))
    hinting(frozenset({"tools"})).message(message)
    assert message == response(1, result)


def test_a_json_batch_body_gets_each_per_caller_result_rewritten() -> None:
    tools = response(1, {"tools": [{"name": "add"}], "cacheScope": "public", "ttlMs": HOUR_MS})
    prompts = response(2, {"prompts": [{"name": "greeting"}], "cacheScope": "public", "ttlMs": HOUR_MS})
    out = json.loads(hinting(frozenset({"tools"})).json_body(json.dumps([tools, prompts]).encode()))
    assert out == [response(1, {"tools": [{"name": "add"}], "cacheScope": "private", "ttlMs": CAP_MS}), prompts]


# -- ListFilter.event: the SSE path ----------------------------------------------------------------------------


def event_lines(message: Any) -> list[bytes]:
    return [b"event: message", b"id: 7", b"data: " + json.dumps(message).encode()]


def test_an_sse_event_carrying_a_per_caller_list_is_rewritten_and_keeps_its_id() -> None:
    result = {"tools": [{"name": "add"}], "cacheScope": "public", "ttlMs": HOUR_MS}
    out = hinting(frozenset({"tools"})).event(event_lines(response(1, result)))
    assert out[:2] == [b"event: message", b"id: 7"]
    assert out[2].startswith(b"data: ")
    assert json.loads(out[2][6:]) == response(1, {**result, "cacheScope": "private", "ttlMs": CAP_MS})


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(response(1, {"prompts": [], "cacheScope": "public", "ttlMs": HOUR_MS}), id="kind-not-private"),
        pytest.param(response(1, {"resultType": "input_required", "inputRequests": {}}), id="input-required"),
        pytest.param(response(1, {"tools": [], "cacheScope": "private", "ttlMs": 1}), id="within-bounds"),
    ],
)
def test_an_sse_event_with_nothing_to_rewrite_is_the_same_list(message: dict[str, Any]) -> None:
    lines = event_lines(message)
    assert hinting(frozenset({"tools"})).event(lines) is lines


def test_a_framed_stream_split_byte_by_byte_comes_out_private() -> None:
    """Through gateway.mcp.sse's framer, as the relay runs it: chunk boundaries change nothing."""
    result = {"resources": [{"uri": "file:///a"}], "cacheScope": "public", "ttlMs": HOUR_MS}
    stream = b"id: 2\r\ndata: " + json.dumps(response(4, result)).encode() + b"\r\n\r\n"
    framer = SseFramer([hinting(frozenset({"resources"})).event])
    out = b"".join(framer.feed(stream[i : i + 1]) for i in range(len(stream))) + framer.flush()
    (data_line,) = [line for line in out.splitlines() if line.startswith(b"data:")]
    assert json.loads(data_line[5:]) == response(4, {**result, "cacheScope": "private", "ttlMs": CAP_MS})


# -- per_caller_kinds ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param({}, set(), id="no-rules"),
        pytest.param({"default": "deny"}, set(), id="default-deny-hides-alike-for-all"),
        pytest.param({"tools": [{"match": "add", "scopes": ["alpha:write"]}]}, {"tools"}, id="tool-scopes"),
        pytest.param({"tools": [{"match": "add", "groups": ["local:ops"]}]}, {"tools"}, id="tool-groups"),
        pytest.param({"tools": [{"match": "slow_*", "deny": True}]}, set(), id="tool-deny-only"),
        pytest.param({"tools": [{"match": "add"}], "default": "deny"}, set(), id="plain-allow-rule"),
        pytest.param(
            {"resources": [{"match": "file:///team/*", "groups": ["local:eng"]}]}, {"resources"}, id="resource-groups"
        ),
        pytest.param({"prompts": [{"match": "greeting", "scopes": ["p"]}]}, {"prompts"}, id="prompt-scopes"),
        pytest.param(POLICY, {"tools"}, id="tool-policy-of-the-tests"),
        pytest.param(RESOURCE_POLICY, {"tools", "prompts"}, id="resource-policy-of-the-tests"),
    ],
)
def test_per_caller_kinds_are_those_with_a_rule_naming_scopes_or_groups(policy: dict, expected: set[str]) -> None:
    """policy.py: a deny or the default hides the same things from everyone; scopes and groups differ by caller."""
    assert per_caller_kinds(PolicySettings(**policy)) == frozenset(expected)


# -- through the gateway, against the real upstream -------------------------------------------------------------


def modern(request_id: int, method: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A stateless 2026-07-28 request naming nothing (mirrored headers included)."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    return headers, {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {"_meta": meta}}


async def answer(response: aiohttp.ClientResponse) -> dict[str, Any]:
    if response.content_type == "text/event-stream":
        while "result" not in (event := await read_sse_event(response)) and "error" not in event:
            pass
        return event
    return await response.json()


async def through(client, token: str, method: str) -> dict[str, Any]:
    headers, body = modern(1, method)
    response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert response.status == 200, await response.text()
    return (await answer(response))["result"]


async def direct(upstream_url: str, method: str) -> dict[str, Any]:
    """What the upstream itself answers (no gateway in between)."""
    headers, body = modern(1, method)
    async with aiohttp.ClientSession() as session, session.post(upstream_url, json=body, headers=headers) as response:
        assert response.status == 200
        return (await answer(response))["result"]


def upstreams(upstream, json_upstream, framing: str):
    return upstream if framing == "sse" else json_upstream


FRAMINGS = pytest.mark.parametrize("framing", ["sse", "json"])


@FRAMINGS
async def test_a_policed_tools_list_is_private_and_fresh_no_longer_than_the_token(
    start_gateway, upstream, json_upstream, store, clock, aiohttp_client, framing
):
    """The upstream says public for an hour; the caller's view lasts as long as their token (10 minutes), less as
    the token ages (the gateway's injected clock)."""
    server = await start_gateway(
        [route("alpha", upstreams(upstream, json_upstream, framing).url, scopes=["alpha:read"], policy=POLICY)]
    )
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read",), ttl=600, now=clock.now)
    result = await through(client, token, "tools/list")
    assert result["cacheScope"] == "private" and result["ttlMs"] == 600_000
    assert [t["name"] for t in result["tools"]] == ["echo_headers", "confirm_add"]  # (filtered too)
    clock.now += 100.5
    result = await through(client, token, "tools/list")
    assert result["cacheScope"] == "private" and result["ttlMs"] == 499_500


async def test_a_token_outliving_the_upstreams_ttl_keeps_that_ttl_but_not_its_scope(
    start_gateway, upstream, store, clock, aiohttp_client
):
    server = await start_gateway([route("alpha", upstream.url, policy=POLICY)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", ttl=7200, now=clock.now)
    result = await through(client, token, "tools/list")
    assert result["cacheScope"] == "private" and result["ttlMs"] == HOUR_MS


async def test_on_a_policed_route_only_the_per_caller_kinds_turn_private(
    start_gateway, upstream, store, clock, aiohttp_client
):
    """RESOURCE_POLICY: prompts have a scoped rule (private), resources only a deny (public, filtered alike for
    everyone), and resource templates are listed under resources."""
    server = await start_gateway(
        [route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"], policy=RESOURCE_POLICY)]
    )
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read", "alpha:write"), ttl=300, now=clock.now)
    prompts = await through(client, token, "prompts/list")
    assert (prompts["cacheScope"], prompts["ttlMs"]) == ("private", 300_000)
    resources = await through(client, token, "resources/list")
    assert (resources["cacheScope"], resources["ttlMs"]) == ("public", HOUR_MS)
    assert [r["uri"] for r in resources["resources"]] == ["file:///public/readme.md"]
    templates = await through(client, token, "resources/templates/list")
    assert (templates["cacheScope"], templates["ttlMs"]) == ("public", HOUR_MS)


@FRAMINGS
@pytest.mark.parametrize("method", ["tools/list", "prompts/list", "resources/list", "server/discover"])
async def test_a_route_without_policy_passes_the_upstreams_answer_unchanged(
    start_gateway, upstream, json_upstream, store, clock, aiohttp_client, framing, method
):
    """No policy, no per-caller view: the hints (public, an hour) reach the client as the upstream sent them, even
    with a token shorter than the hint."""
    target = upstreams(upstream, json_upstream, framing)
    server = await start_gateway([route("alpha", target.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", ttl=60, now=clock.now)
    result = await through(client, token, method)
    assert (result["cacheScope"], result["ttlMs"]) == ("public", HOUR_MS)
    assert result == await direct(target.url, method)


async def test_a_route_whose_only_tool_rule_is_a_deny_keeps_the_list_public(
    start_gateway, upstream, store, clock, aiohttp_client
):
    """policy.py per_caller_kinds: a deny hides the same tool from everyone, so the list may be shared."""
    server = await start_gateway([route("alpha", upstream.url, policy={"tools": [{"match": "slow_*", "deny": True}]})])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", ttl=60, now=clock.now)
    result = await through(client, token, "tools/list")
    assert (result["cacheScope"], result["ttlMs"]) == ("public", HOUR_MS)
    assert "slow_progress" not in [t["name"] for t in result["tools"]]


async def test_server_discover_on_a_policed_route_passes_unchanged(
    start_gateway, upstream, store, clock, aiohttp_client
):
    """server/discover lists nothing policy judges: its hints are the upstream's, whatever the token's life."""
    server = await start_gateway([route("alpha", upstream.url, policy=POLICY)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", ttl=60, now=clock.now)
    assert await through(client, token, "server/discover") == await direct(upstream.url, "server/discover")
