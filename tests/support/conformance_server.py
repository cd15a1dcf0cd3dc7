"""An MCP server for the official conformance suite's server scenarios (MCP 2025-11-25 and 2026-07-28).

    python -m tests.support.conformance_server --port N

Serves Streamable HTTP at ``http://127.0.0.1:N/mcp``, bound to loopback only, so the SDK's DNS-rebinding guard
(Host/Origin allow-list) is on. It carries the tools, resources and prompts the scenarios name (`conformance list`;
each scenario's description says what it calls). One endpoint serves both eras: a 2025-11-25 client initializes a
session and is asked for sampling, elicitation and roots mid-call, with an in-memory event store so a closed SSE
stream resumes (SEP-1699); a 2026-07-28 client sends self-contained requests (SEP-2575) and gets
``input_required`` results (SEP-2322) whose ``requestState`` the SDK seals with a per-process key.
Nothing it prints is secret.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import itertools
import json
import signal
import struct
import warnings
import wave
import zlib
from typing import Annotated, Any

import uvicorn
from mcp.server.caching import CacheHint
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, Image, MCPServer, Resolve, Sample
from mcp.server.mcpserver.prompts.base import Message, UserMessage
from mcp.server.mcpserver.resolve import Elicit, ElicitationResult
from mcp.server.mcpserver.tools import Tool
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.types import (
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    AudioContent,
    CallToolResult,
    ClientCapabilities,
    Completion,
    CompletionArgument,
    CompletionContext,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    InputRequest,
    InputRequiredResult,
    ListRootsRequest,
    ListRootsResult,
    MissingRequiredClientCapabilityErrorData,
    PromptReference,
    ResourceTemplateReference,
    SamplingCapability,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
    UnsubscribeRequestParams,
)
from pydantic import BaseModel, Field

# Logging, sampling and roots are deprecated in 2026-07-28 (SEP-2577), but the suite still exercises them.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

# The one tool whose input schema is published as written, not derived from its signature (SEP-1613, SEP-2106);
# MCPServer takes such a Tool only at construction.
JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


def json_schema_2020_12_tool() -> str:
    return "ok"


SCHEMA_TOOL = Tool.from_function(json_schema_2020_12_tool, description="Tool with JSON Schema 2020-12 features")
SCHEMA_TOOL = SCHEMA_TOOL.model_copy(update={"parameters": JSON_SCHEMA_2020_12})

CACHE_HINT = CacheHint(ttl_ms=60_000, scope="public")  # SEP-2549: every cacheable list and read carries one
server = MCPServer(
    name="mcp-auth-gateway-conformance",
    version="1.0.0",
    log_level="WARNING",
    tools=[SCHEMA_TOOL],
    cache_hints={
        method: CACHE_HINT
        for method in ("tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read")
    },
)


def build_png() -> bytes:
    """A 1x1 red pixel PNG (8-bit RGB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte, then R G B
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def build_wav() -> bytes:
    """A tenth of a second of 8 kHz mono silence."""
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x00" * 800)
    return out.getvalue()


PNG = build_png()
PNG_B64 = base64.b64encode(PNG).decode()
WAV_B64 = base64.b64encode(build_wav()).decode()
MIXED_JSON = json.dumps({"test": "data", "value": 123}, separators=(",", ":"))


# Content tools (tools-call-*)


@server.tool(description="Returns a simple text response.")
def test_simple_text() -> str:
    return "This is a simple text response for testing."


@server.tool(description="Returns a PNG image.")
def test_image_content() -> Image:
    return Image(data=PNG, format="png")


@server.tool(description="Returns a WAV clip.")
def test_audio_content() -> AudioContent:
    return AudioContent(type="audio", data=WAV_B64, mime_type="audio/wav")


@server.tool(description="Returns an embedded text resource.")
def test_embedded_resource() -> EmbeddedResource:
    resource = TextResourceContents(
        uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
    )
    return EmbeddedResource(type="resource", resource=resource)


@server.tool(description="Returns text, an image and an embedded resource.")
def test_multiple_content_types() -> CallToolResult:
    resource = TextResourceContents(uri="test://mixed-content-resource", mime_type="application/json", text=MIXED_JSON)
    return CallToolResult(
        content=[
            TextContent(type="text", text="Multiple content types test:"),
            ImageContent(type="image", data=PNG_B64, mime_type="image/png"),
            EmbeddedResource(type="resource", resource=resource),
        ]
    )


@server.tool(description="Always fails with an error result.")
def test_error_handling() -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text="This tool intentionally returns an error for testing")], is_error=True
    )


