"""Reading request bodies with a cap of their own, and forms that are `application/x-www-form-urlencoded` only
(RFC 6749 §3.2 and Appendix B; HTML forms' default). Multipart is refused: nothing we serve needs it, and its
parser is a large surface for malformed input. Nothing here buffers more than the cap, and a malformed body is
an error value, never a 500."""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024  # token, revoke, introspect, login and consent forms are well under 1 KiB
MAX_FORM_FIELDS = 32  # name=value pairs, repeats included


class BodyTooLargeError(Exception):
    """The body is larger than the cap; nothing beyond the cap was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


class FormError(Exception):
    """The body is not a readable form; the message is safe to show."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or BodyTooLargeError as soon as it exceeds `limit` (a declared Content-Length over the cap
    is refused before reading anything).

    Raises:
        BodyTooLargeError: more than `limit` bytes.
    """
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLargeError(limit)
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            raise BodyTooLargeError(limit)
    if not body:  # an outer layer may have read (and cached) the body already
        body += await request.read()
        if len(body) > limit:
            raise BodyTooLargeError(limit)
    return bytes(body)


async def parse_form(request: web.Request) -> MultiDictProxy[str]:
    """The form's fields (names may repeat), decoded as UTF-8.

    Raises:
        BodyTooLargeError: over MAX_FORM_BYTES.
        FormError: another content type (multipart included), another charset, invalid UTF-8 or percent-encoding
            of invalid UTF-8, or more than MAX_FORM_FIELDS fields.
    """
    if request.content_type != FORM_TYPE:
        raise FormError(f"the body must be {FORM_TYPE}")
    if (request.charset or "utf-8").lower() != "utf-8":
        raise FormError("the form must be UTF-8")
    body = await read_body(request, MAX_FORM_BYTES)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise FormError("the form must be UTF-8") from None
    except ValueError:  # "Max number of fields exceeded"
        raise FormError(f"a form has at most {MAX_FORM_FIELDS} fields") from None
    return MultiDictProxy(MultiDict(pairs))


async def read_form(request: web.Request) -> MultiDictProxy[str] | None:
    """The parsed form, or None when it cannot be read (pages answer with an error page then)."""
    try:
        return await parse_form(request)
    except (BodyTooLargeError, FormError):
        return None
