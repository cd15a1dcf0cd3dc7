"""List-result filtering, `gateway.mcp.filtering` (our policy; MCP Streamable HTTP framing, WHATWG SSE §9.2.6)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.mcp.filtering import ListFilter, SseRewriter

HIDDEN = {("tools", "secret_tool"), ("prompts", "secret_prompt"), ("resources", "file:///secret/a.txt"),
          ("resources", "file:///secret/{name}")}
LISTS: dict[str | int, str] = {1: "tools/list", "p": "prompts/list", 3: "resources/list",
                               4: "resources/templates/list"}


def allowed(kind: str, name: str) -> bool:
    return (kind, name) not in HIDDEN


def list_filter() -> ListFilter:
    return ListFilter(dict(LISTS), allowed)


def response(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


TOOLS_RESULT = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}},
                          {"name": "secret_tool", "inputSchema": {"type": "object"}},
                          {"name": "add", "description": "adds"}],
                "nextCursor": "page-2", "_meta": {"k": "v"}}
TOOLS_FILTERED = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}},
                            {"name": "add", "description": "adds"}],
                  "nextCursor": "page-2", "_meta": {"k": "v"}}


# -- ListFilter.message ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("request_id", "result", "expected"),
    [
        pytest.param(1, TOOLS_RESULT, TOOLS_FILTERED, id="tools"),
        pytest.param("p", {"prompts": [{"name": "secret_prompt"}, {"name": "greeting"}]},
                     {"prompts": [{"name": "greeting"}]}, id="prompts"),
        pytest.param(3, {"resources": [{"uri": "file:///secret/a.txt", "name": "a"},
                                       {"uri": "file:///b", "name": "b"}]},
                     {"resources": [{"uri": "file:///b", "name": "b"}]}, id="resources-by-uri"),
        pytest.param(4, {"resourceTemplates": [{"uriTemplate": "file:///secret/{name}", "name": "s"},
                                               {"uriTemplate": "file:///pub/{name}", "name": "p"}]},
                     {"resourceTemplates": [{"uriTemplate": "file:///pub/{name}", "name": "p"}]},
                     id="resource-templates-by-uri-template"),
    ],
)
def test_a_tracked_list_response_keeps_only_allowed_items(request_id: Any, result: dict[str, Any],
                                                           expected: dict[str, Any]) -> None:
    """LISTS: each list method's result field and item key; the caller sees only what policy lets them use."""
    filtered = list_filter().message(response(request_id, result))
    assert filtered == response(request_id, expected)


def test_other_result_fields_survive_filtering() -> None:
    """MCP pagination: nextCursor (and _meta) are kept, so the client can fetch the next page."""
    filtered = list_filter().message(response(1, TOOLS_RESULT))
    assert filtered["result"]["nextCursor"] == "page-2"
    assert filtered["result"]["_meta"] == {"k": "v"}
    assert filtered["jsonrpc"] == "2.0"


def test_filtering_does_not_mutate_the_input_message() -> None:
    """Our choice: a new message is built; the parsed original stays as it was."""
    original = response(1, json.loads(json.dumps(TOOLS_RESULT)))
    list_filter().message(original)
    assert original == response(1, TOOLS_RESULT)


