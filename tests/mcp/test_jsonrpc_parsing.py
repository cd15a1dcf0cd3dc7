"""JSON-RPC peeking for MCP routes, `gateway.mcp.jsonrpc` (JSON-RPC 2.0 §4, §6; MCP RS-14 mirrored headers)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.mcp.jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    LISTS,
    MAX_BATCH_MESSAGES,
    MAX_DISTINCT_TOOLS,
    MAX_SUBSCRIPTIONS,
    MAX_TARGET_BYTES,
    MAX_TARGETS,
    PARSE_ERROR,
    TARGETS,
    BodyError,
    Message,
    header_mismatch,
    parse_messages,
    peek_id,
    read_messages,
)
from gateway.mcp.strict_json import MAX_DEPTH


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def request(request_id: Any, method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


# -- parse_messages -------------------------------------------------------------------------------------------


def test_a_single_request_parses_to_one_message() -> None:
    """JSON-RPC 2.0 §4: a request object; a method that touches nothing by name has no target."""
    assert parse_messages(body(request(7, "tools/list"))) == [Message(7, "tools/list", None)]


def test_a_string_id_is_kept_as_a_string() -> None:
    """JSON-RPC 2.0 §4: id is a String or Number; "7" and 7 are different ids."""
    assert parse_messages(body(request("7", "ping"))) == [Message("7", "ping", None)]


def test_a_batch_parses_to_one_message_per_request_in_order() -> None:
    """JSON-RPC 2.0 §6: an array of requests; order is kept."""
    messages = parse_messages(body([request(1, "tools/list"), request("b", "tools/call", {"name": "add"})]))
    assert messages == [Message(1, "tools/list", None), Message("b", "tools/call", ("tools", "add"))]


@pytest.mark.parametrize(
    "message",
    [
        pytest.param({"jsonrpc": "2.0", "method": "notifications/initialized"}, id="no-id"),
        pytest.param({"jsonrpc": "2.0", "id": None, "method": "notifications/cancelled"}, id="null-id"),
    ],
)
def test_a_notification_parses_with_id_none(message: dict[str, Any]) -> None:
    """JSON-RPC 2.0 §4.1: a request without an id is a notification (null id: no id we could echo either)."""
    assert [m.id for m in parse_messages(body(message)) or []] == [None]


def test_a_number_id_written_with_a_fraction_part_is_still_an_id() -> None:
    """JSON-RPC 2.0 §4: the id is a String, Number or Null, and `1.0` is a Number. Pinned gap: treating it as
    "no id" means mcp_policy.inspect tracks no tools/list request, so an upstream that echoes the id (any server
    whose JSON numbers are doubles, e.g. the TypeScript SDK) gets its tools/list result relayed unfiltered."""
    messages = parse_messages(body(request(1.0, "tools/list")))
    assert messages is not None and len(messages) == 1
    assert messages[0].id == 1


def test_responses_and_junk_in_a_batch_are_skipped() -> None:
    """Responses (to server-initiated requests) and non-request items pass through untouched: not policy's."""
    batch = [
        {"jsonrpc": "2.0", "id": 9, "result": {}},
        {"jsonrpc": "2.0", "id": 10, "error": {"code": -1, "message": "no"}},
        42,
        "tools/call",
        None,
        [request(1, "tools/call", {"name": "nested"})],
        {"jsonrpc": "2.0", "id": 3, "method": 5},
        request(4, "tools/call", {"name": "kept"}),
    ]
    assert parse_messages(body(batch)) == [Message(4, "tools/call", ("tools", "kept"))]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"not json", id="text"),
        pytest.param(b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"', id="truncated"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"", id="empty"),
    ],
)
def test_a_body_that_is_not_json_parses_to_none(raw: bytes) -> None:
    """parse_messages docstring: None when the body is not JSON-RPC (left to the upstream)."""
    assert parse_messages(raw) is None


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16", "utf-32"])
def test_a_body_in_another_encoding_is_not_read_as_json(encoding: str) -> None:
    """Review 2, R4 regression: json.loads(bytes) takes UTF-16 and UTF-32, but the depth bound read the body as
    UTF-8; every reading is now of one strict UTF-8 text (RFC 8259 §8.1), so such a body is not JSON here."""
    deep = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"k":"\\"","d":' + "[" * 900 + "]" * 900 + "}}"
    assert parse_messages(deep.encode(encoding)) is None
    assert peek_id(deep.encode(encoding)) is None
    assert peek_id(b'{"jsonrpc":"2.0","id":7}') == 7