@server.tool(description="Reports progress 0, 50 and 100 out of 100.")
async def test_tool_with_progress(ctx: Context) -> str:
    for step in (0, 50, 100):
        await ctx.report_progress(step, 100)
        if step < 100:
            await asyncio.sleep(0.05)
    return "Progress reporting completed"


async def send_three_logs(ctx: Context) -> str:
    """Three info-level log notifications; a 2026-07-28 request gets them only if its `_meta` asks for a logLevel."""
    for message in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        await ctx.info(message)
        await asyncio.sleep(0.05)
    return "Logging completed"


server.add_tool(send_three_logs, name="test_tool_with_logging", description="Sends three log messages.")
server.add_tool(send_three_logs, name="test_logging_tool", description="Sends three log messages.")


@server.tool(description="Closes its SSE stream midway; the client resumes with Last-Event-ID (SEP-1699).")
async def test_reconnection(ctx: Context) -> str:
    await asyncio.sleep(0.1)
    await ctx.close_sse_stream()
    await asyncio.sleep(0.3)
    return "Reconnection test completed"


@server.tool(description="Echoes the region it was called for; the region is mirrored in Mcp-Param-Region.")
def test_param_header(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
    return f"region={region}"


# Server-to-client requests: mid-call before 2026-07-28, input_required from then on (the SDK's resolvers pick)


class UserInfo(BaseModel):
    username: str = Field(description="User's response")
    email: str = Field(description="User's email address")


def ask_user(message: str) -> Elicit[UserInfo]:
    return Elicit(message, UserInfo)


def ask_llm(prompt: str) -> Sample:
    return Sample([SamplingMessage(role="user", content=TextContent(type="text", text=prompt))], max_tokens=100)


@server.tool(description="Asks the user for a username and email.")
def test_elicitation(message: str, answer: Annotated[ElicitationResult[UserInfo], Resolve(ask_user)]) -> str:
    content = answer.data.model_dump() if answer.action == "accept" else None
    return f"User response: action={answer.action}, content={json.dumps(content)}"


@server.tool(description="Asks the client's LLM to answer a prompt.")
def test_sampling(prompt: str, answer: Annotated[CreateMessageResult, Resolve(ask_llm)]) -> str:
    text = answer.content.text if isinstance(answer.content, TextContent) else str(answer.content)
    return f"LLM response: {text}"


class Confirmation(BaseModel):
    confirmed: bool = Field(description="Whether to go on")


def ask_confirmation() -> Elicit[Confirmation]:
    return Elicit("Please confirm to continue", Confirmation)


@server.tool(description="Asks the user to confirm before answering.")
def test_streaming_elicitation(answer: Annotated[ElicitationResult[Confirmation], Resolve(ask_confirmation)]) -> str:
    return f"Elicitation completed: action={answer.action}"


SEP1034_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "default": "John Doe"},
        "age": {"type": "integer", "default": 30},
        "score": {"type": "number", "default": 95.5},
        "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "default": True},
    },
}


def titled(*titles: str) -> list[dict[str, str]]:
    """SEP-1330 titled enum options: value1, value2, ... each with its title."""
    return [{"const": f"value{number}", "title": title} for number, title in enumerate(titles, 1)]


SEP1330_SCHEMA = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {"type": "string", "oneOf": titled("First Option", "Second Option", "Third Option")},
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {
            "type": "array",
            "items": {"anyOf": titled("First Choice", "Second Choice", "Third Choice")},
        },
    },
}


async def elicit_schema(ctx: Context, message: str, schema: dict[str, Any]) -> str:
    """Elicit with a hand-written schema (2025-11-25 sessions only): the SEP-1034/1330 shapes are the point."""
    result = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    return f"Elicitation completed: action={result.action}, content={json.dumps(result.content)}"


