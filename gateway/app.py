"""Application factory: settings in, a ready aiohttp Application out."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway.app_state import (
    ASSERTIONS_KEY,
    AUDIT_KEY,
    CLIENTS_KEY,
    CLOCK_KEY,
    CONNECTOR_KEY,
    DIGESTER_KEY,
    DPOP_KEY,
    EVENT_IDS_KEY,
    HTTP_KEY,
    LIMITER_KEY,
    MCP_KEY,
    METRICS_KEY,
    PROVIDERS_KEY,
    ROUTES_KEY,
    SETTINGS_KEY,
    SIGNER_KEY,
    STDIO_HOSTS_KEY,
    STORE_KEY,
    STREAMS_KEY,
    TOKEN_CACHE_KEY,
    TRACING_KEY,
)
from gateway.assertions.verifier import Assertions
from gateway.audit import ArgumentDigester, AuditLog
from gateway.clients.cimd import CimdFetcher
from gateway.clients.registry import ClientRegistry
from gateway.config import Settings
from gateway.idp.registry import build_providers
from gateway.limiter import RateLimiter
from gateway.mcp.event_ids import EventIds
from gateway.metrics import Metrics
from gateway.open_streams import OpenStreams
from gateway.proxy.upstream import build_http_client
from gateway.routing import RouteTable
from gateway.signing import IdentitySigner
from gateway.stdio.host import StdioHosts
from gateway.store.base import Store
from gateway.store.open import describe_store, open_store
from gateway.token_cache import TokenCache, follow_revocations
from gateway.tracing import tracing_from_environment
from gateway.upstream_credentials import UpstreamCredentials
from gateway.upstream_oauth.connector import Connector
from gateway.vault import Vault
from gateway.web.body import bounded_body
from gateway.web.dpop import DpopChecker
from gateway.web.mcp import mcp_first
from gateway.web.mcp_state import McpEndpoint
from gateway.web.middleware import error_middleware
from gateway.web.ratelimit import oauth_rate_limit
from gateway.web.render import branded_pages
from gateway.web.routes import setup_routes
from gateway.web.traced_requests import traced_requests

logger = logging.getLogger("gateway")


def create_app(
    settings: Settings, *, clock: Callable[[], float] = time.time, store: Store | None = None
) -> web.Application:
    """Build the gateway. `store` and `clock` are seams for tests; by default the store follows settings."""
    tracing = tracing_from_environment()  # None unless OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT is set
    traced = [traced_requests(tracing)] if tracing is not None else []
    app = web.Application(
        middlewares=[
            mcp_first,
            *traced,
            branded_pages(settings.branding),
            error_middleware,
            oauth_rate_limit,
            bounded_body,
        ],
        client_max_size=settings.proxy.max_body_bytes,
    )
    app[TRACING_KEY] = tracing
    table = RouteTable(settings)
    app[SETTINGS_KEY] = settings
    app[CLOCK_KEY] = clock
    app[ROUTES_KEY] = table
    app[METRICS_KEY] = Metrics()
    app.cleanup_ctx.append(_audit_ctx)
    app.cleanup_ctx.append(_store_ctx(settings, store))
    app.cleanup_ctx.append(_http_ctx)
    app.cleanup_ctx.append(_clients_ctx)
    app.cleanup_ctx.append(_mcp_ctx)
    setup_routes(app, table)
    return app


def _store_ctx(settings: Settings, given: Store | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if given is not None:
            app[STORE_KEY] = given
            app[LIMITER_KEY] = RateLimiter(given)
            yield
            await app[LIMITER_KEY].close()
            return
        logger.info("store: %s", describe_store(settings.store))
        async with open_store(settings.store, watch=True) as store:
            app[STORE_KEY] = store
            app[LIMITER_KEY] = RateLimiter(store)
            yield
            await app[LIMITER_KEY].close()

    return ctx


async def _audit_ctx(app: web.Application) -> AsyncIterator[None]:
    app[AUDIT_KEY] = AuditLog(app[SETTINGS_KEY].audit)
    yield
    app[AUDIT_KEY].close()


async def _clients_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    fetcher = CimdFetcher(settings.cimd, settings.oauth.private_use_schemes) if settings.cimd.enabled else None
    app[CLIENTS_KEY] = ClientRegistry(settings, app[STORE_KEY], fetcher)
    app[PROVIDERS_KEY] = build_providers(settings.login.providers)
    app[SIGNER_KEY] = IdentitySigner(settings.identity_jwt, app[STORE_KEY], settings.public_url)
    app[DIGESTER_KEY] = ArgumentDigester(app[STORE_KEY])
    app[EVENT_IDS_KEY] = EventIds(app[STORE_KEY])
    app[ASSERTIONS_KEY] = Assertions(settings, app[STORE_KEY])
    app[DPOP_KEY] = DpopChecker(settings, app[STORE_KEY])
    connector = app[CONNECTOR_KEY] = Connector(
        app[STORE_KEY],
        Vault(settings.vault, app[STORE_KEY]),
        settings.public_url,
        app[METRICS_KEY].held_credentials,
        settings.vault.refresh_ahead_seconds,
        app[CLOCK_KEY],
    )
    for name, provider in app[PROVIDERS_KEY].items():
        connector.refreshers[name] = provider.token_client
    cache = app[TOKEN_CACHE_KEY] = TokenCache(settings.store.token_cache_seconds)
    streams = app[STREAMS_KEY] = OpenStreams()
    app[STORE_KEY].revocation_listeners.extend([cache.evict, streams.revoked])
    stop = asyncio.Event()
    # always on, cache or not: revocations elsewhere must also end this process's open streams
    follower = asyncio.ensure_future(follow_revocations(app[STORE_KEY], stop, cache, streams, app[CLOCK_KEY]))
    yield
    stop.set()
    try:
        await asyncio.wait_for(asyncio.shield(follower), timeout=2)  # ends at its next poll (≤ 0.2 s)
    except TimeoutError:
        follower.cancel()
    if fetcher is not None:
        await fetcher.close()
    for provider in app[PROVIDERS_KEY].values():
        await provider.close()
    await connector.close()
    await app[ASSERTIONS_KEY].close()


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    app[HTTP_KEY] = build_http_client(app[SETTINGS_KEY].proxy)
    settings = app[SETTINGS_KEY]
    hosts = StdioHosts(settings.routes, max_body_bytes=settings.proxy.max_body_bytes)  # command routes' upstreams
    app[STDIO_HOSTS_KEY] = hosts
    await hosts.start()
    yield
    await app[HTTP_KEY].close()
    await hosts.close()


async def _mcp_ctx(app: web.Application) -> AsyncIterator[None]:
    app[MCP_KEY] = McpEndpoint(
        settings=app[SETTINGS_KEY],
        routes=app[ROUTES_KEY],
        metrics=app[METRICS_KEY],
        audit=app[AUDIT_KEY],
        store=app[STORE_KEY],
        limiter=app[LIMITER_KEY],
        cache=app[TOKEN_CACHE_KEY],
        streams=app[STREAMS_KEY],
        event_ids=app[EVENT_IDS_KEY],
        signer=app[SIGNER_KEY],
        digester=app[DIGESTER_KEY],
        http=app[HTTP_KEY],
        clock=app[CLOCK_KEY],
        credentials=UpstreamCredentials(
            app[SIGNER_KEY], app[METRICS_KEY].upstream_credentials, app[CLOCK_KEY], held=app[CONNECTOR_KEY]
        ),
        connector=app[CONNECTOR_KEY],
        dpop=app[DPOP_KEY],
        tracing=app[TRACING_KEY],
    )
    yield
    await app[MCP_KEY].credentials.close()
    if app[TRACING_KEY] is not None:  # what is still buffered, exported (off the event loop: it blocks)
        await asyncio.to_thread(app[TRACING_KEY].shutdown)
