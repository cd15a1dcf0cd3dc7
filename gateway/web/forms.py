"""Reading a form body without letting a malformed one become a 500."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_form(request: web.Request) -> MultiDictProxy[Any] | None:
    """The parsed form, or None for a wrong content type, a bad charset, invalid UTF-8 or a broken multipart."""
    if request.content_type not in FORM_TYPES:
        return None
    try:
        return await request.post()
    except (ValueError, LookupError, UnicodeDecodeError):
        return None
