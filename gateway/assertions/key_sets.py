"""Public JWK sets the gateway trusts for signed assertions: inline (YAML, `clients add --jwks-file`) or fetched
from a URL (a client's `jwks_uri`, an enterprise IdP's `jwks_uri` or discovery), cached, refetched when a JWT names
a key the cached set lacks (rotation) at most every JWKS_MIN_REFRESH seconds, so forged `kid`s cannot make the
gateway hammer the issuer. Fetched over https (plain http only on loopback), no redirects, bounded answers, one
fetch per URL at a time; a failed fetch is remembered FAILURE_SECONDS (anyone can ask /token to fetch a client's
keys: an outage there must not become a queue here), and keys fetched before keep serving for STALE_SECONDS while
their URL fails."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from joserfc.jwk import KeySet

from gateway.assertions.jwk_rules import key_set_problem
from gateway.config.upstream_auth import endpoint_problem
from gateway.upstream_oauth.http import UpstreamOAuthError, call_json, oauth_session

JWKS_TTL = 3600
JWKS_MIN_REFRESH = 30
FETCH_TIMEOUT = 5.0
FAILURE_SECONDS = 30
STALE_SECONDS = 24 * 3600


class KeySetError(Exception):
    """No usable key set: the message names the URL and the reason, never a key. `transient`: the issuer is down
    (unreachable, a timeout, a 5xx), not saying that there is nothing there."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def import_key_set(document: Any, where: str) -> KeySet:
    """`document` as a KeySet.

    Raises:
        KeySetError: not a public JWK set for signatures (key_set_problem), or keys that do not import.
    """
    problem = key_set_problem(document)
    if problem is not None:
        raise KeySetError(f"{where}: {problem}")
    try:
        return KeySet.import_key_set(document)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise KeySetError(f"{where}: the JWK set does not import ({type(exc).__name__})") from None


def parse_inline(value: str | dict[str, Any], where: str) -> KeySet:
    """An inline key set (a JSON text or an object)."""
    try:
        document = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        raise KeySetError(f"{where}: not JSON") from None
    return import_key_set(document, where)


@dataclass(slots=True)
class _Entry:
    """What one URL gave: its value (keys or a document) or the reason it failed, and when the fetch started."""

    started: float
    value: Any = None
    failure: str | None = None
    transient: bool = False  # unreachable, a timeout, a 5xx: the issuer is down, not saying "no keys"


class KeySetCache:
    """Key sets and metadata documents fetched from URLs, shared by every use of the same URL in this process.

    Per URL: the last good value (kept for JWKS_TTL) and the last answer; one fetch at a time, and whoever waited
    for it takes its outcome when it started no earlier than they asked. A failure is answered from memory for
    FAILURE_SECONDS; while it is transient (the issuer is down) the last good keys keep verifying for up to
    STALE_SECONDS; a definitive answer (404, 410, a 200 without usable keys) drops them at once."""

    def __init__(
        self,
        *,
        ttl: float = JWKS_TTL,
        failure_seconds: float = FAILURE_SECONDS,
        stale_seconds: float = STALE_SECONDS,
        min_refresh: float = JWKS_MIN_REFRESH,
    ) -> None:
        self._ttl, self._failure_seconds, self._stale_seconds = ttl, failure_seconds, stale_seconds
        self._min_refresh = min_refresh
        self._http: aiohttp.ClientSession | None = None
        self._good: dict[str, _Entry] = {}
        self._last: dict[str, _Entry] = {}
        self._forced: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def keys(self, url: str, *, force: bool = False) -> KeySet:
        """The key set at `url`: cached for JWKS_TTL; `force` (an unknown kid) refetches unless done lately.

        Raises:
            KeySetError: unreachable, an error status, no JSON, or no public JWK set (and no keys to fall back on).
        """
        keys: KeySet = await self._value(url, "JWK set", force=force, parse=_key_set(url))
        return keys

    async def document(self, url: str, what: str) -> dict[str, Any]:
        """A JSON object at `url` (an issuer's metadata), cached for JWKS_TTL.

        Raises:
            KeySetError: as for `keys`.
        """
        document: dict[str, Any] = await self._value(url, what, force=False, parse=lambda d: d)
        return document

    def refuse(self, url: str, reason: str) -> None:
        """A fetched document turned out unusable: answered as a failure (FAILURE_SECONDS), no longer served."""
        self._good.pop(url, None)
        self._last[url] = _Entry(time.monotonic(), failure=reason)

    async def _value(self, url: str, what: str, *, force: bool, parse: Any) -> Any:
        asked = time.monotonic()
        good, seen = self._good.get(url), self._last.get(url)
        wants_new = force and asked - self._forced.get(url, -self._min_refresh) >= self._min_refresh
        if good is not None and not wants_new and asked - good.started < self._ttl:
            return good.value
        async with self._locks.setdefault(url, asyncio.Lock()):
            last = self._last.get(url)
            # another's fetch that ended while we waited is ours too; for a new kid only one that began after we asked
            shared = last is not None and last is not seen and (not wants_new or last.started >= asked)
            failing = last is not None and last.failure is not None and asked - last.started < self._failure_seconds
            if last is None or not (shared or failing):
                if wants_new:
                    self._forced[url] = time.monotonic()
                last = self._last[url] = await self._fetch(url, what, parse)
                if last.failure is None:
                    self._good[url] = last
                elif not last.transient:
                    self._good.pop(url, None)  # the issuer says these keys are gone
        if last.failure is None:
            return last.value
        good = self._good.get(url)
        if last.transient and good is not None and time.monotonic() - good.started < self._stale_seconds:
            return good.value  # the issuer is down: the keys it published lately still verify
        raise KeySetError(last.failure, transient=last.transient)

    async def _fetch(self, url: str, what: str, parse: Any) -> _Entry:
        started = time.monotonic()
        problem = endpoint_problem(url, allow_query=True)
        if problem is not None:
            return _Entry(started, failure=f"the {what} URL {url}: {problem}")
        if self._http is None:
            self._http = oauth_session()
        try:
            status, body, _ = await call_json(
                self._http, "GET", url, timeout=FETCH_TIMEOUT, what=what, headers={"Accept": "application/json"}
            )
        except UpstreamOAuthError as exc:
            return _Entry(started, failure=str(exc), transient=True)
        if status != 200:
            return _Entry(started, failure=f"the {what} at {url} answered {status}", transient=status >= 500)
        if not isinstance(body, dict):
            return _Entry(started, failure=f"the {what} at {url} is not a JSON object")
        try:
            return _Entry(started, value=parse(body))
        except KeySetError as exc:
            return _Entry(started, failure=str(exc))


def _key_set(url: str) -> Any:
    return lambda document: import_key_set(document, f"the JWK set at {url}")
