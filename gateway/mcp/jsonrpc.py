"""JSON-RPC 2.0 peeking, strict reading and error bodies for MCP routes (JSON-RPC 2.0 §4-§6)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from gateway.mcp.names import lenient
from gateway.mcp.strict_json import MAX_DEPTH, depth, loads_strict

# The gateway's own errors are application-defined codes (JSON-RPC 2.0 §5.1: outside -32768..-32000), -31000
# minus the HTTP status they travel with. MCP 2026-07-28 ("Error Codes") keeps -32020..-32099 for codes the spec
# defines, forbids -32002 (resource not found before 2026-07-28) and asks implementations not to use the legacy
# -32000..-32019 at all; the only spec-defined code the gateway sends is HeaderMismatch (-32020).
UNAUTHORIZED = -31401
FORBIDDEN = -31403
NOT_FOUND = -31404
REQUEST_TIMEOUT = -31408  # the body stalled
PAYLOAD_TOO_LARGE = -31413
RATE_LIMITED = -31429
UPSTREAM_UNAVAILABLE = -31502
STORE_UNAVAILABLE = -31503
UPSTREAM_TIMEOUT = -31504
INTERNAL_ERROR = -32603
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602

MAX_BATCH_MESSAGES = 100  # messages per POST (the TypeScript SDK's cap)
MAX_DISTINCT_TOOLS = 10  # distinct tools one POST may call: each is a rate-limit bucket in Redis
MAX_SUBSCRIPTIONS = 100  # resource URIs one subscriptions/listen may name
# what one POST may name for policy to judge (each name or URI is judged in several readings against every rule)
MAX_TARGETS = 100
MAX_TARGET_BYTES = 16 * 1024  # their UTF-8 in all (a non-ASCII character costs as its percent-encoded octets)

RequestId = str | int | float | None  # JSON-RPC ids are strings or Numbers (1.0 included)


def _body_text(body: bytes) -> str | None:
    """A client's body as the one text every reading of it uses: strict UTF-8 (RFC 8259 §8.1), None otherwise.
    (json.loads of bytes also takes UTF-16 and UTF-32, which a depth check on a UTF-8 reading would not see.)"""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def peek_id(body: bytes) -> RequestId:
    """The `id` of a single JSON-RPC request in `body`, or None when unreadable (batches, notifications)."""
    text = _body_text(body)
    if not text or text.lstrip()[:1] != "{":
        return None
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: pathologically nested input
        return None
    return _id(message.get("id")) if isinstance(message, dict) else None


def _id(value: Any) -> RequestId:
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def message_id(message: dict[str, Any]) -> RequestId:
    """A decoded message's `id`, when it is one JSON-RPC allows (else None: an error then answers no request)."""
    return _id(message.get("id"))


