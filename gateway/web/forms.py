"""Forms are `application/x-www-form-urlencoded` only (RFC 6749 §3.2 and Appendix B; HTML forms' default).
Multipart is refused: nothing we serve needs it, and its parser is a large surface for malformed input. The body
was read and bounded before the handler (gateway.web.body); a malformed one is an error value, never a 500."""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 32  # name=value pairs, repeats included


class FormError(Exception):
    """The body is not a readable form; the message is safe to show."""


async def parse_form(request: web.Request) -> MultiDictProxy[str]:
    """The form's fields (names may repeat), decoded as UTF-8.

    Raises:
        FormError: another content type (multipart included), another charset, invalid UTF-8 or percent-encoding
            of invalid UTF-8, or more than MAX_FORM_FIELDS fields.
    """
    if request.content_type != FORM_TYPE:
        raise FormError(f"the body must be {FORM_TYPE}")
    if (request.charset or "utf-8").lower() != "utf-8":
        raise FormError("the form must be UTF-8")
    body = await request.read()  # read and bounded once, by gateway.web.body.bounded_body
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        raise FormError("the form must be UTF-8") from None
    except ValueError:  # "Max number of fields exceeded"
        raise FormError(f"a form has at most {MAX_FORM_FIELDS} fields") from None
    return MultiDictProxy(MultiDict(pairs))


async def read_form(request: web.Request) -> MultiDictProxy[str] | None:
    """The parsed form, or None when it cannot be read (pages answer with an error page then)."""
    try:
        return await parse_form(request)
    except FormError:
        return None
