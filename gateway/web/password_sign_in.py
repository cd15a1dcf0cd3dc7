"""Local accounts at `/authorize`: the password sign-in form and optional self sign-up (login.local,
login.signup). Both end like a provider sign-in: a new session (no fixation), then consent or the code.

Attempts are limited per address and failed ones per user name (gateway.web.sign_in_limits); argon2 runs off
the event loop, and when too many hashes are in flight the page says so (503) instead of queueing them."""

from __future__ import annotations

import secrets

from aiohttp import web

from gateway.access import local_names_in_rules
from gateway.accounts import AccountError, add_user, principal_of, signup_problem, verify_login
from gateway.app_state import CLOCK_KEY, SETTINGS_KEY, STORE_KEY
from gateway.passwords import PasswordWorkBusyError
from gateway.store.records import ClientRecord, PendingAuthorizationRecord, UserRecord
from gateway.web.approval import consent_or_approve, with_cookies
from gateway.web.auditing import audit
from gateway.web.authorize import PENDING_TTL, resolve_client
from gateway.web.authorize_pages import login_page
from gateway.web.forms import SIGN_IN_EXPIRED, PageRefusalError, page_refusals, pending_form
from gateway.web.render import html_error
from gateway.web.session import BrowserSession, start_session
from gateway.web.sign_in_limits import Attempt, charge_attempt, retry_after, too_many_from_this_address, undo


@page_refusals
async def handle_login(request: web.Request) -> web.StreamResponse:
    submitted = await pending_form(request)
    session, request_id, pending = submitted.session, submitted.request_id, submitted.pending
    client = await resolve_client(request, pending.client_id, request.app[CLOCK_KEY]())
    if client is None:
        return html_error("Unknown application", "This application is no longer registered.")
    username = (submitted.field("username") or "").strip()
    if await too_many_from_this_address(request):
        return login_page(
            request, session, request_id, client, username, "Too many attempts. Wait a minute.", status=429
        )
    if not request.app[SETTINGS_KEY].login.local:
        return html_error("Local accounts are off", "Sign in with one of the offered providers.", status=403)
    attempt = await charge_attempt(request, username)
    if not isinstance(attempt, Attempt):  # spent for this name from this address, or from all
        audit(request, "oauth.login", method="local", username=username[:64], outcome="rate_limited")
        page = login_page(
            request, session, request_id, client, username, "Too many failed sign-ins. Try again later.", status=429
        )
        page.headers.update(retry_after(attempt))
        return page
    try:
        user = await verify_login(request.app[STORE_KEY], username, submitted.field("password") or "")
    except PasswordWorkBusyError:
        await undo(request, attempt)  # not judged: it does not count
        return _busy_page()
    if user is None:
        audit(request, "oauth.login", method="local", username=username[:64], outcome="failed")
        return login_page(request, session, request_id, client, username, "Wrong username or password.", status=401)
    await undo(request, attempt)  # only failures count
    audit(request, "oauth.login", method="local", user=user.user_id, outcome="ok")
    return await _signed_in(request, session, request_id, pending, client, user)


@page_refusals
async def handle_signup(request: web.Request) -> web.StreamResponse:
    """POST /authorize/signup: self sign-up (login.signup.enabled), limited to the configured email domains."""
    settings = request.app[SETTINGS_KEY]
    is_open = settings.login.local and settings.login.signup.enabled
    closed = PageRefusalError("Sign-up is closed", "Ask an administrator for an account.", status=403)
    submitted = await pending_form(request, closed=None if is_open else closed)
    session, request_id, pending = submitted.session, submitted.request_id, submitted.pending
    store, now = request.app[STORE_KEY], request.app[CLOCK_KEY]()
    client = await resolve_client(request, pending.client_id, now)
    if client is None:
        raise PageRefusalError(*SIGN_IN_EXPIRED)
    if await too_many_from_this_address(request):
        return login_page(request, session, request_id, client, error="Too many attempts. Wait a minute.", status=429)
    username, email = (submitted.field("username") or "").strip(), (submitted.field("email") or "").strip()
    problem = signup_problem(email, settings.login.signup.email_domains)
    if problem is None and (
        username.casefold() in local_names_in_rules(settings)  # meant for someone the operator will create
        or await store.user_was_removed(username)  # a removed account's id stays retired
    ):
        problem = f"The name {username!r} is not available."
    if problem is None:
        try:
            user = await add_user(
                store, username, submitted.field("password") or "", email=email, now=now, email_verified=False
            )  # nobody confirmed the address
        except AccountError as exc:
            problem = str(exc)
        except PasswordWorkBusyError:
            return _busy_page()
    if problem is not None:
        return login_page(request, session, request_id, client, username, problem, status=400)
    return await _signed_in(request, session, request_id, pending, client, user)


async def _signed_in(
    request: web.Request,
    session: BrowserSession,
    request_id: str,
    pending: PendingAuthorizationRecord,
    client: ClientRecord,
    user: UserRecord,
) -> web.Response:
    """A new session for `user` (the old id dies: no session fixation), the parked request moved onto it under a
    new id, then consent or the code."""
    store, now = request.app[STORE_KEY], request.app[CLOCK_KEY]()
    response = web.Response()  # carries the new session cookie onto the final page
    principal = principal_of(user, now=now)
    fresh = await start_session(request, response, principal, replacing=session)
    await store.consume_pending(request_id)
    request_id = secrets.token_urlsafe(24)
    pending = pending.model_copy(update={"session_hash": fresh.session_hash})
    await store.save_pending(request_id, pending, PENDING_TTL)
    return with_cookies(await consent_or_approve(request, fresh, request_id, pending, client, principal), response)


def _busy_page() -> web.Response:
    page = html_error("Busy", "Too many sign-ins at once. Try again in a moment.", status=503)
    page.headers["Retry-After"] = "1"
    return page