@server.tool(description="Elicits a form whose fields all have defaults (SEP-1034).")
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    return await elicit_schema(ctx, "Please review your details", SEP1034_SCHEMA)


@server.tool(description="Elicits a form with every enum variant (SEP-1330).")
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    return await elicit_schema(ctx, "Please pick your options", SEP1330_SCHEMA)


@server.tool(description="Needs the client's sampling capability (SEP-2575).")
def test_missing_capability(ctx: Context) -> str:
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.sampling is None:
        required = ClientCapabilities(sampling=SamplingCapability())
        raise MCPError(
            code=MISSING_REQUIRED_CLIENT_CAPABILITY,
            message="This tool needs the client's sampling capability",
            data=MissingRequiredClientCapabilityErrorData(required_capabilities=required).model_dump(
                by_alias=True, mode="json", exclude_none=True
            ),
        )
    return "sampling capability declared"


# Hand-driven input_required flows (SEP-2322): the scenarios name the inputRequests keys and the requestState rounds


def build_form(message: str, properties: dict[str, Any]) -> ElicitRequest:
    schema = {"type": "object", "properties": properties, "required": list(properties)}
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def build_sampling(prompt: str, max_tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=prompt))
    return CreateMessageRequest(params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens))


ASK_NAME = build_form("What is your name?", {"name": {"type": "string"}})
ASK_CAPITAL = build_sampling("What is the capital of France?", 100)
ASK_GREETING = build_sampling("Generate a greeting", 50)
ASK_ROOTS = ListRootsRequest()
ASK_OK = build_form("Please confirm", {"ok": {"type": "boolean"}})


def form_answer(ctx: Context, key: str) -> dict[str, Any] | None:
    """The content of an accepted elicitation answered under `key`, or None."""
    answer = (ctx.input_responses or {}).get(key)
    if isinstance(answer, ElicitResult) and answer.action == "accept" and answer.content is not None:
        return dict(answer.content)
    return None


def sample_answer(ctx: Context, key: str) -> str | None:
    answer = (ctx.input_responses or {}).get(key)
    if isinstance(answer, CreateMessageResult):
        return answer.content.text if isinstance(answer.content, TextContent) else "(non-text sample)"
    return None


def roots_answer(ctx: Context, key: str) -> list[str] | None:
    answer = (ctx.input_responses or {}).get(key)
    return [str(root.uri) for root in answer.roots] if isinstance(answer, ListRootsResult) else None


def input_required(requests: dict[str, InputRequest], state: str | None = None) -> InputRequiredResult:
    return InputRequiredResult(input_requests=requests, request_state=state)


def text_result(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)])


@server.tool(description="Asks for the user's name, then greets them.")
def test_input_required_result_elicitation(ctx: Context) -> CallToolResult | InputRequiredResult:
    answer = form_answer(ctx, "user_name")
    if answer is None or not isinstance(answer.get("name"), str):
        return input_required({"user_name": ASK_NAME})  # missing, wrong or malformed: ask again
    return text_result(f"Hello, {answer['name']}!")


@server.tool(description="Asks the client's LLM for the capital of France.")
def test_input_required_result_sampling(ctx: Context) -> CallToolResult | InputRequiredResult:
    answer = sample_answer(ctx, "capital_question")
    if answer is None:
        return input_required({"capital_question": ASK_CAPITAL})
    return text_result(f"The model said: {answer}")


@server.tool(description="Asks for the client's roots.")
def test_input_required_result_list_roots(ctx: Context) -> CallToolResult | InputRequiredResult:
    answer = roots_answer(ctx, "client_roots")
    if answer is None:
        return input_required({"client_roots": ASK_ROOTS})
    return text_result(f"Client roots: {', '.join(answer)}")


@server.tool(description="Asks for confirmation and checks the echoed requestState.")
def test_input_required_result_request_state(ctx: Context) -> CallToolResult | InputRequiredResult:
    if ctx.request_state != "awaiting-confirm" or form_answer(ctx, "confirm") is None:
        return input_required({"confirm": ASK_OK}, "awaiting-confirm")
    return text_result("Confirmed: state-ok")


