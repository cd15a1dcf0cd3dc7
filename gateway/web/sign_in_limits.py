"""Limits on local password sign-ins (OWASP ASVS 2.2.1, NIST SP 800-63B §5.2.2): per client IP, and failed
attempts per (user name, client IP) (`rate_limits.failed_sign_ins`) under a ceiling per user name from all
addresses of `NAME_CEILING_FACTOR` times that limit. So one address cannot lock a name out for its owner at
another address, and a guesser spread over many addresses still gets a bounded number of tries at one account.
All are GCRA buckets in Redis (atomic, shared by every gateway instance), taken through `gateway.limiter`.

An attempt takes a cell of both of its name's buckets before the password is checked (so parallel guesses are
counted too) and a successful sign-in gives them back: only failures count. Unknown names are counted exactly
like existing ones (no user enumeration)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from aiohttp import web

from gateway.accounts import USER_NAME
from gateway.app_state import LIMITER_KEY, SETTINGS_KEY
from gateway.limiter import Bucket
from gateway.web.client_ip import client_ip

LOGIN_ATTEMPTS_PER_MINUTE = 10  # per client IP, sign-in and sign-up together
NAME_CEILING_FACTOR = 10  # failed sign-ins of one name from all addresses: this many times the per-address limit
_NAME_BUCKET = "failed_sign_in"


@dataclass(frozen=True)
class Attempt:
    """A charged attempt at one name; `undo` gives its cells back (a success, or an attempt never judged)."""

    subject: str | None = None
    entries: tuple[Bucket, ...] = ()  # charged one cell each
    receipt: tuple[int, ...] = ()  # what `RateLimiter.refund` needs to give them back


async def too_many_from_this_address(request: web.Request) -> bool:
    bucket = ("login", LOGIN_ATTEMPTS_PER_MINUTE, 60.0)
    return await request.app[LIMITER_KEY].take(client_ip(request), [bucket], reserve=False) > 0


async def charge_attempt(request: web.Request, username: str) -> Attempt | float:
    """The attempt, charged to `username`'s failed-sign-in bucket; or the seconds to wait when it is spent."""
    limit = request.app[SETTINGS_KEY].rate_limits.failed_sign_ins
    if limit is None or not USER_NAME.match(username):  # no account can have this name: the IP limit covers it
        return Attempt()
    subject = f"name:{username}"  # one hash tag: both buckets are taken atomically, also on a cluster
    entries = (
        (f"{_NAME_BUCKET}:from:{client_ip(request)}", limit.limit, limit.period),
        (_NAME_BUCKET, limit.limit * NAME_CEILING_FACTOR, limit.period),
    )
    receipt: list[int] = []
    wait = await request.app[LIMITER_KEY].take(subject, entries, receipt=receipt)
    return wait if wait > 0 else Attempt(subject, entries, tuple(receipt))


async def undo(request: web.Request, attempt: Attempt) -> None:
    if attempt.subject is None:
        return
    await request.app[LIMITER_KEY].refund(attempt.subject, attempt.entries, attempt.receipt)


def retry_after(wait: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait)))}
