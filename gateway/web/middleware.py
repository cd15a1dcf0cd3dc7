"""The outermost layer: request ids, Redis-down -> 503, and the only catch-all in the gateway."""

from __future__ import annotations

import itertools
import logging
import re
import secrets

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler

from gateway.app_state import CORS_HEADERS_KEY, METRICS_KEY, REQUEST_ID_KEY, ROUTE_INFO_KEY, ROUTES_KEY, TOKEN_ID_KEY
from gateway.mcp import jsonrpc
from gateway.oauth.errors import InvalidRequestError, OAuthError
from gateway.store.errors import StoreUnavailableError
from gateway.web.cors import stamp
from gateway.web.errors import NO_STORE, json_error, jsonrpc_error
from gateway.web.render import html_error

logger = logging.getLogger("gateway")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# request ids: unique, not secret (a random per-process prefix and a counter: cheaper than 8 random bytes)
_ID_PREFIX = secrets.token_hex(4)
_ID_COUNTER = itertools.count(secrets.randbelow(1 << 32))
RETRY_AFTER_SECONDS = "5"
UNREADABLE_HEADER = "a request header is not valid UTF-8"


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFF:08x}"


def request_id(request: web.BaseRequest) -> str:
    """The client's X-Request-Id when it is a safe token, else a new one."""
    inbound = request.headers.get("X-Request-Id")
    return inbound if inbound is not None and _SAFE_ID.match(inbound) else _new_request_id()


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer but an MCP route's (gateway.web.mcp does the same for itself) names its request id and carries
    the CORS headers its endpoint decided on (`stamp`), redirects and errors included."""
    request[REQUEST_ID_KEY] = request_id(request)
    if not headers_are_utf8(request):
        response = _bad_request(request)
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                stamp(exc.headers, request[REQUEST_ID_KEY], request.get(CORS_HEADERS_KEY))
                raise
            response = _http_error(exc)
        except StoreUnavailableError as exc:
            logger.error("store unavailable (%s): answering 503 (request %s)", exc, request[REQUEST_ID_KEY])
            request.app[METRICS_KEY].store_errors.inc()
            response = _unavailable(request)
        except OAuthError as error:
            response = json_error(error)
        except Exception:
            # no request details in the message: headers may carry tokens
            logger.exception("unhandled error (request %s %s)", request.method, request.path)
            response = _internal_error(request)
    if not response.prepared:  # (no page streams its answer; an MCP route's answer is stamped already)
        stamp(response.headers, request[REQUEST_ID_KEY], request.get(CORS_HEADERS_KEY))
    return response


def _is_mcp(request: web.Request) -> bool:
    if ROUTE_INFO_KEY in request:
        return True
    table = request.app.get(ROUTES_KEY)
    return table is not None and table.match(request.host, request.path) is not None


def headers_are_utf8(request: web.BaseRequest) -> bool:
    """aiohttp decodes header bytes as UTF-8 with surrogateescape: a value that is not UTF-8 keeps lone
    surrogates that break every later encode (hashing a cookie, forwarding upstream). Refused here, once."""
    for value in request.headers.values():
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def _bad_request(request: web.Request) -> web.Response:
    """400 in the endpoint's shape for a request the gateway will not read (headers that are not UTF-8)."""
    detail = UNREADABLE_HEADER
    if _is_page(request):
        return html_error("Bad request", "Your browser sent a request the gateway cannot read.", status=400)
    if _is_mcp(request):
        return jsonrpc_error(400, jsonrpc.INVALID_REQUEST, f"Invalid request: {detail}")
    return json_error(InvalidRequestError(detail))


def _is_page(request: web.Request) -> bool:
    """Browser pages (sign-in, consent, provider callback, logout) get HTML errors; everything else is an API."""
    path = request.path
    return path in ("/authorize", "/logout", "/upstream/connections") or path.startswith(
        ("/authorize/", "/login/", "/upstream/connect/", "/upstream/connections/", "/upstream/callback/")
    )


def _unavailable(request: web.Request) -> web.Response:
    headers = {"Retry-After": RETRY_AFTER_SECONDS}
    if _is_page(request):
        page = html_error(
            "Temporarily unavailable", "The gateway cannot reach its store. Try again shortly.", status=503
        )
        page.headers.update(headers)
        return page
    if _is_mcp(request):
        return jsonrpc_error(503, jsonrpc.STORE_UNAVAILABLE, "Gateway store unavailable; retry later", headers=headers)
    return web.json_response(
        {"error": "temporarily_unavailable", "error_description": "store unavailable"},
        status=503,
        headers={**NO_STORE, **headers},
    )


def _http_error(exc: web.HTTPException) -> web.Response:
    """aiohttp's 404/405/413 as JSON (keeping Allow and friends), never its HTML/text defaults."""
    headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
    code = exc.reason.lower().replace(" ", "_")
    return web.json_response({"error": code, "error_description": exc.reason}, status=exc.status, headers=headers)


def _internal_error(request: web.Request) -> web.Response:
    if _is_page(request):
        return html_error("Something went wrong", "The gateway could not complete this step.", status=500)
    if _is_mcp(request):
        return jsonrpc_error(500, jsonrpc.INTERNAL_ERROR, "Internal gateway error")
    return web.json_response({"error": "server_error"}, status=500, headers=NO_STORE)


class AccessLogger(AbstractAccessLogger):
    """One line per request; the path without its query string (a token there must never reach a log). Optional:
    off unless its logger is enabled at INFO (`--log-level info`); the audit log is the record of MCP requests."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        fields = {
            "remote": request.remote,
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "ms": round(time * 1000, 1),
            "request_id": request.get(REQUEST_ID_KEY, "-"),
            "token_id": request.get(TOKEN_ID_KEY, "-"),
        }
        self.logger.info(
            '%s "%s %s" %s %.1fms id=%s token=%s',
            fields["remote"],
            fields["method"],
            fields["path"],
            fields["status"],
            fields["ms"],
            fields["request_id"],
            fields["token_id"],
            extra=fields,
        )