def test_items_without_a_string_key_are_dropped() -> None:
    """Fail closed: an item policy cannot name cannot be judged allowed."""
    result = {"tools": [{"name": "echo"}, {"name": 5}, {"title": "nameless"}, "echo", None]}
    assert list_filter().message(response(1, result))["result"]["tools"] == [{"name": "echo"}]


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(response(99, TOOLS_RESULT), id="untracked-id"),
        pytest.param(response("1", TOOLS_RESULT), id="string-id-is-not-the-int-id"),
        pytest.param(response(None, TOOLS_RESULT), id="null-id"),
        pytest.param({"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "boom"}}, id="error-response"),
        pytest.param(response(1, ["not", "an", "object"]), id="result-not-an-object"),
        pytest.param(response(1, {"items": [{"name": "secret_tool"}]}), id="result-without-the-list-field"),
        pytest.param(response(1, {"tools": "secret_tool"}), id="list-field-not-a-list"),
        pytest.param({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}, id="list-changed"),
        pytest.param({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, id="server-request-reusing-the-id"),
        pytest.param({"jsonrpc": "2.0", "id": [1], "result": {"tools": []}}, id="unhashable-id"),
        pytest.param([response(1, TOOLS_RESULT)], id="a-batch-is-not-a-message"),
        pytest.param("just a string", id="not-an-object"),
    ],
)
def test_messages_that_are_not_a_tracked_list_result_are_returned_as_is(message: Any) -> None:
    """filtering.py: other messages pass unchanged (the very same object, so SSE can forward the bytes)."""
    assert list_filter().message(message) is message


# -- ListFilter.json_body -------------------------------------------------------------------------------------

def test_a_single_json_body_is_filtered() -> None:
    """Streamable HTTP, application/json answer: the whole body is one response."""
    out = list_filter().json_body(json.dumps(response(1, TOOLS_RESULT)).encode())
    assert json.loads(out) == response(1, TOOLS_FILTERED)


def test_a_batch_json_body_filters_each_tracked_response_and_keeps_the_rest() -> None:
    """JSON-RPC 2.0 §6: a batch answer is an array of responses, each judged on its own id."""
    batch = [response(1, TOOLS_RESULT), response(99, TOOLS_RESULT),
             response("p", {"prompts": [{"name": "secret_prompt"}]})]
    out = json.loads(list_filter().json_body(json.dumps(batch).encode()))
    assert out == [response(1, TOOLS_FILTERED), response(99, TOOLS_RESULT), response("p", {"prompts": []})]


@pytest.mark.parametrize("raw", [b"not json", b'{"jsonrpc": "2.0", "id": 1, "result": ', b"\xff\xfe"])
def test_a_json_body_that_does_not_parse_is_returned_unchanged(raw: bytes) -> None:
    """Not ours to fix: an unreadable body goes to the client byte for byte."""
    assert list_filter().json_body(raw) == raw


# -- SseRewriter ----------------------------------------------------------------------------------------------

def sse(message: Any, *, before: bytes = b"", eol: bytes = b"\n") -> bytes:
    return before + b"data: " + json.dumps(message).encode() + eol + eol


def data_of(stream: bytes) -> list[Any]:
    """The JSON of every data field, one per event (LF, CRLF or CR line ends)."""
    events = stream.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n\n")
    out = []
    for event in events:
        data = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
        if data:
            out.append(json.loads(b"\n".join(data)))
    return out


def feed_all(rewriter: SseRewriter, chunks: list[bytes]) -> bytes:
    return b"".join(rewriter.feed(chunk) for chunk in chunks) + rewriter.flush()


def test_a_filtered_event_in_one_chunk_comes_out_filtered() -> None:
    """Streamable HTTP (text/event-stream): the JSON-RPC response in the event's data is filtered."""
    out = SseRewriter(list_filter()).feed(sse(response(1, TOOLS_RESULT)))
    assert out.endswith(b"\n\n")
    assert data_of(out) == [response(1, TOOLS_FILTERED)]


@pytest.mark.parametrize("eol", [pytest.param(b"\n", id="lf"), pytest.param(b"\r\n", id="crlf"),
                                 pytest.param(b"\r", id="cr")])
def test_an_event_fed_byte_by_byte_comes_out_filtered_once_complete(eol: bytes) -> None:
    """WHATWG SSE §9.2.6: events end with a blank line (any of the three line ends); chunks fall anywhere."""
    stream = sse(response(1, TOOLS_RESULT), before=b"event: message" + eol + b"id: 17" + eol, eol=eol)
    rewriter = SseRewriter(list_filter())
    outputs = [rewriter.feed(stream[i:i + 1]) for i in range(len(stream))]
    assert all(out == b"" for out in outputs[:-1])  # nothing leaks before the event is complete
    assert rewriter.flush() == b""
    assert data_of(outputs[-1]) == [response(1, TOOLS_FILTERED)]


def test_a_filtered_event_keeps_its_id_and_event_lines() -> None:
    """SSE: the `id:` line is the resumption point (Last-Event-ID) and must survive the rewrite."""
    out = SseRewriter(list_filter()).feed(sse(response(1, TOOLS_RESULT), before=b"event: message\nid: 17\n"))
    lines = out.split(b"\n")
    assert b"event: message" in lines
    assert b"id: 17" in lines
    assert data_of(out) == [response(1, TOOLS_FILTERED)]


@pytest.mark.parametrize("split", [1, 2, 5, 17, 64])
def test_a_filtered_event_split_at_every_possible_boundary_comes_out_the_same(split: int) -> None:
    """Chunk boundaries are the network's: every split point yields the same filtered event."""
    stream = sse(response(1, TOOLS_RESULT), before=b"id: 3\r\n", eol=b"\r\n")
    expected = feed_all(SseRewriter(list_filter()), [stream])
    for start in range(len(stream)):
        chunks = [stream[:start]] + [stream[i:i + split] for i in range(start, len(stream), split)]
        assert feed_all(SseRewriter(list_filter()), chunks) == expected


UNTOUCHED = [
    pytest.param(b"event: message\nid: 5\ndata: " + json.dumps(response(99, TOOLS_RESULT)).encode() + b"\n\n",
                 id="untracked-response"),
    pytest.param(b"id: abc-1\r\nevent: message\r\ndata: " + json.dumps(response(99, TOOLS_RESULT)).encode()
                 + b"\r\n\r\n", id="crlf-framing"),
    pytest.param(b"data: " + json.dumps({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}).encode()
                 + b"\n\n", id="list-changed-notification"),
    pytest.param(b"data: " + json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "x"}}).encode()
                 + b"\n\n", id="error-for-a-tracked-id"),
    pytest.param(b": keep-alive comment\n\n", id="comment"),
    pytest.param(b"id: 9\nretry: 1000\n\n", id="no-data"),
    pytest.param(b"data: {not json\n\n", id="data-not-json"),
    pytest.param(b"data:   {\"jsonrpc\":\"2.0\",\r\ndata:\"id\":99,\"result\":{}}\r\n\r\n", id="multi-line-data"),
    pytest.param(b"id: 1\rdata: {\"id\": 99}\r\r", id="cr-framing"),
    pytest.param(b"\n\n", id="blank-lines"),
]


