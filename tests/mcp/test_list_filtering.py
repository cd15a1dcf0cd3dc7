"""List-result filtering, `gateway.mcp.filtering` (our policy; MCP Streamable HTTP framing, WHATWG HTML §9.2.6
"Interpreting an event stream"): by the shape of a result, on any stream, failing closed on what it cannot read."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mcp.filtering import FilterError, ListFilter
from gateway.mcp.sse import SseFramer, UnreadableEventError

HIDDEN = {
    ("tools", "secret_tool"),
    ("prompts", "secret_prompt"),
    ("resources", "file:///secret/a.txt"),
    ("resources", "file:///secret/{name}"),
}


def allowed(kind: str, name: str) -> bool:
    return (kind, name) not in HIDDEN


def list_filter() -> ListFilter:
    return ListFilter(allowed)


def response(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


TOOLS_RESULT = {
    "tools": [
        {"name": "echo", "inputSchema": {"type": "object"}},
        {"name": "secret_tool", "inputSchema": {"type": "object"}},
        {"name": "add", "description": "adds"},
    ],
    "nextCursor": "page-2",
    "_meta": {"k": "v"},
}
TOOLS_FILTERED = {
    "tools": [{"name": "echo", "inputSchema": {"type": "object"}}, {"name": "add", "description": "adds"}],
    "nextCursor": "page-2",
    "_meta": {"k": "v"},
}
PROMPTS_RESULT = {"prompts": [{"name": "secret_prompt"}, {"name": "greeting"}]}
PROMPTS_FILTERED = {"prompts": [{"name": "greeting"}]}


# -- ListFilter.message: by shape ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        pytest.param(TOOLS_RESULT, TOOLS_FILTERED, id="tools"),
        pytest.param(PROMPTS_RESULT, PROMPTS_FILTERED, id="prompts"),
        pytest.param(
            {"resources": [{"uri": "file:///secret/a.txt", "name": "a"}, {"uri": "file:///b", "name": "b"}]},
            {"resources": [{"uri": "file:///b", "name": "b"}]},
            id="resources-by-uri",
        ),
        pytest.param(
            {
                "resourceTemplates": [
                    {"uriTemplate": "file:///secret/{name}", "name": "s"},
                    {"uriTemplate": "file:///pub/{name}", "name": "p"},
                ]
            },
            {"resourceTemplates": [{"uriTemplate": "file:///pub/{name}", "name": "p"}]},
            id="resource-templates-by-uri-template",
        ),
        pytest.param(
            {"tools": [{"name": "secret_tool"}], "prompts": [{"name": "secret_prompt"}]},
            {"tools": [], "prompts": []},
            id="several-lists-in-one-result",
        ),
        pytest.param(
            {"contents": [{"uri": "file:///b", "text": "b"}, {"uri": "file:///secret/a.txt", "text": "s"}]},
            {"contents": [{"uri": "file:///b", "text": "b"}]},
            id="read-contents-of-a-directory",
        ),
    ],
)
@pytest.mark.parametrize("request_id", [1, "p", 7.0, None, "no-such-request"])
def test_any_result_carrying_a_list_keeps_only_allowed_items_whatever_id_it_answers(
    request_id: Any, result: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Finding 7: filtering by shape. The old filter trusted the request id (a batch reusing id 7 for tools/list and
    prompts/list made it expect prompts and pass the tools unfiltered; a replayed answer had no tracked id)."""
    assert list_filter().message(response(request_id, result)) == response(request_id, expected)


def test_a_batch_reusing_one_id_for_two_lists_gets_both_filtered() -> None:
    """Finding 7, the reported batch: [{"id":7,"method":"tools/list"},{"id":7,"method":"prompts/list"}]."""
    batch = [response(7, TOOLS_RESULT), response(7, PROMPTS_RESULT)]
    out = json.loads(list_filter().json_body(json.dumps(batch).encode()))
    assert out == [response(7, TOOLS_FILTERED), response(7, PROMPTS_FILTERED)]


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


