"""Request bodies, read whole and bounded in size and in time (nginx's client_max_body_size, client_body_timeout).

MCP routes read their own bodies (`proxy.max_body_bytes`, JSON-RPC errors; `gateway.web.mcp`). Every other body
(OAuth endpoints, sign-in and consent pages) is read here, before the handler, with a small cap of its own
(`RULES`: 32 KiB for a registration, `FORM_BODY_LIMIT` for everything else): the one place such bodies are
bounded. Handlers then read aiohttp's cached copy (`request.read()`, `request.post()`, `request.json()`).
Forms are `application/x-www-form-urlencoded` only (RFC 6749 §3.2 and the pages' own forms); a multipart body
is refused.

`read_body` is the one reader of both: it waits at most `listen.body_timeout` for each next chunk and
`listen.body_total_timeout` for the whole body, so a client that stops sending mid-body, or trickles a byte just
within each chunk deadline, gets 408. Only the request body is timed: a long response (an SSE stream) is not.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.app_state import CORS_HEADERS_KEY, ROUTES_KEY, SETTINGS_KEY
from gateway.config import Listen
from gateway.oauth.errors import InvalidClientMetadataError, InvalidRequestError, OAuthError
from gateway.oauth.registration import MAX_REGISTRATION_BYTES
from gateway.web.auditing import audit
from gateway.web.errors import json_error
from gateway.web.render import html_error

FORM_BODY_LIMIT = 16 * 1024  # token, revoke, introspect, sign-in and consent forms are well under 1 KiB
PAGE_PATHS = ("/authorize", "/logout")


@dataclass(frozen=True)
class BodyRule:
    """What one endpoint reads: at most `limit` bytes; a refused body is answered with `error`'s code (RFC 7591
    §3.2.2 at /register, RFC 6749 §5.2 elsewhere) and audited as `event` when the endpoint audits its requests."""

    limit: int = FORM_BODY_LIMIT
    error: type[OAuthError] = InvalidRequestError
    event: str | None = None


RULES = {
    "/register": BodyRule(MAX_REGISTRATION_BYTES, InvalidClientMetadataError, "oauth.register"),
    "/token": BodyRule(event="oauth.token"),
    "/revoke": BodyRule(event="oauth.revoke"),
}
DEFAULT_RULE = BodyRule()


class BodyTooLargeError(Exception):
    """The body is longer than the reader's limit."""


class BodyTimeoutError(Exception):
    """The body stalled (`listen.body_timeout`) or took longer in all than `listen.body_total_timeout`."""


async def read_body(request: web.BaseRequest, limit: int, listen: Listen) -> bytes:
    """The whole body, at most `limit` bytes, each chunk within `listen.body_timeout` seconds of the previous one
    and all of it within `listen.body_total_timeout` seconds.

    Raises:
        BodyTooLargeError: Content-Length or the bytes received exceed `limit`.
        BodyTimeoutError: no byte for `body_timeout` seconds, or the body incomplete after `body_total_timeout`.
    """
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLargeError()
    content = request.content
    if content.is_eof():  # the whole body came with the head (the usual MCP POST): nothing to wait for
        whole = content.read_nowait()
        if len(whole) > limit:
            raise BodyTooLargeError()
        return whole
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(listen.body_total_timeout):
            while True:
                async with asyncio.timeout(listen.body_timeout):
                    chunk = await request.content.readany()
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > limit:
                    raise BodyTooLargeError()
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeoutError() from None


@web.middleware
async def bounded_body(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read a non-MCP request's body (see the module docstring) or answer 400/408/413 in the endpoint's shape."""
    if not request.body_exists or request.app[ROUTES_KEY].match(request.host, request.path) is not None:
        return await handler(request)
    rule = RULES.get(request.path, DEFAULT_RULE)
    if request.content_type == "multipart/form-data":
        return _refused(
            request, rule, 400, "multipart bodies are not accepted; send application/x-www-form-urlencoded", "multipart"
        )
    try:
        body = await read_body(request, rule.limit, request.app[SETTINGS_KEY].listen)
    except BodyTooLargeError:
        return _refused(request, rule, 413, f"the request body exceeds {rule.limit} bytes", "too_large")
    except BodyTimeoutError:
        return _refused(request, rule, 408, "the request body did not arrive in time", "body_timeout")
    # aiohttp's own cache of the body: read(), text(), json() and post() (urlencoded) answer from it
    request._read_bytes = body  # noqa: SLF001
    return await handler(request)


def _refused(request: web.Request, rule: BodyRule, status: int, detail: str, outcome: str) -> web.Response:
    """HTML for the browser pages, the endpoint's OAuth JSON error elsewhere (with CORS `*`, as the endpoints'
    own answers: a browser client must be able to read why); the connection is not reused."""
    if request.path.startswith(PAGE_PATHS):
        response = html_error("Request refused", detail[0].upper() + detail[1:] + ".", status=status)
    else:
        request[CORS_HEADERS_KEY] = {"Access-Control-Allow-Origin": "*"}
        response = json_error(rule.error(detail))
        response.set_status(status)
    if rule.event is not None:
        audit(request, rule.event, outcome=outcome)
    response.force_close()  # the rest of the body (if any) is not worth reading
    return response