@server.tool(description="Asks for a name, a sampled greeting and the roots at once.")
def test_input_required_result_multiple_inputs(ctx: Context) -> CallToolResult | InputRequiredResult:
    name, greeting = form_answer(ctx, "user_name"), sample_answer(ctx, "greeting")
    client_roots = roots_answer(ctx, "client_roots")
    if ctx.request_state != "awaiting-all" or name is None or greeting is None or client_roots is None:
        asked: dict[str, InputRequest] = {"user_name": ASK_NAME, "greeting": ASK_GREETING, "client_roots": ASK_ROOTS}
        return input_required(asked, "awaiting-all")
    return text_result(f"{greeting} {name.get('name')} ({len(client_roots)} roots)")


ASK_STEP1 = build_form("Step 1: What is your name?", {"name": {"type": "string"}})
ASK_STEP2 = build_form("Step 2: What is your favorite color?", {"color": {"type": "string"}})


@server.tool(description="Asks two questions in two rounds, carrying the first answer in requestState.")
def test_input_required_result_multi_round(ctx: Context) -> CallToolResult | InputRequiredResult:
    state = json.loads(ctx.request_state) if ctx.request_state else {}
    if "name" in state:
        color = form_answer(ctx, "step2")
        if color is None:
            return input_required({"step2": ASK_STEP2}, ctx.request_state)
        return text_result(f"{state['name']} likes {color.get('color')}")
    name = form_answer(ctx, "step1")
    if state.get("round") != 1 or name is None:
        return input_required({"step1": ASK_STEP1}, json.dumps({"round": 1}))
    return input_required({"step2": ASK_STEP2}, json.dumps({"round": 2, "name": name.get("name")}))


@server.tool(description="Asks for confirmation; a requestState that fails its integrity check is an error.")
def test_input_required_result_tampered_state(ctx: Context) -> CallToolResult | InputRequiredResult:
    # The SDK's RequestStateBoundary verifies the seal before this runs, so a tampered echo never reaches here.
    if ctx.request_state != "sealed-confirm" or form_answer(ctx, "confirm") is None:
        return input_required({"confirm": ASK_OK}, "sealed-confirm")
    return text_result("State verified")


@server.tool(description="Asks only for what the client's declared capabilities allow.")
def test_input_required_result_capabilities(ctx: Context) -> CallToolResult | InputRequiredResult:
    declared = ctx.client_capabilities or ClientCapabilities()
    wanted: dict[str, InputRequest] = {}
    if declared.elicitation is not None and form_answer(ctx, "user_name") is None:
        wanted["user_name"] = ASK_NAME
    if declared.sampling is not None and sample_answer(ctx, "greeting") is None:
        wanted["greeting"] = ASK_GREETING
    if declared.roots is not None and roots_answer(ctx, "client_roots") is None:
        wanted["client_roots"] = ASK_ROOTS
    return input_required(wanted) if wanted else text_result("Everything the client can answer was answered")


# List-changed triggers for subscriptions/listen (2026-07-28)


def test_dynamic_tool() -> str:
    return "dynamic"


def test_dynamic_prompt() -> str:
    return "A prompt that comes and goes."


@server.tool(description="Adds or removes a tool, then notifies listeners that the tool list changed.")
async def test_trigger_tool_change(ctx: Context) -> str:
    if "test_dynamic_tool" in {tool.name for tool in await server.list_tools()}:
        server.remove_tool("test_dynamic_tool")
    else:
        server.add_tool(test_dynamic_tool, description="Comes and goes with test_trigger_tool_change.")
    await ctx.notify_tools_changed()
    return "tool list changed"


@server.tool(description="Adds or removes a prompt, then notifies listeners that the prompt list changed.")
async def test_trigger_prompt_change(ctx: Context) -> str:
    if "test_dynamic_prompt" in {prompt.name for prompt in await server.list_prompts()}:
        server.remove_prompt("test_dynamic_prompt")
    else:
        server.prompt(description="Comes and goes with test_trigger_prompt_change.")(test_dynamic_prompt)
    await ctx.notify_prompts_changed()
    return "prompt list changed"


# Resources


@server.resource(
    "test://static-text", name="static-text", description="A static text resource.", mime_type="text/plain"
)
def static_text() -> str:
    return "This is the content of the static text resource."