@pytest.mark.parametrize("value", ["secret_tool", {"name": "secret_tool"}, 5, None])
def test_a_list_member_that_is_not_a_list_shows_nothing(value: Any) -> None:
    """Fail closed: `tools` is only ever a list in MCP (schema ListToolsResult); anything else is emptied."""
    assert list_filter().message(response(1, {"tools": value}))["result"]["tools"] == []


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(response(1, {"content": [{"type": "text", "text": "secret_tool"}]}), id="tool-result"),
        pytest.param({"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "boom"}}, id="error-response"),
        pytest.param(response(1, ["not", "an", "object"]), id="result-not-an-object"),
        pytest.param(response(1, {"capabilities": {"tools": {}}}), id="nested-tools-is-not-a-list-result"),
        pytest.param({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}, id="list-changed"),
        pytest.param({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, id="server-request"),
        pytest.param(response(1, TOOLS_FILTERED), id="already-allowed-only"),
        pytest.param("just a string", id="not-an-object"),
    ],
)
def test_messages_without_anything_to_hide_are_returned_as_is(message: Any) -> None:
    """filtering.py: other messages pass unchanged (the very same object, so SSE can forward the bytes)."""
    assert list_filter().message(message) is message


# -- ListFilter.json_body -------------------------------------------------------------------------------------


def test_a_single_json_body_is_filtered() -> None:
    """Streamable HTTP, application/json answer: the whole body is one response."""
    out = list_filter().json_body(json.dumps(response(1, TOOLS_RESULT)).encode())
    assert json.loads(out) == response(1, TOOLS_FILTERED)


def test_a_body_with_nothing_to_hide_passes_byte_identical() -> None:
    raw = b'{ "jsonrpc": "2.0", "id": 3, "result": {"content": []} }'
    assert list_filter().json_body(raw) is raw


def test_nested_batches_are_filtered_too() -> None:
    """No reader gets an unfiltered copy, even inside an array that is not valid JSON-RPC."""
    out = json.loads(list_filter().json_body(json.dumps([[response(1, TOOLS_RESULT)]]).encode()))
    assert out == [[response(1, TOOLS_FILTERED)]]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"not json", id="text"),
        pytest.param(b'{"jsonrpc": "2.0", "id": 1, "result": ', id="truncated"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(json.dumps(response(1, TOOLS_RESULT)).encode("utf-16"), id="utf-16"),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret_tool"}]},"result":{"tools":[]}}',
            id="duplicate-key-first-wins-elsewhere",
        ),
        pytest.param(b'{"jsonrpc":"2.0","id":NaN,"result":{}}', id="nan"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="pathologically-deep"),
    ],
)
def test_a_json_body_that_is_not_strict_json_fails_closed(raw: bytes) -> None:
    """Finding 7: an unreadable body on a filtered route must not reach the client (the old filter passed it on
    byte for byte: a first-wins or UTF-16-reading client then saw the hidden tools)."""
    with pytest.raises(FilterError):
        list_filter().json_body(raw)


# -- SSE events: the one framer (gateway.mcp.sse) with the list filter ------------------------------------------


def filtering_framer(max_event_bytes: int = 4 * 1024 * 1024) -> SseFramer:
    return SseFramer([list_filter().event], max_event_bytes=max_event_bytes)


def sse(message: Any, *, before: bytes = b"", eol: bytes = b"\n", space: bytes = b" ") -> bytes:
    return before + b"data:" + space + json.dumps(message).encode() + eol + eol


def client_events(stream: bytes) -> list[str]:
    """What a WHATWG EventSource dispatches (§9.2.6), written straight from the spec: the reference reader."""
    text = stream.decode("utf-8", errors="replace").removeprefix("\ufeff")
    lines, line, i = [], "", 0
    while i < len(text):
        c = text[i]
        if c in "\r\n":
            lines.append(line)
            line = ""
            if c == "\r" and text[i + 1 : i + 2] == "\n":
                i += 1
        else:
            line += c
        i += 1
    events, data = [], ""
    for line in lines:  # (a last line without its end is discarded, as at end of stream)
        if line == "":
            if data:
                events.append(data.removesuffix("\n"))
            data = ""
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data += value + "\n"
    return events


def data_of(stream: bytes) -> list[Any]:
    return [json.loads(event) for event in client_events(stream)]


def feed_all(rewriter: SseFramer, chunks: list[bytes]) -> bytes:
    return b"".join(rewriter.feed(chunk) for chunk in chunks) + rewriter.flush()


