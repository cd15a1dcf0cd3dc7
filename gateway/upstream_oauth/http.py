"""Calls to an upstream's OAuth servers: no redirects followed, no cookies, a deadline over the whole call, the
answer read bounded however it is framed, JSON or nothing. Errors name the server's URL, never a token."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

MAX_ANSWER_BYTES = 64 * 1024


class UpstreamOAuthError(Exception):
    """The upstream's authorization server could not be used; the message is for a person and names no secret."""


def oauth_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), headers={"User-Agent": "mcp-auth-gateway"})


async def call_json(
    http: aiohttp.ClientSession, method: str, url: str, *, timeout: float, what: str, **kwargs: Any
) -> tuple[int, Any, Any]:
    """(status, JSON body or None when the body is no JSON, headers).

    Raises:
        UpstreamOAuthError: unreachable, no answer within `timeout`, or an answer larger than MAX_ANSWER_BYTES.
    """
    try:
        async with asyncio.timeout(timeout):
            async with http.request(method, url, allow_redirects=False, **kwargs) as response:
                raw = bytearray()
                if (response.content_length or 0) > MAX_ANSWER_BYTES:
                    raise UpstreamOAuthError(f"the {what} at {url} answered more than {MAX_ANSWER_BYTES} bytes")
                async for chunk in response.content.iter_chunked(16 * 1024):
                    raw += chunk
                    if len(raw) > MAX_ANSWER_BYTES:
                        raise UpstreamOAuthError(f"the {what} at {url} answered more than {MAX_ANSWER_BYTES} bytes")
                status, headers = response.status, response.headers
    except TimeoutError:
        raise UpstreamOAuthError(f"the {what} at {url} did not answer within {timeout:g} s") from None
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise UpstreamOAuthError(f"the {what} at {url} could not be reached ({type(exc).__name__})") from None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # (not JSON, not UTF-8, an integer past 4300 digits, nested too deep)
        body = None
    return status, body, headers


async def get_document(http: aiohttp.ClientSession, url: str, *, timeout: float, what: str) -> dict[str, Any]:
    """A JSON object served with 200 at `url`.

    Raises:
        UpstreamOAuthError: anything else (another status, a redirect, HTML, an array).
    """
    status, body, _ = await call_json(
        http, "GET", url, timeout=timeout, what=what, headers={"Accept": "application/json"}
    )
    if status != 200:
        raise UpstreamOAuthError(f"the {what} at {url} answered {status}")
    if not isinstance(body, dict):
        raise UpstreamOAuthError(f"the {what} at {url} is not a JSON object")
    return body
