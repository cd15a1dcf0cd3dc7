"""Liveness, readiness (Redis reachable) and Prometheus metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.keys import METRICS_KEY, SIGNER_KEY, STORE_KEY
from gateway.store.base import StoreUnavailableError


async def handle_healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def handle_readyz(request: web.Request) -> web.Response:
    try:
        await request.app[STORE_KEY].ping()
    except StoreUnavailableError:
        return web.json_response({"status": "unavailable", "store": "unreachable"}, status=503,
                                 headers={"Retry-After": "5"})
    return web.json_response({"status": "ready"})


async def handle_metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_KEY].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def handle_jwks(request: web.Request) -> web.Response:
    """Public keys that verify the identity JWTs the gateway sends upstream."""
    return web.json_response(await request.app[SIGNER_KEY].jwks(),
                             headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})