def test_a_pathologically_deep_body_is_left_to_the_upstream_rather_than_raising() -> None:
    """parse_messages docstring: a body we cannot read is the upstream's to refuse. Pinned gap: 100k nested
    arrays (well under the 4 MiB body limit) make json.loads raise RecursionError, which is not a ValueError."""
    deep = b"[" * 100_000 + b"]" * 100_000
    assert parse_messages(deep) in (None, [])


@pytest.mark.parametrize(
    ("method", "params", "target"),
    [
        pytest.param("tools/call", {"name": "add", "arguments": {"a": 1}}, ("tools", "add"), id="tools-call"),
        pytest.param(
            "resources/read",
            {"uri": "file:///secret/a.txt"},
            ("resources", "file:///secret/a.txt"),
            id="resources-read",
        ),
        pytest.param("resources/subscribe", {"uri": "file:///x"}, ("resources", "file:///x"), id="subscribe"),
        pytest.param("resources/unsubscribe", {"uri": "file:///x"}, ("resources", "file:///x"), id="unsubscribe"),
        pytest.param("prompts/get", {"name": "greeting"}, ("prompts", "greeting"), id="prompts-get"),
        pytest.param("tools/call", {"name": 5}, ("tools", ""), id="name-not-a-string"),
        pytest.param("tools/call", {}, ("tools", ""), id="name-missing"),
        pytest.param("tools/call", ["add"], ("tools", ""), id="params-not-an-object"),
        pytest.param("resources/read", {"name": "file:///x"}, ("resources", ""), id="uri-is-the-field"),
        pytest.param("tools/list", {"cursor": "c"}, None, id="list-has-no-target"),
        pytest.param("initialize", {"name": "x"}, None, id="other-method"),
    ],
)
def test_the_target_is_the_kind_and_the_name_or_uri_a_call_touches(
    method: str, params: Any, target: tuple[str, str] | None
) -> None:
    """TARGETS: tools/call and prompts/get by name, resources/* by URI; a malformed one targets "" (policy then
    decides on the empty name, so default deny still refuses it)."""
    messages = parse_messages(body(request(1, method, params)))
    assert messages is not None
    assert messages[0].target == target


