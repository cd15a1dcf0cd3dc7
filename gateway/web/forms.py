"""Forms are `application/x-www-form-urlencoded` only (RFC 6749 §3.2 and Appendix B; HTML forms' default).
Multipart is refused: nothing we serve needs it, and its parser is a large surface for malformed input. The body
was read and bounded before the handler (gateway.web.body); a malformed one is an error value, never a 500.

The /authorize pages' forms (sign-in, sign-up, provider choice, consent) share one preamble, `pending_form`:
form -> session -> CSRF -> the parked request, bound to that session. Its refusals are one exception type,
rendered as the HTML error page by `page_refusals`."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from gateway.app_state import STORE_KEY
from gateway.store.records import PendingAuthorizationRecord, Principal
from gateway.web.render import html_error
from gateway.web.session import BrowserSession, csrf_ok, load_session, signed_in

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


class PageRefusalError(Exception):
    """A page form refused before its handler acts; `page_refusals` shows it as the HTML error page."""

    def __init__(self, title: str, detail: str, *, status: int = 400) -> None:
        super().__init__(title)
        self.title, self.detail, self.status = title, detail, status

    def page(self) -> web.Response:
        return html_error(self.title, self.detail, status=self.status)


UNREADABLE = ("Unreadable form", "The form could not be read. Start again from the application.")
SESSION_EXPIRED = ("Session expired", "Your sign-in session expired or the form was not ours.")
SIGN_IN_EXPIRED = ("Request expired", "This sign-in request expired. Start again from the application.")
AUTHORIZATION_EXPIRED = ("Request expired", "This authorization request expired. Start again from the application.")


@dataclass(frozen=True)
class PendingForm:
    """A page form that passed the preamble: its session's CSRF token matched and its request is that session's."""

    fields: MultiDictProxy[str]
    session: BrowserSession
    request_id: str
    pending: PendingAuthorizationRecord
    principal: Principal | None = None  # who is signed in, as they stand now (the consent form only)

    def field(self, name: str) -> str | None:
        return form_field(self.fields, name)


async def pending_form(
    request: web.Request, *, consent: bool = False, closed: PageRefusalError | None = None
) -> PendingForm:
    """The preamble of every /authorize page form.

    `consent=True` is the request's last step: the session must be signed in unless the form names a provider
    (consent is given before a provider sign-in), and the request is consumed (single use) rather than loaded.
    `closed` refuses a page that is switched off, once the form was read (the order the pages always had).

    Raises:
        PageRefusalError: an unreadable form, no session or a CSRF mismatch (403), or a request that expired or
            belongs to another session.
    """
    form = await read_form(request)
    if form is None:
        raise PageRefusalError(*UNREADABLE)
    if closed is not None:
        raise closed
    session = await load_session(request)
    if not csrf_ok(session, form_field(form, "csrf_token")) or session is None:
        raise PageRefusalError(*SESSION_EXPIRED, status=403)
    principal = await signed_in(request, session) if consent else None
    if consent and principal is None and not form_field(form, "provider"):
        raise PageRefusalError(*SESSION_EXPIRED, status=403)
    store, request_id = request.app[STORE_KEY], form_field(form, "request_id") or ""
    pending = await (store.consume_pending(request_id) if consent else store.load_pending(request_id))
    if pending is None or pending.session_hash != session.session_hash:
        raise PageRefusalError(*(AUTHORIZATION_EXPIRED if consent else SIGN_IN_EXPIRED))
    return PendingForm(form, session, request_id, pending, principal)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page_refusals(handler: Handler) -> Handler:
    """A PageRefusalError raised by the handler becomes its HTML error page."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except PageRefusalError as refusal:
            return refusal.page()

    return wrapped


def form_field(form: object, name: str) -> str | None:
    value = form.get(name) if hasattr(form, "get") else None
    return value if isinstance(value, str) else None
