"""Limits on local password sign-ins (OWASP ASVS 2.2.1, NIST SP 800-63B §5.2.2): per client IP, and failed
attempts per (user name, client IP) (`rate_limits.failed_sign_ins`) under a ceiling per user name from all
addresses of `NAME_CEILING_FACTOR` times that limit. So one address cannot lock a name out for its owner at
another address, and a guesser spread over many addresses still gets a bounded number of tries at one account.
All are GCRA buckets in Redis (atomic, shared by every gateway instance).

An attempt takes a cell of both of its name's buckets before the password is checked (so parallel guesses are
counted too) and a successful sign-in gives them back: only failures count. Unknown names are counted exactly
like existing ones (no user enumeration)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from aiohttp import web

from gateway.accounts import USER_NAME
from gateway.app_state import SETTINGS_KEY, STORE_KEY
from gateway.web.client_ip import client_ip

LOGIN_ATTEMPTS_PER_MINUTE = 10  # per client IP, sign-in and sign-up together
NAME_CEILING_FACTOR = 10  # failed sign-ins of one name from all addresses: this many times the per-address limit
_NAME_BUCKET = "failed_sign_in"


@dataclass(frozen=True)
class Attempt:
    """A charged attempt at one name; `undo` gives its cells back (a success, or an attempt never judged)."""

    subject: str | None = None
    entries: tuple[tuple[str, int, float], ...] = ()  # (bucket, limit, period) charged one cell each
    untils_ms: tuple[int, ...] = ()


async def too_many_from_this_address(request: web.Request) -> bool:
    store = request.app[STORE_KEY]
    return await store.hit_rate_limit(client_ip(request), "login", LOGIN_ATTEMPTS_PER_MINUTE, 60)


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
    wait, _, untils = await request.app[STORE_KEY].take_cells(subject, [(*entry, 1) for entry in entries])
    return wait if wait > 0 else Attempt(subject, entries, tuple(untils))


async def undo(request: web.Request, attempt: Attempt) -> None:
    if attempt.subject is None:
        return
    store = request.app[STORE_KEY]
    for (bucket, limit, period), until_ms in zip(attempt.entries, attempt.untils_ms, strict=True):
        await store.refund_cells(attempt.subject, bucket, limit, period, 1, until_ms)


def retry_after(wait: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait)))}
