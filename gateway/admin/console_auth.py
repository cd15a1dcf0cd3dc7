"""Who may use the admin console: a browser session started by presenting `admin.token` on the sign-in form (or by a
verified client certificate, admin.tls.client_ca_file), held in this process's memory.

The session cookie is `__Host-mcpgw-admin` (Secure, HttpOnly, SameSite=Strict, Path=/); only its SHA-256 is kept,
with the session's CSRF token and deadline. Sessions last `SESSION_SECONDS` and at most `MAX_SESSIONS` exist (the
oldest goes first); they end with the process, and with a change of `admin.token` (each remembers the digest of
the token it was started with). Sign-in attempts are limited per client address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from aiohttp import web

SESSION_COOKIE = "__Host-mcpgw-admin"
LOGIN_COOKIE = "__Host-mcpgw-admin-login"  # the sign-in form's CSRF token (double submit), before any session
SESSION_SECONDS = 8 * 3600
MAX_SESSIONS = 64
ATTEMPTS_PER_MINUTE = 10  # failed sign-ins per client address
_ATTEMPT_ADDRESSES = 1024


@dataclass(slots=True)
class ConsoleSession:
    actor: str  # "token" or "certificate:<CN>"
    csrf: str
    expires: float
    token_digest: bytes  # of the admin.token it was started with ("" for a certificate)


class ConsoleSessions:
    """The console's sessions and failed sign-ins, bounded."""

    def __init__(self) -> None:
        self._sessions: OrderedDict[bytes, ConsoleSession] = OrderedDict()
        self._by_certificate: OrderedDict[str, str] = OrderedDict()  # actor -> its session's cookie value
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def start(self, actor: str, token_digest: bytes) -> tuple[str, ConsoleSession]:
        value = secrets.token_urlsafe(32)
        session = ConsoleSession(actor, secrets.token_urlsafe(32), time.monotonic() + SESSION_SECONDS, token_digest)
        self._sessions[_digest(value)] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return value, session

    def for_certificate(self, actor: str, token_digest: bytes) -> tuple[str, ConsoleSession]:
        """The one session of a certificate's holder (made at its first request): a page fetched again and again
        without the cookie (SameSite=Strict keeps it off cross-site navigations) never crowds out other sessions."""
        held = self._by_certificate.get(actor)
        if held is not None:
            session = self._sessions.get(_digest(held))
            if session is not None and session.expires > time.monotonic():
                return held, session
        value, session = self.start(actor, token_digest)
        self._by_certificate[actor] = value
        while len(self._by_certificate) > MAX_SESSIONS:
            self._by_certificate.popitem(last=False)
        return value, session

    def find(self, request: web.Request, token_digest: bytes) -> ConsoleSession | None:
        value = request.cookies.get(SESSION_COOKIE)
        if not value or len(value) > 128:
            return None
        key = _digest(value)
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires < time.monotonic() or not hmac.compare_digest(session.token_digest, token_digest):
            del self._sessions[key]
            return None
        return session

    def end(self, request: web.Request) -> None:
        value = request.cookies.get(SESSION_COOKIE)
        if value and len(value) <= 128:
            self._sessions.pop(_digest(value), None)

    def may_try(self, address: str) -> bool:
        recent = self._failures.get(address)
        now = time.monotonic()
        while recent and recent[0] < now - 60:
            recent.popleft()
        return recent is None or len(recent) < ATTEMPTS_PER_MINUTE

    def failed(self, address: str) -> None:
        self._failures.setdefault(address, deque()).append(time.monotonic())
        self._failures.move_to_end(address)
        while len(self._failures) > _ATTEMPT_ADDRESSES:
            self._failures.popitem(last=False)


def token_digest(token: str | None) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest() if token is not None else b""


def token_matches(presented: str, expected: str | None) -> bool:
    """Constant time whatever the lengths: digests are compared, never the values."""
    if expected is None or not presented:
        return False
    given = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
    return hmac.compare_digest(given, token_digest(expected))


def csrf_matches(session: ConsoleSession | None, submitted: object) -> bool:
    return (
        session is not None
        and isinstance(submitted, str)
        and hmac.compare_digest(submitted.encode("utf-8", "surrogateescape"), session.csrf.encode())
    )


def set_cookie(response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="Strict")


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()
