"""Limits on local password sign-ins (OWASP ASVS 2.2.1, NIST SP 800-63B §5.2.2): per client IP, and failed
attempts per user name (`rate_limits.failed_sign_ins`), so a guesser spread over many addresses still gets only
a few tries at one account. Both are GCRA buckets in Redis (atomic, shared by every gateway instance).

An attempt takes a cell of its name's bucket before the password is checked (so parallel guesses are counted
too) and a successful sign-in gives it back: only failures count. Unknown names are counted exactly like
existing ones (no user enumeration)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from aiohttp import web

from gateway.accounts import USER_NAME
from gateway.keys import SETTINGS_KEY, STORE_KEY
from gateway.web.client_ip import client_ip

LOGIN_ATTEMPTS_PER_MINUTE = 10  # per client IP, sign-in and sign-up together
_BUCKET = "failed_sign_in"


@dataclass(frozen=True)
class Attempt:
    """A charged attempt at one name; `undo` gives its cell back (a success, or an attempt never judged)."""

    subject: str | None = None
    until_ms: int = 0


async def too_many_from_this_address(request: web.Request) -> bool:
    store = request.app[STORE_KEY]
    return await store.hit_rate_limit(client_ip(request), "login", LOGIN_ATTEMPTS_PER_MINUTE, 60)


async def charge_attempt(request: web.Request, username: str) -> Attempt | float:
    """The attempt, charged to `username`'s failed-sign-in bucket; or the seconds to wait when it is spent."""
    limit = request.app[SETTINGS_KEY].rate_limits.failed_sign_ins
    if limit is None or not USER_NAME.match(username):  # no account can have this name: the IP limit covers it
        return Attempt()
    subject = f"name:{username}"
    wait, _, untils = await request.app[STORE_KEY].take_cells(subject, [(_BUCKET, limit.limit, limit.period, 1)])
    return wait if wait > 0 else Attempt(subject, untils[0])


async def undo(request: web.Request, attempt: Attempt) -> None:
    limit = request.app[SETTINGS_KEY].rate_limits.failed_sign_ins
    if attempt.subject is None or limit is None:
        return
    store = request.app[STORE_KEY]
    await store.refund_cells(attempt.subject, _BUCKET, limit.limit, limit.period, 1, attempt.until_ms)


def retry_after(wait: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait)))}
