"""Filter list results so a caller sees only what policy lets them use, in JSON bodies and SSE events (MCP
Streamable HTTP; events framed by gateway.mcp.sse, WHATWG HTML §9.2.6).

By shape, not by request: every JSON-RPC result whose `tools`, `prompts`, `resources`, `resourceTemplates` or
`contents` member is present is filtered by that member's kind, whatever id it answers and on whichever stream it comes
(a POST's answer, a GET stream, a replay after `Last-Event-ID`). What cannot be read the way a client would read
it fails closed (`FilterError`): a body or event that is not strict JSON (duplicate keys, NaN, nesting deeper
than strict_json.MAX_DEPTH), an SSE event larger than gateway.mcp.sse.MAX_EVENT_BYTES. Other bytes pass unchanged,
event by event.

Caching hints (MCP 2026-07-28 server/utilities/caching): a result holding a list the gateway filters per caller
(`private`: kinds whose rules depend on the caller's scopes or groups) is per-user data, whatever the upstream
said: a `cacheScope` of "public" becomes "private" (else another caller's client or a shared cache could serve
this caller's view), and a `ttlMs` is cut to what is left of the token's life (`ttl_ms`: the caller's groups and
scopes may differ with the next token). Interim `input_required` results carry no hints and pass unchanged;
lists no rule varies by caller keep their hints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.mcp import jsonrpc
from gateway.mcp.sse import UnreadableEventError, data, field_name
from gateway.mcp.strict_json import loads_strict

Allowed = Callable[[str, str], bool]  # (kind, name or URI) -> may the caller use it
# result member -> (policy kind, item key); `contents` is resources/read's (a directory read MAY answer with the
# contents of several resources, MCP server/resources "Reading Resources")
LIST_FIELDS = {
    "tools": ("tools", "name"),
    "prompts": ("prompts", "name"),
    "resources": ("resources", "uri"),
    "resourceTemplates": ("resources", "uriTemplate"),
    "contents": ("resources", "uri"),
}


class FilterError(UnreadableEventError):
    """A response on a filtered route the gateway cannot read as the client would: it must not reach the client.
    `passed`: what came before it in the same chunk and may still go out (an SSE stream, gateway.mcp.sse)."""


class ListFilter:
    """Rewrites list results; returns the very same object when nothing changes (so bytes can pass as they came).
    `private`: the policy kinds filtered per caller; `ttl_ms`: the longest freshness a per-caller result may claim;
    `rename`: (kind, name or URI) -> the name the client sees (after `allowed` judged the upstream's)."""

    def __init__(
        self,
        allowed: Allowed,
        *,
        private: frozenset[str] = frozenset(),
        ttl_ms: int | None = None,
        rename: Callable[[str, str], str] | None = None,
    ) -> None:
        self._allowed, self._private, self._ttl_ms, self._rename = allowed, private, ttl_ms, rename

    def renaming(self, rename: Callable[[str, str], str]) -> ListFilter:
        """The same filter, showing names as `rename` gives them."""
        return ListFilter(self._allowed, private=self._private, ttl_ms=self._ttl_ms, rename=rename)

    def message(self, message: Any) -> Any:
        if not isinstance(message, dict) or not isinstance(message.get("result"), dict):
            return message
        result = message["result"]
        changed: dict[str, Any] = {}
        per_caller = False
        for field, (kind, key) in LIST_FIELDS.items():
            if field not in result:
                continue
            per_caller = per_caller or kind in self._private
            items = result[field]
            if not isinstance(items, list):
                changed[field] = []  # not a list of anything policy could judge: nothing of it is shown
                continue
            kept = [
                i for i in items if isinstance(i, dict) and isinstance(i.get(key), str) and self._allowed(kind, i[key])
            ]
            if self._rename is not None:  # (a virtual server's names: gateway.mcp.namespacing)
                kept = [{**i, key: self._rename(kind, i[key])} for i in kept]
                changed[field] = kept
            elif len(kept) != len(items):
                changed[field] = kept
        if per_caller:
            changed.update(self._private_hints(result))
        return {**message, "result": {**result, **changed}} if changed else message

    def _private_hints(self, result: dict[str, Any]) -> dict[str, Any]:
        """The caching hints of a per-caller result that must change (none it does not carry are added)."""
        hints: dict[str, Any] = {}
        if result.get("cacheScope") == "public":
            hints["cacheScope"] = "private"
        ttl = result.get("ttlMs")
        if self._ttl_ms is not None and isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
            if ttl > self._ttl_ms:
                hints["ttlMs"] = self._ttl_ms
        return hints

    def messages(self, decoded: Any) -> Any:
        """A single message or a batch array (arrays inside arrays too: no reader gets an unfiltered copy)."""
        if not isinstance(decoded, list):
            return self.message(decoded)
        rewritten = [self.messages(m) for m in decoded]
        return decoded if all(new is old for new, old in zip(rewritten, decoded, strict=True)) else rewritten

    def json_body(self, body: bytes) -> bytes:
        """A whole JSON body, filtered; unchanged bytes when nothing is hidden.

        Raises:
            FilterError: the body is not strict UTF-8 JSON.
        """
        if not body.strip():
            return body
        try:
            decoded = loads_strict(body.decode("utf-8"))
            rewritten = self.messages(decoded)
        except (ValueError, RecursionError):
            raise FilterError("the upstream's JSON body is not strict JSON") from None
        return body if rewritten is decoded else jsonrpc.dumps(rewritten)

    def event(self, lines: list[bytes]) -> list[bytes]:
        """One SSE event's lines (an EventRewrite of gateway.mcp.sse), filtered; the same list when nothing is
        hidden. Empty data (a priming event, a comment) dispatches nothing and passes as it is.

        Raises:
            FilterError: the event's data is not strict JSON.
        """
        payload = data(lines)
        if not payload:
            return lines
        try:
            message = loads_strict(payload.decode("utf-8", errors="replace"))  # as the client decodes it
            rewritten = self.messages(message)
        except (ValueError, RecursionError):
            raise FilterError("an SSE event's data is not strict JSON") from None
        return lines if rewritten is message else _kept_lines(lines, rewritten)


def _kept_lines(lines: list[bytes], rewritten: Any) -> list[bytes]:
    kept = [line for line in lines if field_name(line) != b"data"]  # id, event, retry, comments
    return [*kept, b"data: " + jsonrpc.dumps(rewritten)]
