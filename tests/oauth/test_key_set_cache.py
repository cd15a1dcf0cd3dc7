"""The key sets /token checks assertions with (gateway.assertions.key_sets): one fetch per URL however many wait,
failures remembered briefly, the last good keys kept only while their issuer is down, never after it says they are
gone. A real aiohttp server on loopback plays the issuer; time is real (the windows are seconds apart)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc.jwk import ECKey

from gateway.assertions.key_sets import KeySetCache, KeySetError
from gateway.config.upstream_auth import internal_host


@dataclass
class Issuer:
    """What /jwks answers next: a status and a body, after `delay` seconds; every fetch counted."""

    status: int = 200
    body: Any = None
    delay: float = 0.0
    fetches: int = 0
    keys: list[ECKey] = field(default_factory=lambda: [ECKey.generate_key("P-256")])

    def publish(self) -> None:
        self.body = {"keys": [{**k.as_dict(private=False), "kid": k.thumbprint()} for k in self.keys]}


@pytest.fixture
async def issuer() -> AsyncIterator[tuple[Issuer, str]]:
    state = Issuer()
    state.publish()

    async def jwks(request: web.Request) -> web.Response:
        state.fetches += 1
        status, body = state.status, state.body  # (what the issuer had when the request came)
        await asyncio.sleep(state.delay)
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/jwks", jwks)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield state, str(server.make_url("/jwks"))
    await server.close()


def kids(keys: Any) -> set[str]:
    return {k.kid for k in keys.keys}


async def test_waiters_share_one_fetch(issuer):
    """Twenty requests for a cold URL make one fetch; all get its keys."""
    state, url = issuer
    state.delay = 0.2
    cache = KeySetCache()
    results = await asyncio.gather(*(cache.keys(url) for _ in range(20)))
    assert state.fetches == 1
    assert all(kids(r) == {state.keys[0].thumbprint()} for r in results)
    await cache.close()


async def test_a_failure_is_remembered_and_stale_keys_serve_only_while_the_issuer_is_down(issuer):
    """A 5xx (the issuer down) keeps the last good keys verifying; within FAILURE_SECONDS no second fetch; a 404 or
    a 200 without usable keys says they are gone: dropped at once, for every caller alike."""
    state, url = issuer
    cache = KeySetCache(ttl=0)  # (every call looks past the cached set's life)
    good = kids(await cache.keys(url))
    state.status = 503
    assert kids(await cache.keys(url)) == good  # down: the keys of before
    assert kids(await cache.keys(url)) == good
    assert state.fetches == 2  # the second call answered from the remembered failure
    await cache.close()
    cache = KeySetCache(ttl=0, failure_seconds=0)
    state.status = 200
    state.publish()
    await cache.keys(url)
    for status, body in ((404, {"error": "gone"}), (200, {"keys": []})):
        state.status, state.body = status, body
        for _ in range(3):
            with pytest.raises(KeySetError):
                await cache.keys(url)
        state.status = 200
        state.publish()
        assert kids(await cache.keys(url)) == good  # published again: used again
    await cache.close()


async def test_a_forced_refetch_does_not_take_an_older_fetchs_keys(issuer):
    """A refetch for an unknown kid that waits behind a fetch begun before it asked fetches again (that fetch cannot
    have seen the new key); the window between forced refetches counts only real fetches."""
    state, url = issuer
    cache = KeySetCache(ttl=0)
    await cache.keys(url)
    state.delay = 0.3
    routine = asyncio.ensure_future(cache.keys(url))  # a fetch in flight, of the old set
    await asyncio.sleep(0.1)
    state.keys.append(ECKey.generate_key("P-256"))
    state.publish()  # the new key appears while it is in flight
    state.delay = 0.0
    assert state.keys[1].thumbprint() in kids(await cache.keys(url, force=True))
    assert state.keys[1].thumbprint() not in kids(await routine)
    assert state.fetches == 3
    await cache.close()


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f000001", "10.1", "0177.0.0.1"])
def test_odd_ipv4_spellings_are_internal(host):
    """inet_aton's spellings of internal addresses are internal (the system's resolver would connect to them)."""
    assert internal_host(host)


def test_names_and_public_addresses_are_not_internal():
    assert not internal_host("example.com") and not internal_host("8.8.8.8")
