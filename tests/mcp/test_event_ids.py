"""SSE event ids bound to the caller (security review 2, R2; MCP 2025-11-25 Streamable HTTP "Resumability and
Redelivery"; WHATWG HTML §9.2.6 `id` field). Through a real gateway: tests/proxy/test_stream_resumption.py."""

from __future__ import annotations

import json
import secrets

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.mcp.event_ids import EVENT_ID_SECRET, MAX_ID_LINE, MAX_LAST_EVENT_ID, EventIdBinding, EventIds
from gateway.mcp.filtering import ListFilter
from gateway.mcp.sse import MAX_EVENT_BYTES, SseFramer

KEY = secrets.token_bytes(32)


def binding(user: str = "local:alice", client: str = "client-a", route: str = "alpha", key: bytes = KEY):
    return EventIdBinding(key, json.dumps([user, client, route]).encode())


def id_lines_framer() -> SseFramer:
    """The framer of a route without a list filter (gateway.proxy.upstream): only `id` lines are held."""
    return SseFramer([binding().rewrite], held_field=b"id", max_held_line=MAX_ID_LINE)


FRAMERS = {"whole-events": lambda: SseFramer([binding().rewrite]), "id-lines": id_lines_framer}


def ids_of(stream: bytes) -> list[bytes]:
    """The `id` values a client would take from the stream (LF-framed output of the gateway)."""
    return [line.partition(b":")[2].strip() for line in stream.split(b"\n") if line.startswith(b"id")]


def test_a_sealed_id_opens_for_its_caller_on_its_route_only() -> None:
    sealed = binding().seal(b"stream-1_42").decode()
    assert sealed.startswith("stream-1_42.")
    assert binding().open(sealed) == "stream-1_42"
    for other in (
        binding(user="local:bob"),
        binding(client="client-b"),
        binding(route="beta"),
        binding(key=secrets.token_bytes(32)),
    ):
        assert other.open(sealed) is None


@pytest.mark.parametrize(
    "presented",
    [
        pytest.param("stream-1_42", id="an-upstream-id-as-the-upstream-sent-it"),
        pytest.param("", id="empty"),
        pytest.param(".", id="only-a-dot"),
        pytest.param("stream-1_42.", id="no-mac"),
        pytest.param("stream-1_42.AAAAAAAAAAAAAAAAAAAAAA", id="a-guessed-mac"),
        pytest.param("x" * (MAX_LAST_EVENT_ID + 1), id="over-the-length-bound"),
        pytest.param("é.abc", id="not-ascii"),
        pytest.param("a b.abc", id="a-space"),
    ],
)
def test_what_the_gateway_never_issued_does_not_open(presented: str) -> None:
    assert binding().open(presented) is None


def test_a_tampered_mac_or_upstream_id_does_not_open() -> None:
    sealed = binding().seal(b"7").decode()
    upstream_id, _, mac = sealed.rpartition(".")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    assert binding().open(f"{upstream_id}.{flipped}") is None
    assert binding().open(f"8.{mac}") is None
    assert binding().open(f"7.{mac}.{mac}") is None  # (the MAC of "7.<mac>" is another one)


def test_ids_a_client_could_not_echo_back_unchanged_are_sent_empty() -> None:
    """A reset (empty id) instead: the client resumes nowhere rather than from an id it cannot present."""
    assert binding().seal(b"x" * 257) == b""
    assert binding().seal(b"with space") == b""
    assert binding().seal("é".encode()) == b""
    assert binding().open(binding().seal(b"x" * 256).decode()) == "x" * 256


def test_every_id_line_of_an_event_is_sealed_and_the_rest_passes_as_it_came() -> None:
    lines = [b"event: message", b"id: 1", b": comment", b"id:2", b'data: {"a": 1}', b"retry: 5"]
    out = binding().rewrite(lines)
    assert out[0] == b"event: message" and out[2] == b": comment" and out[4:] == lines[4:]
    assert out[1] == b"id: " + binding().seal(b"1") and out[3] == b"id: " + binding().seal(b"2")


def test_an_id_holding_nul_becomes_a_comment_and_an_empty_id_stays_a_reset() -> None:
    """§9.2.6: an `id` field containing U+0000 is ignored by clients (so is a comment, and a comment keeps the line
    and its line end); an empty one resets the last event id."""
    assert binding().rewrite([b"id: 1\x002", b"data: x"]) == [b":", b"data: x"]
    assert binding().rewrite([b"id", b"id:", b"id: "]) == [b"id", b"id", b"id"]


def test_an_event_without_an_id_is_the_same_list() -> None:
    lines = [b"data: x", b"idx: not an id", b": id: comment"]
    assert binding().rewrite(lines) is lines


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_ids_are_sealed_whatever_the_framing_and_chunking(eol: bytes) -> None:
    """One framer (gateway.mcp.sse) reads ids for the binding as it reads data for the list filter."""
    stream = eol.join([b"id: 5", b"data: {}", b"", b"id: 6", b": priming", b"", b""])
    framer = SseFramer([binding().rewrite])
    whole = framer.feed(stream) + framer.flush()  # (a last CR may be the first half of a CRLF until the end)
    framer = SseFramer([binding().rewrite])
    bytewise = b"".join(framer.feed(stream[i : i + 1]) for i in range(len(stream))) + framer.flush()
    assert ids_of(whole) == ids_of(bytewise) == [binding().seal(b"5"), binding().seal(b"6")]
    assert b"id: 5" + eol not in whole


