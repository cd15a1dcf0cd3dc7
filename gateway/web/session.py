"""The gateway's login session: an opaque cookie, a server-side record in Redis, a CSRF token per session.

Cookie: `__Host-mcpgw_session` with Secure when public_url is https (plain `mcpgw_session` on http, where
browsers would drop Secure cookies), always HttpOnly, SameSite=Lax, Path=/. Idle expiry slides in Redis;
the absolute limit is checked against the record's creation time. Login rotates the session id.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from aiohttp import web

from gateway.access import AccessPolicy
from gateway.app_state import CLOCK_KEY, SETTINGS_KEY, STORE_KEY
from gateway.oauth.token_values import hash_token
from gateway.store.records import BrowserSessionRecord, Principal

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


@dataclass(frozen=True)
class BrowserSession:
    session_id: str
    record: BrowserSessionRecord

    @property
    def session_hash(self) -> str:
        return hash_token(self.session_id)


def cookie_name(request: web.Request) -> str:
    return "__Host-mcpgw_session" if _secure(request) else "mcpgw_session"


async def load_session(request: web.Request) -> BrowserSession | None:
    session_id = request.cookies.get(cookie_name(request))
    if not session_id or not SESSION_ID.match(session_id):  # only the shape we issue (any other is nobody's)
        return None
    oauth = request.app[SETTINGS_KEY].oauth
    record = await request.app[STORE_KEY].load_browser_session(hash_token(session_id), oauth.session_idle_ttl)
    if record is None or request.app[CLOCK_KEY]() - record.created_at > oauth.session_max_age:
        return None
    return BrowserSession(session_id, record)


async def start_session(
    request: web.Request,
    response: web.StreamResponse,
    principal: Principal | None,
    *,
    replacing: BrowserSession | None = None,
) -> BrowserSession:
    """A new session (anonymous, or logged in after a password check); the old one is deleted."""
    store, oauth, now = request.app[STORE_KEY], request.app[SETTINGS_KEY].oauth, request.app[CLOCK_KEY]()
    if replacing is not None:
        await store.delete_browser_session(replacing.session_hash)
    session = BrowserSession(
        secrets.token_urlsafe(32),
        BrowserSessionRecord(
            csrf=secrets.token_urlsafe(32),
            principal=principal,
            created_at=now,
            authenticated_at=now if principal else None,
        ),
    )
    await store.save_browser_session(
        session.session_hash, session.record, oauth.session_idle_ttl, max_age=oauth.session_max_age
    )
    response.set_cookie(
        cookie_name(request),
        session.session_id,
        max_age=oauth.session_max_age,
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="Lax",
    )
    return session


async def signed_in(request: web.Request, session: BrowserSession) -> Principal | None:
    """Who this session is, as they stand now; None when nobody signed in, or the sign-in must be renewed (older
    than login.identity_max_age, or the local account is gone): the session then counts as signed out."""
    if session.record.principal is None:
        return None
    policy = AccessPolicy(request.app[SETTINGS_KEY], request.app[STORE_KEY])
    return await policy.refreshed(session.record.principal, now=request.app[CLOCK_KEY]())


def csrf_ok(session: BrowserSession | None, submitted: str | None) -> bool:
    return (
        session is not None
        and bool(submitted)
        and secrets.compare_digest(session.record.csrf.encode(), (submitted or "").encode())
    )  # bytes: any input


def _secure(request: web.Request) -> bool:
    return request.app[SETTINGS_KEY].public_url.startswith("https://")
