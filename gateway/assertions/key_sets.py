"""Public JWK sets the gateway trusts for signed assertions: inline (YAML, `clients add --jwks-file`) or fetched
from a URL (a client's `jwks_uri`, an enterprise IdP's `jwks_uri` or discovery), cached, refetched when a JWT names
a key the cached set lacks (rotation) at most every JWKS_MIN_REFRESH seconds, so forged `kid`s cannot make the
gateway hammer the issuer. Fetched over https (plain http only on loopback), no redirects, bounded answers."""

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
    """Key sets fetched from URLs, shared by every use of the same URL in this process."""

    def __init__(self) -> None:
        self._http: aiohttp.ClientSession | None = None
        self._sets: dict[str, tuple[KeySet, float]] = {}
        self._forced: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def keys(self, url: str, *, force: bool = False) -> KeySet:
        """The key set at `url`: cached for JWKS_TTL; `force` (an unknown kid) refetches unless done lately.

        Raises:
            KeySetError: unreachable, an error status, no JSON, or no public JWK set.
        """
        async with self._locks.setdefault(url, asyncio.Lock()):  # one fetch per URL at a time
            cached = self._sets.get(url)
            stamp = time.monotonic()
            refetch = force and stamp - self._forced.get(url, -JWKS_MIN_REFRESH) >= JWKS_MIN_REFRESH
            if cached is not None and not refetch and stamp - cached[1] < JWKS_TTL:
                return cached[0]
            if refetch:
                self._forced[url] = stamp
            keys = await self._fetch(url)
            self._sets[url] = (keys, stamp)
            return keys

    async def _fetch(self, url: str) -> KeySet:
        problem = endpoint_problem(url, allow_query=True)
        if problem is not None:
            raise KeySetError(f"the JWK set URL {url}: {problem}")
        if self._http is None:
            self._http = oauth_session()
        try:
            document = await get_document(self._http, url, timeout=FETCH_TIMEOUT, what="JWK set")
        except UpstreamOAuthError as exc:
            raise KeySetError(str(exc)) from None
        return import_key_set(document, f"the JWK set at {url}")