def test_a_filtered_event_in_one_chunk_comes_out_filtered() -> None:
    """Streamable HTTP (text/event-stream): the JSON-RPC response in the event's data is filtered."""
    out = filtering_framer().feed(sse(response(1, TOOLS_RESULT)))
    assert out.endswith(b"\n\n")
    assert data_of(out) == [response(1, TOOLS_FILTERED)]


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"data: " + json.dumps(response(1, TOOLS_RESULT)).encode() + b"\n\r\n", id="lf-then-crlf"),
        pytest.param(b"data: " + json.dumps(response(1, TOOLS_RESULT)).encode() + b"\r\n\n", id="crlf-then-lf"),
        pytest.param(b"data: " + json.dumps(response(1, TOOLS_RESULT)).encode() + b"\r\n\r", id="crlf-then-cr"),
        pytest.param(b"id: 4\rdata: " + json.dumps(response(1, TOOLS_RESULT)).encode() + b"\n\r\n", id="cr-lf-crlf"),
        pytest.param(b"data:" + json.dumps(response(1, TOOLS_RESULT)).encode() + b"\n\n", id="data-without-space"),
        pytest.param(b"\xef\xbb\xbfdata: " + json.dumps(response(1, TOOLS_RESULT)).encode() + b"\n\n", id="bom"),
        pytest.param(
            b"data: " + json.dumps(response(1, TOOLS_RESULT)).encode() + b"\n\n"
            b"data: " + json.dumps(response(2, TOOLS_RESULT)).encode() + b"\r\r",
            id="two-events-lf-and-cr",
        ),
    ],
)
def test_events_framed_any_way_the_spec_allows_are_filtered(stream: bytes) -> None:
    """Finding 7: WHATWG §9.2.6 ends a line at CRLF, LF or CR, mixed within one stream. The old framer looked for
    "\\r\\n\\r\\n|\\n\\n|\\r\\r" only, so "\\n\\r\\n" (and the BOM) let a tools list through unfiltered."""
    out = feed_all(filtering_framer(), [stream])
    assert client_events(stream)  # the client does dispatch these
    assert all(json.loads(e)["result"]["tools"] == TOOLS_FILTERED["tools"] for e in client_events(out))
    assert len(client_events(out)) == len(client_events(stream))


@pytest.mark.parametrize(
    "eol", [pytest.param(b"\n", id="lf"), pytest.param(b"\r\n", id="crlf"), pytest.param(b"\r", id="cr")]
)
def test_an_event_fed_byte_by_byte_comes_out_filtered_once_complete(eol: bytes) -> None:
    """WHATWG SSE §9.2.6: events end with a blank line; chunks fall anywhere (a CR may wait for its LF)."""
    stream = sse(response(1, TOOLS_RESULT), before=b"event: message" + eol + b"id: 17" + eol, eol=eol)
    rewriter = filtering_framer()
    outputs = [rewriter.feed(stream[i : i + 1]) for i in range(len(stream))]
    assert all(out == b"" for out in outputs[:-1]) or eol == b"\r"  # (a final CR waits for the next byte)
    rest = rewriter.flush()
    assert data_of(b"".join(outputs) + rest) == [response(1, TOOLS_FILTERED)]


def test_a_cr_at_the_end_of_a_chunk_and_an_lf_at_the_start_of_the_next_are_one_line_end() -> None:
    """A CR alone would end the line and the LF then be a blank line: the event would end early."""
    body = b"data: " + json.dumps(response(1, TOOLS_RESULT)).encode()
    rewriter = filtering_framer()
    assert rewriter.feed(body + b"\r") == b""
    assert rewriter.feed(b"\ndata: more\r\n") == b""  # still the same event: a second data line
    with pytest.raises(FilterError):  # two data lines: not JSON together (the client could not read it either)
        rewriter.feed(b"\r\n")


def test_a_filtered_event_keeps_its_id_and_event_lines() -> None:
    """SSE: the `id:` line is the resumption point (Last-Event-ID) and must survive the rewrite."""
    out = filtering_framer().feed(sse(response(1, TOOLS_RESULT), before=b"event: message\nid: 17\n"))
    lines = out.split(b"\n")
    assert b"event: message" in lines
    assert b"id: 17" in lines
    assert data_of(out) == [response(1, TOOLS_FILTERED)]


@pytest.mark.parametrize("split", [1, 2, 5, 17, 64])
def test_a_filtered_event_split_at_every_possible_boundary_comes_out_the_same(split: int) -> None:
    """Chunk boundaries are the network's: every split point yields the same filtered event."""
    stream = sse(response(1, TOOLS_RESULT), before=b"id: 3\r\n", eol=b"\r\n")
    expected = feed_all(filtering_framer(), [stream])
    for start in range(len(stream)):
        chunks = [stream[:start]] + [stream[i : i + split] for i in range(start, len(stream), split)]
        assert feed_all(filtering_framer(), chunks) == expected


