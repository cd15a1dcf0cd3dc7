"""What a well-formed answer looks like on each kind of endpoint (the fuzz suite's assertions).

- OAuth JSON endpoints (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 7009, RFC 7662): JSON, `error` from the registered
  codes, `error_description` in RFC 6749's character set, `WWW-Authenticate` on 401.
- Browser pages (`/authorize…`, `/logout`, `/login/…`): an HTML page, or a redirect with a `Location`.
- MCP routes: JSON-RPC 2.0 error bodies (`jsonrpc`, `id`, `error.code` integer, `error.message` string) with
  `WWW-Authenticate` on 401, or whatever the upstream answered.
Everywhere: never a 5xx (no store or upstream outage is staged by the fuzz suite), never a stack trace.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, get_args

from aiohttp import ClientResponse
from multidict import CIMultiDictProxy

from gateway.oauth.errors import ErrorCode

OAUTH_ERRORS = frozenset(get_args(ErrorCode)) | {
    # aiohttp's own 404/405/413 answers, rendered as JSON by the gateway's middleware
    "not_found",
    "method_not_allowed",
    "request_entity_too_large",
    "payload_too_large",
    "unsupported_media_type",
}
_DESCRIPTION = re.compile(r"^[\x20-\x21\x23-\x5B\x5D-\x7E]*$")  # RFC 6749 §5.2
_TRACE = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    content_type: str
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


async def answer(response: ClientResponse) -> Answer:
    """Read the whole answer (bytes decoded leniently: a body is inspected, never trusted to be UTF-8)."""
    raw = await response.read()
    return Answer(response.status, response.headers, response.content_type, raw.decode("utf-8", "replace"))


def parser_refusal(reply: Answer) -> bool:
    """aiohttp's HTTP parser refused the message itself (a header line over 8 KiB…): 400 before any route."""
    return reply.status == 400 and reply.content_type == "text/plain" and reply.text.startswith("Got more than")


def _common(reply: Answer, what: str) -> None:
    assert reply.status < 500, f"{what}: {reply.status} {reply.text[:500]}"
    assert not _TRACE.search(reply.text), f"{what}: a stack trace in the body: {reply.text[:500]}"


def assert_oauth_json(reply: Answer, what: str) -> None:
    """An OAuth endpoint's answer: JSON; on an error, a registered code and a well-formed description."""
    _common(reply, what)
    if parser_refusal(reply):
        return
    if reply.status == 204 or (reply.status == 200 and not reply.text):
        return
    assert reply.content_type == "application/json", f"{what}: {reply.status} {reply.content_type} {reply.text[:300]}"
    body = reply.json()
    if reply.status >= 400:
        assert isinstance(body, dict) and body.get("error") in OAUTH_ERRORS, f"{what}: {reply.status} {body}"
        description = body.get("error_description")
        assert description is None or (isinstance(description, str) and _DESCRIPTION.match(description)), body
    if reply.status == 401:
        assert "WWW-Authenticate" in reply.headers, f"{what}: 401 without WWW-Authenticate"


def assert_page(reply: Answer, what: str) -> None:
    """A browser page: HTML, or a redirect carrying a Location (JSON only for the shared 405/413 answers)."""
    _common(reply, what)
    if parser_refusal(reply):
        return
    if 300 <= reply.status < 400:
        assert reply.headers.get("Location"), f"{what}: {reply.status} without Location"
        return
    if reply.status in (405, 413) and reply.content_type == "application/json":
        return
    assert reply.content_type == "text/html", f"{what}: {reply.status} {reply.content_type} {reply.text[:300]}"


def assert_mcp(reply: Answer, what: str) -> None:
    """An MCP route's answer: a JSON-RPC error of the gateway, or the upstream's answer."""
    _common(reply, what)
    if parser_refusal(reply):
        return
    if reply.status == 401:
        assert reply.headers.get("WWW-Authenticate", "").startswith("Bearer "), f"{what}: 401 without a challenge"
    if reply.status >= 400 and reply.content_type == "application/json":
        body = reply.json()
        if isinstance(body, dict) and body.get("jsonrpc") == "2.0" and "error" in body:
            error = body["error"]
            assert (
                isinstance(error, dict) and isinstance(error.get("code"), int) and isinstance(error.get("message"), str)
            ), f"{what}: malformed JSON-RPC error {body}"
            assert "id" in body, f"{what}: JSON-RPC error without an id member {body}"
        else:
            assert isinstance(body, dict) and ("error" in body), f"{what}: unexpected body {body}"