def is_modern(message: dict[str, Any]) -> bool:
    """A decoded request of MCP 2026-07-28: its `_meta` names a protocol version (the per-request envelope)."""
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and VERSION_META in meta


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as the gateway writes every message it rewrites or makes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def error_body(code: int, message: str, request_id: RequestId = None, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


PARSE_ERROR = -32700
HEADER_MISMATCH = -32020  # MCP 2026-07-28 HeaderMismatch (Streamable HTTP "Server Validation")

# What each method touches: tools/call -> ("tools", name); the list methods whose results are filtered.
TARGETS = {
    "tools/call": ("tools", "name"),
    "prompts/get": ("prompts", "name"),
    "resources/read": ("resources", "uri"),
    "resources/subscribe": ("resources", "uri"),
    "resources/unsubscribe": ("resources", "uri"),
}
LISTS = {
    "tools/list": ("tools", "tools", "name"),
    "prompts/list": ("prompts", "prompts", "name"),
    "resources/list": ("resources", "resources", "uri"),
    "resources/templates/list": ("resources", "resourceTemplates", "uriTemplate"),
}
NAMED = {"tools/call": "name", "resources/read": "uri", "prompts/get": "name"}  # Mcp-Name required (2026-07-28)
VERSION_META = "io.modelcontextprotocol/protocolVersion"
REMOVED = frozenset(
    {"resources/subscribe", "resources/unsubscribe"}
)  # gone in 2026-07-28 (subscriptions/listen)  # the per-request envelope of 2026-07-28 (basic "_meta")
_COMPLETION_REFS = {"ref/prompt": ("prompts", "name"), "ref/resource": ("resources", "uri")}
# methods whose targets policy judges; a different spelling of one (case, spaces) is refused, not passed on
_JUDGED = {*TARGETS, "completion/complete", "subscriptions/listen"}


@dataclass(frozen=True)
class Message:
    """One JSON-RPC request or notification from a POST body, reduced to what policy needs."""

    id: RequestId
    method: str
    target: tuple[str, str] | None  # (kind, name or URI) for calls that touch one named thing
    arguments: Any = None
    more_targets: tuple[tuple[str, str], ...] = ()  # subscriptions/listen: every resource it subscribes to
    envelope: tuple[Any] | None = None  # (its _meta protocol version,): a 2026-07-28 request; None: older
    retry: bool = False  # a retried request carrying inputResponses or requestState (2026-07-28 MRTR)

    @property
    def targets(self) -> tuple[tuple[str, str], ...]:
        return ((self.target,) if self.target is not None else ()) + self.more_targets


class BodyError(Exception):
    """A POST body the gateway refuses to judge (HTTP 400 with this JSON-RPC error); nothing is forwarded."""

    def __init__(self, code: int, message: str, request_id: RequestId = None) -> None:
        super().__init__(message)
        self.code, self.message, self.request_id = code, message, request_id


def parse_messages(body: bytes) -> list[Message] | None:
    """The requests in a single or batch body, leniently (for the audit line of a refused body); None when the
    body is not JSON. Use `read_messages` to decide anything."""
    text = _body_text(body)
    try:
        decoded = json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(decoded, (dict, list)) or text is None or depth(text) > MAX_DEPTH:
        return None  # (a deeper value would be walked again: digests, audit lines)
    items = decoded if isinstance(decoded, list) else [decoded]
    messages = []
    for item in items[:MAX_BATCH_MESSAGES]:
        if not isinstance(item, dict) or not isinstance(item.get("method"), str):
            continue  # responses (to server requests) and junk
        params: dict[str, Any] = item["params"] if isinstance(item.get("params"), dict) else {}
        target = None
        if item["method"] in TARGETS:
            kind, field = TARGETS[item["method"]]
            value = params.get(field)
            target = (kind, value if isinstance(value, str) else "")
        messages.append(Message(_id(item.get("id")), item["method"], target, params.get("arguments")))
    return messages


def read_messages(body: bytes) -> list[Message]:
    """The requests of a POST body, read so that every JSON parser reads them the same: strict UTF-8, no
    duplicate object keys (parsers disagree on which one wins), no NaN/Infinity, at most MAX_DEPTH levels deep;
    at most MAX_BATCH_MESSAGES messages, unique request ids, a string name or URI wherever policy needs one, at
    most MAX_TARGETS of them and MAX_TARGET_BYTES of UTF-8 in all (what policy costs is bounded by what it
    reads). An empty body is no message.

    Raises:
        BodyError: PARSE_ERROR, INVALID_REQUEST or INVALID_PARAMS; the upstream must not see this body.
    """
    if not body.strip():
        return []
    try:
        decoded = loads_strict(body.decode("utf-8"))
    except ValueError:  # (UnicodeDecodeError is a ValueError; so is nesting deeper than MAX_DEPTH)
        raise BodyError(
            PARSE_ERROR,
            f"Parse error: the body must be UTF-8 JSON without duplicate keys, nested at most {MAX_DEPTH} deep",
        ) from None
    if isinstance(decoded, dict):
        items = [decoded]
    elif isinstance(decoded, list) and 0 < len(decoded) <= MAX_BATCH_MESSAGES:
        items = decoded
    elif isinstance(decoded, list):
        raise BodyError(INVALID_REQUEST, f"Invalid request: a batch holds 1 to {MAX_BATCH_MESSAGES} messages")
    else:
        raise BodyError(INVALID_REQUEST, "Invalid request: not a JSON-RPC message")
    messages = [message for item in items if (message := _read_item(item)) is not None]
    ids = [m.id for m in messages if m.id is not None]
    if len(set(ids)) != len(ids):  # (1 and 1.0 are one id, as in JSON)
        raise BodyError(INVALID_REQUEST, "Invalid request: request ids in a batch must be unique")
    targets = [name for m in messages for _, name in m.targets]
    if len(targets) > MAX_TARGETS or sum(len(t.encode("utf-8", "surrogatepass")) for t in targets) > MAX_TARGET_BYTES:
        raise BodyError(
            INVALID_REQUEST,
            f"Invalid request: one POST may name at most {MAX_TARGETS} tools, prompts or resources, "
            f"{MAX_TARGET_BYTES} bytes in all",
            messages[0].id if len(items) == 1 else None,
        )
    tools = {m.target for m in messages if m.method == "tools/call"}
    if len(tools) > MAX_DISTINCT_TOOLS:
        raise BodyError(
            INVALID_REQUEST, f"Invalid request: one batch may call at most {MAX_DISTINCT_TOOLS} distinct tools"
        )
    return messages


def _read_item(item: Any) -> Message | None:
    if not isinstance(item, dict):
        raise BodyError(INVALID_REQUEST, "Invalid request: a batch holds JSON-RPC objects only")
    method = item.get("method")
    if method is None and "id" in item and ("result" in item or "error" in item):
        return None  # a response to a server request: not policy's
    request_id = item.get("id")
    if not isinstance(method, str) or (request_id is not None and _id(request_id) is None):
        raise BodyError(
            INVALID_REQUEST, "Invalid request: each message needs a string method and a string or number id"
        )
    if method not in _JUDGED and lenient(method.strip()) in _JUDGED:
        raise BodyError(INVALID_REQUEST, f"Invalid request: unknown method {method[:64]!r}", _id(request_id))
    params = item.get("params", {})
    if method in _JUDGED and not isinstance(params, dict):
        raise BodyError(INVALID_PARAMS, "Invalid params: params must be an object", _id(request_id))
    params = params if isinstance(params, dict) else {}
    meta = params.get("_meta")
    envelope = (meta[VERSION_META],) if isinstance(meta, dict) and VERSION_META in meta else None
    if envelope is not None and method in REMOVED and "uri" not in params:
        target, more = None, ()  # names nothing: the upstream answers that the method is gone (404, -32601)
    else:
        target, more = _targets(method, params, _id(request_id))
    retry = "inputResponses" in params or "requestState" in params
    return Message(_id(request_id), method, target, params.get("arguments"), more, envelope, retry)


def _targets(
    method: str, params: dict[str, Any], request_id: RequestId
) -> tuple[tuple[str, str] | None, tuple[tuple[str, str], ...]]:
    def text(value: Any, what: str) -> str:
        if not isinstance(value, str):
            raise BodyError(INVALID_PARAMS, f"Invalid params: {what} must be a string", request_id)
        return value

    if method in TARGETS:
        kind, field = TARGETS[method]
        return (kind, text(params.get(field), f"params.{field}")), ()
    if method == "completion/complete":  # MCP server/utilities/completion: the prompt or template it completes
        ref = params.get("ref")
        kind_field = _COMPLETION_REFS.get(str(ref.get("type"))) if isinstance(ref, dict) else None
        if kind_field is None:
            raise BodyError(INVALID_PARAMS, "Invalid params: ref must be a ref/prompt or ref/resource", request_id)
        assert isinstance(ref, dict)
        return (kind_field[0], text(ref.get(kind_field[1]), f"params.ref.{kind_field[1]}")), ()
    if method == "subscriptions/listen":  # MCP 2026-07-28 basic/patterns/subscriptions
        notifications = params.get("notifications", {})
        wanted = notifications.get("resourceSubscriptions", []) if isinstance(notifications, dict) else None
        if not isinstance(wanted, list) or len(wanted) > MAX_SUBSCRIPTIONS:
            raise BodyError(
                INVALID_PARAMS,
                f"Invalid params: resourceSubscriptions must be a list of at most {MAX_SUBSCRIPTIONS} URIs",
                request_id,
            )
        return None, tuple(("resources", text(uri, "each resource subscription")) for uri in wanted)
    return None, ()


def header_mismatch(
    messages: list[Message],
    method_header: str | None,
    name_header: str | None,
    version_header: str | None = None,
    *,
    batch: bool = False,
) -> str | None:
    """Why the mirrored headers disagree with the body, or None (MCP 2026-07-28 Streamable HTTP "Server
    Validation", RS-14). A 2026-07-28 request (its `_meta` names a protocol version) must carry them all:
    `MCP-Protocol-Version` equal to that version, `Mcp-Method` to its method and, for tools/call, resources/read
    and prompts/get, `Mcp-Name` to what it names (a `=?base64?…?=` value is decoded first). Any other message is
    held to the headers it carries, whatever its version: the gateway never passes on a header it has not checked
    against the body (the transport page's advice to intermediaries that would otherwise trust one). `batch`: the body
    is an array (one of a single message too: mirrored headers describe a message, not a batch)."""
    modern = [m for m in messages if m.envelope is not None and m.id is not None]
    if method_header is None and name_header is None and not modern:
        return None
    if len(messages) != 1 or batch:
        return "Mcp-Method/Mcp-Name headers need a single JSON-RPC message"
    message = messages[0]
    if modern:
        if version_header is None or version_header != message.envelope[0]:  # type: ignore[index]
            return "MCP-Protocol-Version header does not match the request's _meta protocol version"
        if method_header is None:
            return "Mcp-Method header is required"
        if name_header is None and message.method in NAMED and message.target is not None:
            return "Mcp-Name header is required for " + message.method
    if method_header is not None and method_header != message.method:
        return "Mcp-Method header does not match the body's method"
    if name_header is not None and (message.target is None or _header_value(name_header) != message.target[1]):
        return "Mcp-Name header does not match the body"
    return None


def _header_value(value: str) -> str | None:
    if not (value.startswith("=?base64?") and value.endswith("?=") and len(value) >= 11):
        return value
    try:
        return base64.b64decode(value[9:-2], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None  # matches no body value