UNTOUCHED = [
    pytest.param(
        b"event: message\nid: 5\ndata: " + json.dumps(response(99, PROMPTS_FILTERED)).encode() + b"\n\n",
        id="nothing-to-hide",
    ),
    pytest.param(
        b"id: abc-1\r\nevent: message\r\ndata: " + json.dumps(response(99, {"content": []})).encode() + b"\r\n\r\n",
        id="crlf-framing",
    ),
    pytest.param(
        b"data: " + json.dumps({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}).encode() + b"\n\n",
        id="list-changed-notification",
    ),
    pytest.param(
        b"data: " + json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "x"}}).encode() + b"\n\n",
        id="error-response",
    ),
    pytest.param(b": keep-alive comment\n\n", id="comment"),
    pytest.param(b"id: 9\nretry: 1000\n\n", id="no-data"),
    pytest.param(b"id: 1\r\ndata: \r\n\r\n", id="priming-event-with-empty-data"),
    pytest.param(b'data:   {"jsonrpc":"2.0",\r\ndata:"id":99,"result":{}}\r\n\r\n', id="multi-line-data"),
    pytest.param(b'id: 1\rdata: {"id": 99}\r\r', id="cr-framing"),
    pytest.param(b"\n\n", id="blank-lines"),
]


@pytest.mark.parametrize("event", UNTOUCHED)
def test_an_event_with_nothing_to_hide_passes_byte_identical(event: bytes) -> None:
    """filtering.py: every other byte goes out as it came, whole events, whatever the framing."""
    assert feed_all(filtering_framer(), [event]) == event


@pytest.mark.parametrize("event", UNTOUCHED)
def test_an_untouched_event_fed_byte_by_byte_passes_byte_identical(event: bytes) -> None:
    """Same, with the event split into single bytes."""
    rewriter = filtering_framer()
    assert feed_all(rewriter, [event[i : i + 1] for i in range(len(event))]) == event


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(b"data: {not json\n\n", id="data-not-json"),
        pytest.param(b"data: " + json.dumps(response(1, TOOLS_RESULT)).encode()[:-1] + b"\n\n", id="truncated"),
        pytest.param(
            b'data: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret_tool"}]},"result":{}}\n\n',
            id="duplicate-key",
        ),
        pytest.param(b'data: {"jsonrpc":"2.0","id":Infinity,"result":{"tools":[]}}\n\n', id="infinity"),
    ],
)
def test_an_event_whose_data_is_not_strict_json_ends_the_stream(event: bytes) -> None:
    """Our choice (finding 7): fail closed by ending the stream, not by dropping the event. A reader that frames
    or parses differently from the client cannot be trusted with anything after the event either; what came
    before it was already delivered."""
    rewriter = filtering_framer()
    first = rewriter.feed(sse(response(2, {"content": []})))
    assert data_of(first) == [response(2, {"content": []})]
    with pytest.raises(FilterError) as raised:
        rewriter.feed(sse(response(3, {"content": []})) + event + sse(response(1, TOOLS_RESULT)))
    assert data_of(raised.value.passed) == [response(3, {"content": []})]  # what came before still goes out


def test_an_event_larger_than_the_bound_ends_the_stream() -> None:
    """Bounded buffer: an event that never ends (or is huge) is not held in memory without limit."""
    rewriter = filtering_framer(max_event_bytes=1024)
    assert rewriter.feed(b"data: " + b"x" * 1000) == b""
    with pytest.raises(UnreadableEventError):
        rewriter.feed(b"y" * 100)


def test_an_event_larger_than_the_bound_is_refused_when_it_arrives_whole_in_one_chunk() -> None:
    """The bound held only for an event still incomplete after a chunk: one complete within a chunk of any size
    (what a fast upstream's reads give) went to the filter whole."""
    rewriter = filtering_framer(max_event_bytes=1024)
    small = sse(response(1, {"content": []}))
    with pytest.raises(UnreadableEventError) as raised:
        rewriter.feed(small + sse(response(2, {"content": [], "_meta": {"pad": "x" * 2000}})) + small)
    assert raised.value.passed == small


def test_many_small_events_in_one_large_chunk_are_within_the_bound() -> None:
    """The bound is per event, not per chunk."""
    chunk = sse(response(1, {"content": []})) * 1000
    assert filtering_framer(max_event_bytes=1024).feed(chunk) == chunk