@pytest.mark.parametrize("event", UNTOUCHED)
def test_an_event_that_is_not_a_tracked_list_result_passes_byte_identical(event: bytes) -> None:
    """filtering.py: every other byte goes out as it came, whole events, whatever the framing."""
    assert SseRewriter(list_filter()).feed(event) == event


@pytest.mark.parametrize("event", UNTOUCHED)
def test_an_untouched_event_fed_byte_by_byte_passes_byte_identical(event: bytes) -> None:
    """Same, with the event split into single bytes."""
    rewriter = SseRewriter(list_filter())
    assert feed_all(rewriter, [event[i:i + 1] for i in range(len(event))]) == event


def test_flush_returns_a_trailing_partial_event_unchanged() -> None:
    """At end of stream an unterminated event is passed on as it came (SSE clients discard it, §9.2.6)."""
    rewriter = SseRewriter(list_filter())
    partial = b"id: 4\ndata: " + json.dumps(response(1, TOOLS_RESULT)).encode() + b"\n"
    assert rewriter.feed(sse(response(99, {})) + partial) == sse(response(99, {}))
    assert rewriter.flush() == partial
    assert rewriter.flush() == b""


def test_several_events_in_one_chunk_are_each_handled() -> None:
    """One network read may hold many events: filtered ones rewritten, the others byte-identical, order kept."""
    notification = b"event: message\ndata: " + json.dumps(
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}).encode() + b"\n\n"
    other = b"id: 8\ndata: " + json.dumps(response(99, TOOLS_RESULT)).encode() + b"\n\n"
    chunk = notification + sse(response(1, TOOLS_RESULT)) + other + sse(response("p", {"prompts": [
        {"name": "secret_prompt"}, {"name": "greeting"}]}))
    out = SseRewriter(list_filter()).feed(chunk)
    assert out.startswith(notification)
    assert other in out
    assert data_of(out) == [
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}},
        response(1, TOOLS_FILTERED), response(99, TOOLS_RESULT), response("p", {"prompts": [{"name": "greeting"}]}),
    ]


def test_a_batch_of_responses_in_one_event_is_filtered_like_a_batch_json_body() -> None:
    """JSON-RPC 2.0 §6 / MCP 2025-03-26 Streamable HTTP: an SSE event's data may be a batch of responses.
    json_body filters batches; pinned gap: the SSE path passes a batch through unfiltered, leaking hidden tools."""
    out = SseRewriter(list_filter()).feed(sse([response(1, TOOLS_RESULT)]))
    assert data_of(out) == [[response(1, TOOLS_FILTERED)]]