def test_a_filtered_event_keeps_its_id_sealed() -> None:
    """List filter first, then the binding: a rewritten event's id is sealed too."""
    hide = ListFilter(lambda kind, name: name != "secret_tool")
    message = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "add"}, {"name": "secret_tool"}]}}
    event = b"id: 9\ndata: " + json.dumps(message).encode() + b"\n\n"
    out = SseFramer([hide.event, binding().rewrite]).feed(event)
    assert b"secret_tool" not in out and ids_of(out) == [binding().seal(b"9")]


async def test_the_key_is_one_deployment_secret_for_every_instance(store) -> None:
    """Two gateway instances on one store bind alike (a client may resume through another instance)."""
    first, second = EventIds(store), EventIds(store)
    one = await first.binding("local:alice", "c", "alpha")
    other = await second.binding("local:alice", "c", "alpha")
    assert other.open(one.seal(b"3").decode()) == "3"
    assert one.key == bytes.fromhex(await store.load_or_create_secret(EVENT_ID_SECRET))


def dispatched(stream: bytes) -> tuple[list[tuple[str, str]], str]:
    """What a WHATWG EventSource does with a stream (§9.2.6, straight from the spec): each dispatched event as
    (last event id, data), and the last event id it would resume from at the end."""
    text = stream.decode("utf-8", errors="replace").removeprefix("\ufeff")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:-1]  # (an unended last line is discarded)
    events, data, id_buffer, last = [], "", "", ""
    for line in lines:
        if line == "":
            last = id_buffer
            if data:
                events.append((last, data.removesuffix("\n")))
            data = ""
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data += value + "\n"
        elif name == "id" and "\0" not in value:
            id_buffer = value
    return events, last


_eol = st.sampled_from([b"\n", b"\r\n", b"\r"])
_id_line = st.one_of(
    st.integers(0, 999).map(lambda n: b"id: %d" % n),
    st.integers(0, 999).map(lambda n: b"id:%d" % n),
    st.just(b"id: 1\x002"),
    st.just(b"id"),
    st.just(b"id: " + b"7" * 300),  # (too long to bind: an empty id)
)


@st.composite
def _streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    out = b""
    for _ in range(draw(st.integers(1, 6))):
        for line in draw(st.lists(st.one_of(_id_line, st.just(b": c"), st.just(b'data: {"a":1}')), max_size=4)):
            out += line + draw(_eol)
        out += b"\n" if out.endswith(b"\r") else draw(_eol)  # (a CR then an LF would be one line end)
    cuts = sorted(draw(st.sets(st.integers(0, len(out)), max_size=8)))
    return out, [out[a:b] for a, b in zip([0, *cuts], [*cuts, len(out)], strict=True)]


@pytest.mark.parametrize("mode", FRAMERS)
@settings(max_examples=300, deadline=None)
@given(stream=_streams())
@example(stream=(b"id: 0\rid: 1\x002\n\n", [b"id: 0\rid: 1\x002\n\n"]))
def test_a_client_resumes_from_the_sealed_form_of_the_id_it_would_have_resumed_from(
    mode: str, stream: tuple[bytes, list[bytes]]
) -> None:
    """Whatever the framing and chunking, the gateway's output dispatches the same events with each last event id
    sealed (an empty one stays empty): the binding reads ids exactly as a client does, in both framer modes."""
    whole, chunks = stream
    framer = FRAMERS[mode]()
    out = b"".join(framer.feed(chunk) for chunk in chunks) + framer.flush()
    events, last = dispatched(whole)

    def sealed(upstream_id: str) -> str:
        return binding().seal(upstream_id.encode()).decode()

    assert dispatched(out) == ([(sealed(i), d) for i, d in events], sealed(last))


def test_without_a_filter_a_line_of_any_size_streams_on_as_it_arrives() -> None:
    """Review 2, R2 regression: an event over MAX_EVENT_BYTES (a large tools/call result) ended the stream on
    routes without a list filter too; only `id` lines need reading there, so nothing else is held."""
    framer = id_lines_framer()
    big = b"A" * (MAX_EVENT_BYTES + 1)
    assert framer.feed(b"id: 1\r\ndata: " + big) == b"id: " + binding().seal(b"1") + b"\r\ndata: " + big
    assert framer.feed(big) == big  # (still the same line: on as it arrives)
    assert framer.feed(b"\n\n") + framer.flush() == b"\n\n"


def test_without_a_filter_an_id_line_is_held_only_up_to_the_id_bound() -> None:
    """An `id` line is the one line held; one too long to hold a bindable id goes on as an empty id."""
    framer = id_lines_framer()
    assert framer.feed(b"id: " + b"9" * 10 * MAX_ID_LINE) == b""
    assert framer.feed(b"9" * MAX_EVENT_BYTES) == b""
    assert framer.feed(b"\r\ndata: {}\r\n\r\n") == b"id\r\ndata: {}\r\n\r\n"
    dropped = id_lines_framer()  # (an id holding NUL becomes a comment with its own line end)
    assert dropped.feed(b"data: {}\nid: 1\x002\r") + dropped.feed(b"\n\n") == b"data: {}\n:\r\n\n"
    # found by the property below: dropping the line joined the CR before it and the LF after it into one line
    # end, and the event boundary (and the last event id it sets) was lost
    joined = id_lines_framer()
    out = joined.feed(b"id: 0\rid: 1\x002\n\n") + joined.flush()
    assert dispatched(out) == ([], binding().seal(b"0").decode())