def test_an_incomplete_event_at_the_end_of_the_stream_is_dropped() -> None:
    """§9.2.6: an event not ended by a blank line is never dispatched; the gateway does not pass it on at all."""
    rewriter = filtering_framer()
    partial = b"id: 4\ndata: " + json.dumps(response(1, TOOLS_RESULT)).encode() + b"\n"
    assert rewriter.feed(sse(response(99, {})) + partial) == sse(response(99, {}))
    assert rewriter.flush() == b""


def test_a_final_cr_ends_the_last_event_at_the_end_of_the_stream() -> None:
    """§9.2.6: CR alone is a line end, so "…\\r\\r" at end of stream is a complete event (filtered)."""
    rewriter = filtering_framer()
    assert rewriter.feed(b"data: " + json.dumps(response(1, TOOLS_RESULT)).encode() + b"\r\r") == b""
    assert data_of(rewriter.flush()) == [response(1, TOOLS_FILTERED)]


def test_several_events_in_one_chunk_are_each_handled() -> None:
    """One network read may hold many events: filtered ones rewritten, the others byte-identical, order kept."""
    notification = (
        b"event: message\ndata: "
        + json.dumps({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}).encode()
        + b"\n\n"
    )
    other = b"id: 8\ndata: " + json.dumps(response(99, {"content": []})).encode() + b"\n\n"
    chunk = notification + sse(response(1, TOOLS_RESULT)) + other + sse(response("p", PROMPTS_RESULT))
    out = filtering_framer().feed(chunk)
    assert out.startswith(notification)
    assert other in out
    assert data_of(out) == [
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}},
        response(1, TOOLS_FILTERED),
        response(99, {"content": []}),
        response("p", PROMPTS_FILTERED),
    ]


def test_a_batch_of_responses_in_one_event_is_filtered_like_a_batch_json_body() -> None:
    """JSON-RPC 2.0 §6 / MCP 2025-03-26 Streamable HTTP: an SSE event's data may be a batch of responses."""
    out = filtering_framer().feed(sse([response(1, TOOLS_RESULT)]))
    assert data_of(out) == [[response(1, TOOLS_FILTERED)]]


# -- property: whatever the framing and chunking, no client reads a hidden item -----------------------------

_messages = st.sampled_from(
    [
        response(1, TOOLS_RESULT),
        response("x", PROMPTS_RESULT),
        response(3, {"content": []}),
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}},
    ]
)
_eol = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def _streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    out = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    for message in draw(st.lists(_messages, min_size=1, max_size=5)):
        if draw(st.booleans()):
            out += b": comment" + draw(_eol)
        if draw(st.booleans()):
            out += b"id: " + str(draw(st.integers(0, 99))).encode() + draw(_eol)
        text = json.dumps(message, indent=draw(st.sampled_from([None, 1]))).encode()
        for line in text.splitlines():  # a multi-line payload is several data lines
            out += b"data:" + draw(st.sampled_from([b"", b" "])) + line + draw(_eol)
        out += draw(_eol)
    cuts = sorted(draw(st.sets(st.integers(0, len(out)), max_size=8)))
    return out, [out[a:b] for a, b in zip([0, *cuts], [*cuts, len(out)], strict=True)]


@settings(max_examples=300, deadline=None)
@given(_streams())
def test_no_framing_or_chunking_lets_a_client_read_a_hidden_item(stream: tuple[bytes, list[bytes]]) -> None:
    """Finding 7 as a property: what a spec-conformant client dispatches from the gateway's output is exactly what
    it would dispatch from the upstream's, filtered; nothing hidden survives, nothing else is lost. (A CR line end
    followed by an LF one is a single CRLF: events then run together, their data is no JSON, and the stream ends
    there, before anything unreadable.)"""
    whole, chunks = stream
    rewriter, out, ended = filtering_framer(), b"", False
    try:
        for chunk in chunks:
            out += rewriter.feed(chunk)
        out += rewriter.flush()
    except UnreadableEventError as exc:
        out, ended = out + exc.passed, True
    assert b"secret_tool" not in out and b"secret_prompt" not in out
    readable = []
    for event in client_events(whole):
        try:
            readable.append(list_filter().messages(json.loads(event)))
        except ValueError:
            break
    assert ended == (len(readable) < len(client_events(whole)))
    assert data_of(out) == readable
