"""Fuzzing the protected MCP endpoint: JSON-RPC bodies (single, batch, junk), the MCP headers, bearer headers
and the GET/DELETE stream requests. The gateway answers a JSON-RPC error of its own (with `WWW-Authenticate` on
401) or relays the upstream's answer; it never fails with a 5xx or a trace."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.shapes import answer, assert_mcp
from tests.fuzz.strategies import json_bytes, json_value, latin1_header, raw_json, text
from tests.support.tokens import issue

METHODS = [
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "ping",
    "initialize",
    "notifications/initialized",
    "server/discover",
    "logging/setLevel",
]
TOOLS = ["add", "echo_headers", "admin_reset", "ADMIN_reset", "admin\uff3freset", "hidden", ""]
URIS = [
    "file:///public/a.txt",
    "file:///secret/keys.txt",
    "file:///%73ecret/keys.txt",
    "file:///secret%2Fkeys.txt",
    "file:///public/../secret/keys.txt",
    "FILE:///secret/x",
    "file:///secret/\x00",
    "%",
    "file://%zz/",
]
request_id = st.one_of(
    st.integers(min_value=-(2**60), max_value=2**60),
    text,
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def params(draw: st.DrawFn, method: str) -> Any:
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        return draw(json_value)  # anything at all
    value: dict[str, Any] = {}
    if method in ("tools/call", "prompts/get"):
        value["name"] = draw(st.one_of(st.sampled_from(TOOLS), text, json_value))
        value["arguments"] = draw(
            st.one_of(st.fixed_dictionaries({"a": st.integers(), "b": st.integers()}), json_value)
        )
    elif method.startswith("resources/"):
        value["uri"] = draw(st.one_of(st.sampled_from(URIS), text))
    elif method == "completion/complete":
        value["ref"] = draw(
            st.one_of(
                st.fixed_dictionaries({"type": st.just("ref/prompt"), "name": st.sampled_from(TOOLS)}),
                st.fixed_dictionaries({"type": st.just("ref/resource"), "uri": st.sampled_from(URIS)}),
                json_value,
            )
        )
        value["argument"] = {"name": "x", "value": draw(text)}
    return value


@st.composite
def message(draw: st.DrawFn) -> Any:
    method = draw(st.one_of(st.sampled_from(METHODS), text))
    if method == "slow_progress":
        method = "ping"
    item: dict[str, Any] = {"jsonrpc": draw(st.sampled_from(["2.0", "2.0", "1.0", None])), "method": method}
    if draw(st.booleans()):
        item["id"] = draw(request_id)
    if draw(st.booleans()):
        item["params"] = draw(params(method))
    return item


@st.composite
def mcp_post(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    kind = draw(st.sampled_from(["single", "single", "batch", "raw", "json"]))
    if kind == "single":
        decoded = draw(message())
    elif kind == "batch":
        decoded = draw(st.lists(message(), max_size=6))
        if decoded and draw(st.booleans()):
            decoded.append(decoded[0])  # a duplicate id
    body = {"single": None, "batch": None, "raw": draw(raw_json), "json": json_bytes(draw(json_value))}[kind]
    if body is None:
        body = json_bytes(decoded)
    headers = {
        "Content-Type": draw(st.sampled_from(["application/json", "text/plain", "application/json; x=1"])),
        "Accept": draw(st.sampled_from(["application/json, text/event-stream", "*/*", "text/html"])),
    }
    for name in ("Mcp-Method", "Mcp-Name", "MCP-Protocol-Version", "Mcp-Session-Id", "Mcp_Method", "Mcp-Param-Foo"):
        if draw(st.integers(min_value=0, max_value=3)) == 0:
            headers[name] = draw(
                st.one_of(st.sampled_from(METHODS + TOOLS + ["2026-07-28", "2025-11-25"]), latin1_header)
            )
    return body, headers


@given(request=mcp_post(), authorized=st.sampled_from([True, True, True, False]))
async def test_mcp_posts_get_a_jsonrpc_answer_whatever_the_body(
    fuzz_gateway: Any, fuzz_store: Any, aiohttp_client: Any, request: Any, authorized: bool
) -> None:
    client = await aiohttp_client(fuzz_gateway)
    body, headers = request
    if authorized:
        headers["Authorization"] = "Bearer " + await issue(fuzz_store, fuzz_gateway, "fz", scopes=("fz:read",))
    reply = await answer(await client.post("/fz/mcp", data=body, headers=headers))
    assert_mcp(reply, f"POST /fz/mcp {headers} {body[:300]!r}")


@given(
    method=st.sampled_from(["GET", "DELETE", "OPTIONS", "PUT", "PATCH"]),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "Authorization",
                "Origin",
                "Mcp-Session-Id",
                "Last-Event-ID",
                "Accept",
                "MCP-Protocol-Version",
                "Cookie",
                "X-Request-Id",
                "Access-Control-Request-Method",
                "Host",
            ]
        ),
        latin1_header,
        max_size=5,
    ),
    bearer=st.booleans(),
    path=st.sampled_from(["/fz/mcp", "/fz/mcp/", "/fz/mcp?access_token=x"]),
)
async def test_mcp_stream_requests_get_a_jsonrpc_answer_whatever_the_headers(
    fuzz_gateway: Any,
    fuzz_store: Any,
    aiohttp_client: Any,
    method: str,
    headers: dict[str, str],
    bearer: bool,
    path: str,
) -> None:
    client = await aiohttp_client(fuzz_gateway)
    if bearer and "Authorization" not in headers:
        headers["Authorization"] = "Bearer " + await issue(fuzz_store, fuzz_gateway, "fz")
    headers.setdefault("Accept", "text/event-stream")
    response = await client.request(method, path, headers=headers)
    if response.status == 200 and response.content_type == "text/event-stream":
        response.close()  # an open stream: the gateway accepted it; nothing to read to its end
        return
    reply = await answer(response)
    assert_mcp(reply, f"{method} {path} {headers}")