def test_tools_call_arguments_are_carried_along() -> None:
    """Message.arguments: the audit log's digest of tools/call arguments needs them."""
    messages = parse_messages(body(request(1, "tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}})))
    assert messages is not None
    assert messages[0].arguments == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("method", "kind", "field", "key"),
    [
        ("tools/list", "tools", "tools", "name"),
        ("prompts/list", "prompts", "prompts", "name"),
        ("resources/list", "resources", "resources", "uri"),
        ("resources/templates/list", "resources", "resourceTemplates", "uriTemplate"),
    ],
)
def test_each_list_method_names_its_kind_result_field_and_item_key(
    method: str, kind: str, field: str, key: str
) -> None:
    """MCP schema: ListToolsResult.tools[].name, ListPromptsResult.prompts[].name, ListResourcesResult.resources[].uri,
    ListResourceTemplatesResult.resourceTemplates[].uriTemplate."""
    assert LISTS[method] == (kind, field, key)


def test_every_targeted_kind_has_a_list_that_is_filtered_by_the_same_policy() -> None:
    """Whatever policy refuses to call must also be hidden from some list: the kinds line up."""
    assert {kind for kind, _ in TARGETS.values()} == {kind for kind, _, _ in LISTS.values()}


# -- header_mismatch (MCP RS-14) ------------------------------------------------------------------------------

CALL = [Message(1, "tools/call", ("tools", "add"))]


@pytest.mark.parametrize(
    ("messages", "method_header", "name_header"),
    [
        pytest.param(CALL, None, None, id="no-headers"),
        pytest.param([], None, None, id="no-headers-no-messages"),
        pytest.param(CALL * 2, None, None, id="no-headers-batch"),
        pytest.param(CALL, "tools/call", "add", id="both-match"),
        pytest.param(CALL, "tools/call", None, id="method-only"),
        pytest.param(CALL, None, "add", id="name-only"),
        pytest.param(
            [Message(1, "resources/read", ("resources", "file:///a"))], "resources/read", "file:///a", id="resource-uri"
        ),
        pytest.param([Message(1, "tools/list", None)], "tools/list", None, id="list-method"),
    ],
)
def test_absent_or_matching_mirrored_headers_are_no_mismatch(
    messages: list[Message], method_header: str | None, name_header: str | None
) -> None:
    """MCP RS-14: the Mcp-Method / Mcp-Name headers, when sent, must equal the body's method and name."""
    assert header_mismatch(messages, method_header, name_header) is None


@pytest.mark.parametrize(
    ("messages", "method_header", "name_header"),
    [
        pytest.param(CALL, "tools/list", None, id="wrong-method"),
        pytest.param(CALL, "tools/call", "delete", id="wrong-name"),
        pytest.param(CALL, "Tools/Call", "add", id="method-is-case-sensitive"),
        pytest.param(CALL, None, "ADD", id="name-is-case-sensitive"),
        pytest.param([Message(1, "tools/list", None)], "tools/list", "add", id="name-for-untargeted-method"),
        pytest.param(CALL * 2, "tools/call", "add", id="batch-with-both"),
        pytest.param(CALL * 2, "tools/call", None, id="batch-with-method"),
        pytest.param([], "tools/call", None, id="no-messages"),
    ],
)
def test_mirrored_headers_that_disagree_with_the_body_give_a_reason(
    messages: list[Message], method_header: str | None, name_header: str | None
) -> None:
    """MCP RS-14: a mismatch (or headers on a batch, which has no single method) is refused with a reason."""
    reason = header_mismatch(messages, method_header, name_header)
    assert isinstance(reason, str) and reason


# -- peek_id --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b'{"jsonrpc": "2.0", "id": "abc", "method": "ping"}', "abc", id="string"),
        pytest.param(b'{"jsonrpc": "2.0", "id": 42, "method": "ping"}', 42, id="int"),
        pytest.param(b'{"jsonrpc": "2.0", "id": 0, "method": "ping"}', 0, id="zero"),
        pytest.param(b'  \n{"id": -3}', -3, id="leading-whitespace"),
        pytest.param(b'{"jsonrpc": "2.0", "id": true, "method": "ping"}', None, id="bool"),
        pytest.param(b'{"jsonrpc": "2.0", "id": null, "method": "ping"}', None, id="null"),
        pytest.param(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}', None, id="notification"),
        pytest.param(b'{"id": {"nested": 1}}', None, id="object"),
        pytest.param(b'{"id": [1]}', None, id="array"),
        pytest.param(b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', None, id="batch"),
        pytest.param(b'{"id": 1', None, id="truncated"),
        pytest.param(b"not json", None, id="not-json"),
        pytest.param(b"", None, id="empty"),
    ],
)
def test_peek_id_reads_the_id_of_a_single_request_only(raw: bytes, expected: Any) -> None:
    """JSON-RPC 2.0 §5: an error response echoes the request's id when it can be read, else null."""
    assert peek_id(raw) == expected
    assert type(peek_id(raw)) is type(expected)


def test_peek_id_of_a_pathologically_deep_body_is_none_rather_than_raising() -> None:
    """peek_id docstring: None when unreadable. Pinned gap: deep nesting raises RecursionError, not ValueError."""
    deep = b'{"id": 1, "params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert peek_id(deep) is None


# -- read_messages: strict, bounded (findings 5 and 7) --------------------------------------------------------


def call(request_id: Any, name: str = "add") -> dict[str, Any]:
    return request(request_id, "tools/call", {"name": name, "arguments": {}})


def refused(raw: bytes) -> BodyError:
    with pytest.raises(BodyError) as raised:
        read_messages(raw)
    return raised.value


def test_a_batch_of_up_to_max_batch_messages_is_read() -> None:
    """MAX_BATCH_MESSAGES = 100 per POST, the TypeScript SDK's cap."""
    assert MAX_BATCH_MESSAGES == 100
    assert len(read_messages(body([call(i) for i in range(MAX_BATCH_MESSAGES)]))) == MAX_BATCH_MESSAGES


@pytest.mark.parametrize("size", [MAX_BATCH_MESSAGES + 1, 50_000])
def test_a_larger_batch_is_an_invalid_request(size: int) -> None:
    """Finding 5: 50,000 tools/call in one POST made one rate-limit bucket each in one Lua script."""
    assert refused(body([call(i, f"tool{i}") for i in range(size)])).code == INVALID_REQUEST


def listen(request_id: Any, uris: list[str]) -> dict[str, Any]:
    return request(request_id, "subscriptions/listen", {"notifications": {"resourceSubscriptions": uris}})


def test_one_post_names_at_most_max_targets_things_for_policy_to_judge() -> None:
    """Security review 2, R1: what policy costs is names x readings x rules, so a POST may name MAX_TARGETS tools,
    prompts or resources in all (a batch of 100 subscriptions/listen named 10,000 URIs)."""
    uris = [f"file:///r/{i}" for i in range(MAX_SUBSCRIPTIONS)]
    assert len(read_messages(body(listen(1, uris[:MAX_TARGETS])))[0].targets) == MAX_TARGETS
    error = refused(body([listen(1, uris[: MAX_TARGETS - 1]), call(2), call(3)]))
    assert error.code == INVALID_REQUEST and "at most" in error.message
    assert refused(body([listen(i, uris) for i in range(100)])).code == INVALID_REQUEST


def test_one_post_names_at_most_max_target_bytes_of_names_and_uris() -> None:
    """Security review 2, R1: each name or URI is read in several forms (a non-ASCII character as its percent-encoded
    octets) against every rule, so their UTF-8 is bounded in all; a single refused message echoes its id."""
    near = "file:///r/" + "a" * (MAX_TARGET_BYTES // 2 - 12)  # two of them: 2 bytes under the bound
    assert len(read_messages(body(listen(1, [near + "1", near + "2"])))[0].targets) == 2
    error = refused(body(listen("big", [near + "1", near + "2", "file:///r/x"])))
    assert error.code == INVALID_REQUEST and error.request_id == "big"
    wide = "file:///r/" + "\u00e4" * (MAX_TARGET_BYTES // 2)  # 2 octets each: over the bound in fewer characters
    assert refused(
        f'{{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{{"uri":"{wide}"}}}}'.encode()
    ).code == (INVALID_REQUEST)


def test_an_empty_batch_is_an_invalid_request() -> None:
    """JSON-RPC 2.0 §6: an empty array is an invalid request."""
    assert refused(b"[]").code == INVALID_REQUEST


def test_a_batch_may_call_at_most_max_distinct_tools_distinct_tools() -> None:
    """Finding 5: a bounded number of distinct rate-limit buckets per request; calling one tool often is fine."""
    assert len(read_messages(body([call(i, f"t{i}") for i in range(MAX_DISTINCT_TOOLS)]))) == MAX_DISTINCT_TOOLS
    assert len(read_messages(body([call(i, "same") for i in range(50)]))) == 50
    assert refused(body([call(i, f"t{i}") for i in range(MAX_DISTINCT_TOOLS + 1)])).code == INVALID_REQUEST


@pytest.mark.parametrize(
    "ids",
    [
        pytest.param([7, 7], id="same-number"),
        pytest.param([1, 1.0], id="one-and-one-point-zero"),
        pytest.param(["a", "b", "a"], id="same-string"),
    ],
)
def test_a_batch_reusing_a_request_id_is_an_invalid_request(ids: list[Any]) -> None:
    """Finding 7: [{"id":7,"method":"tools/list"},{"id":7,"method":"prompts/list"}] made the old filter mix up
    which answer was which."""
    methods = ["tools/list", "prompts/list", "resources/list"]
    assert refused(body([request(i, m) for i, m in zip(ids, methods, strict=False)])).code == INVALID_REQUEST


def test_distinct_ids_notifications_and_responses_may_share_a_batch() -> None:
    """ "1" and 1 are different ids; notifications have none; a response's id is the server's, not ours."""
    batch = [
        request(1, "tools/list"),
        request("1", "prompts/list"),
        {"jsonrpc": "2.0", "method": "notifications/x"},
        {"jsonrpc": "2.0", "method": "notifications/y"},
        {"jsonrpc": "2.0", "id": 1, "result": {}},
    ]
    assert [m.id for m in read_messages(body(batch))] == [1, "1", None, None]


def nested(levels: int) -> Any:
    value: Any = "x"
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


def test_a_body_nested_to_max_depth_is_read_and_one_level_deeper_is_not() -> None:
    """Security review 2, R4d: nesting is bounded explicitly (RFC 8259 §9), not by the interpreter's recursion
    limit: a value nested ~900 deep parses, and whatever walks it next (digests, audit lines, filters) recurses.
    Strings that look like brackets do not count; the lenient audit reader gives up on such a body too."""
    within = body([call(1) | {"params": {"name": "add", "arguments": nested(MAX_DEPTH - 3) | {"s": "[[[[[[[["}}}])
    assert read_messages(within)[0].arguments["s"] == "[[[[[[[["
    deeper = body([call(1) | {"params": {"name": "add", "arguments": nested(MAX_DEPTH - 2)}}])  # (3 levels above)
    assert refused(deeper).code == PARSE_ERROR
    assert parse_messages(body(call(1) | {"params": {"name": "add", "arguments": nested(900)}})) is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_delete","name":"add"}}',
            id="duplicate-key",
        ),
        pytest.param(b'{"jsonrpc":"2.0","id":NaN,"method":"ping"}', id="nan"),
        pytest.param(json.dumps(request(1, "ping")).encode("utf-16"), id="utf-16"),
        pytest.param(b"\xef\xbb\xbf" + json.dumps(request(1, "ping")).encode(), id="bom"),
        pytest.param(b"\xff" + json.dumps(request(1, "ping")).encode(), id="not-utf8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="pathologically-deep"),
        pytest.param(body(call(1) | {"params": {"name": "add", "arguments": nested(MAX_DEPTH)}}), id="deeper-than-max"),
        pytest.param(b'{"jsonrpc": "2.0", "id": 1', id="truncated"),
    ],
)
def test_a_body_parsers_could_read_differently_is_a_parse_error(raw: bytes) -> None:
    """What the gateway authorizes must be what the upstream runs: with two `name` keys Python reads the last,
    other parsers the first; json.loads(bytes) would also accept UTF-16."""
    assert refused(raw).code == PARSE_ERROR


@pytest.mark.parametrize(
    ("item", "code"),
    [
        pytest.param(42, INVALID_REQUEST, id="not-an-object"),
        pytest.param({"jsonrpc": "2.0", "id": 1}, INVALID_REQUEST, id="no-method"),
        pytest.param({"jsonrpc": "2.0", "id": True, "method": "ping"}, INVALID_REQUEST, id="bool-id"),
        pytest.param(request(1, "Tools/Call", {"name": "x"}), INVALID_REQUEST, id="method-in-another-case"),
        pytest.param(request(1, "tools/call ", {"name": "x"}), INVALID_REQUEST, id="method-with-a-space"),
        pytest.param(request(1, "tools/call", {"name": 5}), INVALID_PARAMS, id="name-not-a-string"),
        pytest.param(request(1, "tools/call", {}), INVALID_PARAMS, id="name-missing"),
        pytest.param(request(1, "tools/call", ["add"]), INVALID_PARAMS, id="params-not-an-object"),
        pytest.param(request(1, "resources/read", {"uri": ["file:///x"]}), INVALID_PARAMS, id="uri-not-a-string"),
        pytest.param(
            request(1, "completion/complete", {"ref": {"type": "ref/other"}}),
            INVALID_PARAMS,
            id="unknown-completion-ref",
        ),
        pytest.param(
            request(1, "subscriptions/listen", {"notifications": {"resourceSubscriptions": "file:///x"}}),
            INVALID_PARAMS,
            id="subscriptions-not-a-list",
        ),
        pytest.param(
            request(
                1,
                "subscriptions/listen",
                {"notifications": {"resourceSubscriptions": [f"file:///{i}" for i in range(MAX_SUBSCRIPTIONS + 1)]}},
            ),
            INVALID_PARAMS,
            id="too-many-subscriptions",
        ),
    ],
)
def test_a_message_policy_cannot_judge_is_refused(item: Any, code: int) -> None:
    """Fail closed: a call whose target the gateway cannot name is not forwarded for the upstream to guess at."""
    assert refused(body(item)).code == code


@pytest.mark.parametrize(
    ("params", "targets"),
    [
        pytest.param(
            {"ref": {"type": "ref/prompt", "name": "code_review"}, "argument": {"name": "a", "value": ""}},
            (("prompts", "code_review"),),
            id="completion-of-a-prompt",
        ),
        pytest.param(
            {"ref": {"type": "ref/resource", "uri": "file:///{path}"}, "argument": {"name": "p", "value": ""}},
            (("resources", "file:///{path}"),),
            id="completion-of-a-template",
        ),
    ],
)
def test_completion_targets_the_prompt_or_template_it_completes(params: dict[str, Any], targets: tuple) -> None:
    """MCP server/utilities/completion: completing an argument of something is subject to its policy."""
    assert read_messages(body(request(1, "completion/complete", params)))[0].targets == targets


def test_subscriptions_listen_targets_every_resource_it_subscribes_to() -> None:
    """MCP 2026-07-28 basic/patterns/subscriptions: resourceSubscriptions replaces resources/subscribe."""
    message = read_messages(
        body(
            request(
                1,
                "subscriptions/listen",
                {"notifications": {"toolsListChanged": True, "resourceSubscriptions": ["file:///a", "file:///b"]}},
            )
        )
    )[0]
    assert message.targets == (("resources", "file:///a"), ("resources", "file:///b"))


def test_an_mcp_name_header_in_base64_sentinel_form_is_decoded_before_comparing() -> None:
    """MCP 2026-07-28 Streamable HTTP "Value Encoding": `=?base64?…?=` carries a non-ASCII name."""
    messages = [Message(1, "tools/call", ("tools", "天気"))]
    assert header_mismatch(messages, "tools/call", "=?base64?5aSp5rCX?=") is None
    assert header_mismatch(messages, "tools/call", "=?base64?not base64?=") is not None
