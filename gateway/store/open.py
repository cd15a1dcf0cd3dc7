"""Open the configured store: the Redis at `store.url`, or the embedded one under `store.data_dir`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.config import StoreSettings
from gateway.store.base import StoreUnavailableError
from gateway.store.embedded import start_embedded
from gateway.store.redis import RedisStore

logger = logging.getLogger("gateway")


def describe_store(settings: StoreSettings) -> str:
    """Where the data lives, without the URL's password."""
    if settings.url is None:
        return f"embedded Redis under {settings.data_dir.resolve()}"
    from urllib.parse import urlsplit

    parts = urlsplit(settings.url.get_secret_value())
    where = parts.path if parts.scheme == "unix" else parts.netloc.rsplit("@", 1)[-1] + parts.path  # (host lists)
    return f"Redis at {parts.scheme}://{where} (prefix {settings.key_prefix})"


@asynccontextmanager
async def open_store(settings: StoreSettings) -> AsyncIterator[RedisStore]:
    embedded = None
    if settings.url is None:
        embedded = await asyncio.to_thread(start_embedded, settings.data_dir)
        url = embedded.url
    else:
        url = settings.url.get_secret_value()
    store = RedisStore.from_url(url, settings.key_prefix, settings.timeout, settings.pool_size)
    try:
        await store.connect()
    except StoreUnavailableError as exc:  # the gateway still starts (503s, /readyz not ready) until Redis is back
        logger.warning("store not reachable at startup (%s); requests get 503 until it is", exc)
    try:
        yield store
    finally:
        await store.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
