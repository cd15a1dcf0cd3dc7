"""Open the configured store: the Redis at `store.url`, or the embedded one under `store.data_dir`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.config import StoreSettings
from gateway.store.embedded import start_embedded
from gateway.store.errors import StoreUnavailableError
from gateway.store.redis import RedisStore

logger = logging.getLogger("gateway")
RETRY_FIRST, RETRY_MAX = 1.0, 30.0  # seconds between looks at a store that was down at start (doubling)


def describe_store(settings: StoreSettings) -> str:
    """Where the data lives, without the URL's password."""
    if settings.url is None:
        return f"embedded Redis under {settings.data_dir.resolve()}"
    from urllib.parse import urlsplit

    parts = urlsplit(settings.url.get_secret_value())
    where = parts.path if parts.scheme == "unix" else parts.netloc.rsplit("@", 1)[-1] + parts.path  # (host lists)
    return f"Redis at {parts.scheme}://{where} (prefix {settings.key_prefix})"


@asynccontextmanager
async def open_store(settings: StoreSettings, *, watch: bool = False) -> AsyncIterator[RedisStore]:
    """The store, connected lazily: a Redis that is down is the caller's to report (the CLI pings and says so).

    `watch` (the gateway): look once at start; if the store is down, say so in one line and keep looking, with
    back-off, until it is back (one more line). Meanwhile requests that need it get 503 and /readyz fails.
    """
    embedded = None
    if settings.url is None:
        embedded = await asyncio.to_thread(start_embedded, settings.data_dir)
        url = embedded.url
    else:
        url = settings.url.get_secret_value()
    store = RedisStore.from_url(url, settings.key_prefix, settings.timeout, settings.pool_size)
    watcher = None
    if watch and (reason := await _unreachable(store)) is not None:
        logger.error(
            "store unreachable at start (%s: %s): requests that need it get 503 and /readyz fails until "
            "it is back; looking again in %.0fs, backing off to %.0fs",
            describe_store(settings),
            reason,
            RETRY_FIRST,
            RETRY_MAX,
        )
        watcher = asyncio.ensure_future(_until_reachable(store, describe_store(settings)))
    try:
        yield store
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await store.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


async def _unreachable(store: RedisStore) -> str | None:
    """Ping (and on a cluster read the slot map): None when reachable, else why not."""
    try:
        await store.connect()
        await store.ping()
    except StoreUnavailableError as exc:
        return unavailable_reason(exc)
    return None


def unavailable_reason(exc: StoreUnavailableError) -> str:
    """`ConnectionError: Error 111 connecting to 127.0.0.1:6379. Connection refused.` (the cause, when known)."""
    cause = exc.__cause__
    return f"{exc}: {cause}" if cause is not None and str(cause) else str(exc)


async def _until_reachable(store: RedisStore, where: str) -> None:
    delay = RETRY_FIRST
    while True:
        await asyncio.sleep(delay)
        if await _unreachable(store) is None:
            logger.info("store reachable again (%s)", where)
            return
        delay = min(delay * 2, RETRY_MAX)