@server.resource("test://static-binary", name="static-binary", description="A PNG image.", mime_type="image/png")
def static_binary() -> bytes:
    return PNG


@server.resource("test://watched-resource", name="watched", description="A resource to subscribe to.")
def watched_resource() -> str:
    return "Watched resource content."


@server.resource(
    "test://template/{id}/data", name="template-data", description="Data for an id.", mime_type="application/json"
)
def template_data(id: str) -> str:
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"}, separators=(",", ":"))


# Prompts


@server.prompt(description="A prompt without arguments.")
def test_simple_prompt() -> str:
    return "This is a simple prompt for testing."


@server.prompt(description="A prompt with two arguments.")
def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@server.prompt(description="A prompt that embeds a resource.")
def test_prompt_with_embedded_resource(resourceUri: str) -> list[Message]:  # the suite names the argument
    resource = TextResourceContents(
        uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
    )
    return [
        UserMessage(EmbeddedResource(type="resource", resource=resource)),
        UserMessage("Please process the embedded resource above."),
    ]


@server.prompt(description="A prompt with an image.")
def test_prompt_with_image() -> list[Message]:
    return [UserMessage(Image(data=PNG, format="png")), UserMessage("Please analyze the image above.")]


ASK_CONTEXT = build_form("What context should the prompt use?", {"context": {"type": "string"}})


@server.prompt(description="A prompt that first asks the user for its context (SEP-2322).")
def test_input_required_result_prompt(ctx: Context) -> str | InputRequiredResult:
    answer = form_answer(ctx, "user_context")
    if answer is None:
        return input_required({"user_context": ASK_CONTEXT})
    return f"Answer with this context in mind: {answer.get('context')}"


@server.completion()  # type: ignore[no-untyped-call, untyped-decorator]
async def complete(
    ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument, context: CompletionContext | None
) -> Completion | None:
    if isinstance(ref, PromptReference) and ref.name == "test_prompt_with_arguments":
        values = [word for word in ("paris", "park", "party") if word.startswith(argument.value)]
        return Completion(values=values, total=len(values), has_more=False)
    return None


# Methods 2026-07-28 removed, for 2025-11-25 sessions (on the new wire the SDK answers 404 and -32601 itself).
# MCPServer has no seam for spec methods, so they go on its low-level server, as the SDK's extension docs advise.
RequestContext = ServerRequestContext[Any, Any]
subscribed: set[str] = set()


async def handle_set_level(ctx: RequestContext, params: SetLevelRequestParams) -> EmptyResult:
    return EmptyResult()


async def handle_subscribe(ctx: RequestContext, params: SubscribeRequestParams) -> EmptyResult:
    subscribed.add(str(params.uri))
    return EmptyResult()


async def handle_unsubscribe(ctx: RequestContext, params: UnsubscribeRequestParams) -> EmptyResult:
    subscribed.discard(str(params.uri))
    return EmptyResult()


lowlevel = server._lowlevel_server
lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, handle_set_level)
lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, handle_subscribe)
lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, handle_unsubscribe)


class MemoryEventStore(EventStore):
    """Every SSE event in memory, so a 2025-11-25 client can resume a closed stream (tests only)."""

    def __init__(self) -> None:
        self._events: dict[str, tuple[str, Any]] = {}  # event id -> (stream id, message; None when priming), in order
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: str, message: Any) -> str:
        event_id = str(next(self._ids))
        self._events[event_id] = (stream_id, message)
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        if last_event_id not in self._events:
            return None
        stream_id = self._events[last_event_id][0]
        later = list(self._events)[list(self._events).index(last_event_id) + 1 :]
        for event_id in later:
            stream, message = self._events[event_id]
            if stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


def main() -> None:
    parser = argparse.ArgumentParser(description="MCP server for the conformance suite's server scenarios.")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = server.streamable_http_app(event_store=MemoryEventStore(), retry_interval=500, host="127.0.0.1")
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning", timeout_graceful_shutdown=2)
    for signum in (signal.SIGINT, signal.SIGTERM):
        # uvicorn shuts down gracefully on either, then re-raises it to whatever handler was here before: exit 0
        signal.signal(signum, lambda *_: None)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
