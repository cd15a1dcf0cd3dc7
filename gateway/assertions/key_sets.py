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
from typing import Any

import aiohttp
from joserfc.jwk import KeySet

from gateway.assertions.jwk_rules import key_set_problem
from gateway.config.upstream_auth import endpoint_problem
from gateway.upstream_oauth.http import UpstreamOAuthError, get_document, oauth_session

JWKS_TTL = 3600
JWKS_MIN_REFRESH = 30
FETCH_TIMEOUT = 5.0
FAILURE_SECONDS = 30
STALE_SECONDS = 24 * 3600


class KeySetError(Exception):
    """No usable key set: the message names the URL and the reason, never a key."""


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


class KeySetCache:
    """Key sets and metadata documents fetched from URLs, shared by every use of the same URL in this process."""

    def __init__(self) -> None:
        self._http: aiohttp.ClientSession | None = None
        self._sets: dict[str, tuple[KeySet, float]] = {}
        self._documents: dict[str, tuple[dict[str, Any], float]] = {}
        self._failed: dict[str, tuple[str, float]] = {}
        self._forced: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def keys(self, url: str, *, force: bool = False) -> KeySet:
        """The key set at `url`: cached for JWKS_TTL; `force` (an unknown kid) refetches unless done lately.

        Raises:
            KeySetError: unreachable, an error status, no JSON, or no public JWK set (and no keys of before).
        """
        stamp = time.monotonic()
        cached = self._sets.get(url)
        refetch = force and stamp - self._forced.get(url, -JWKS_MIN_REFRESH) >= JWKS_MIN_REFRESH
        if cached is not None and not refetch and stamp - cached[1] < JWKS_TTL:
            return cached[0]
        if refetch:
            self._forced[url] = stamp
        try:
            document = await self._fetch(url, "JWK set", fresh=lambda: self._fresh_keys(url, stamp))
        except KeySetError:
            if cached is not None and stamp - cached[1] < STALE_SECONDS:
                return cached[0]  # the issuer is down: the keys it published lately still verify
            raise
        if isinstance(document, KeySet):
            return document
        try:
            keys = import_key_set(document, f"the JWK set at {url}")
        except KeySetError as exc:
            self._failed[url] = (str(exc), time.monotonic())
            raise
        self._sets[url] = (keys, time.monotonic())
        return keys

    async def document(self, url: str, what: str) -> dict[str, Any]:
        """A JSON object at `url` (an issuer's metadata), cached for JWKS_TTL.

        Raises:
            KeySetError: as for `keys`.
        """
        cached = self._documents.get(url)
        if cached is not None and time.monotonic() - cached[1] < JWKS_TTL:
            return cached[0]
        document = await self._fetch(url, what, fresh=lambda: None)
        assert isinstance(document, dict)
        self._documents[url] = (document, time.monotonic())
        return document

    def forget(self, url: str) -> None:
        """Drop a cached document that turned out unusable (it is fetched again next time)."""
        self._documents.pop(url, None)

    def _fresh_keys(self, url: str, since: float) -> KeySet | None:
        cached = self._sets.get(url)
        return cached[0] if cached is not None and cached[1] >= since else None

    async def _fetch(self, url: str, what: str, *, fresh: Any) -> dict[str, Any] | KeySet:
        """One fetch per URL at a time; whoever waited for another's fetch takes its result (`fresh`) or its
        failure; a failure is answered from memory for FAILURE_SECONDS."""
        async with self._locks.setdefault(url, asyncio.Lock()):
            if (done := fresh()) is not None:
                return done  # type: ignore[no-any-return]
            failed = self._failed.get(url)
            if failed is not None and time.monotonic() - failed[1] < FAILURE_SECONDS:
                raise KeySetError(failed[0])
            try:
                return await self._get(url, what)
            except KeySetError as exc:
                self._failed[url] = (str(exc), time.monotonic())
                raise

    async def _get(self, url: str, what: str) -> dict[str, Any]:
        problem = endpoint_problem(url, allow_query=True)
        if problem is not None:
            raise KeySetError(f"the {what} URL {url}: {problem}")
        if self._http is None:
            self._http = oauth_session()
        try:
            return await get_document(self._http, url, timeout=FETCH_TIMEOUT, what=what)
        except UpstreamOAuthError as exc:
            raise KeySetError(str(exc)) from None
