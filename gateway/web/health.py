"""Liveness, readiness (Redis reachable) and Prometheus metrics.

`/metrics` lives on a listener of its own (`listen.metrics_port`, loopback by default; `gateway.server`). The
public port serves it only when `listen.metrics_token` is set, and then only to that bearer token (RFC 6750 §2.1;
401 with a `WWW-Authenticate` challenge otherwise), as does the metrics listener.
"""

from __future__ import annotations

import hashlib
import secrets

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import SecretStr

from gateway.app_state import METRICS_KEY, SETTINGS_KEY, SIGNER_KEY, STORE_KEY
from gateway.store.errors import StoreUnavailableError


async def handle_healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def handle_readyz(request: web.Request) -> web.Response:
    try:
        await request.app[STORE_KEY].ping()
    except StoreUnavailableError:
        return web.json_response(
            {"status": "unavailable", "store": "unreachable"}, status=503, headers={"Retry-After": "5"}
        )
    return web.json_response({"status": "ready"})


async def handle_metrics(request: web.Request) -> web.Response:
    return metrics_response(request, request.app[METRICS_KEY].registry, request.app[SETTINGS_KEY].listen.metrics_token)


def metrics_response(request: web.BaseRequest, registry: CollectorRegistry, token: SecretStr | None) -> web.Response:
    """The registry in Prometheus text format, or 401 when `token` is set and the request does not bear it."""
    if token is not None and not _bears(request, token.get_secret_value()):
        error = "" if "Authorization" not in request.headers else ', error="invalid_token"'
        return web.json_response(
            {"error": "invalid_token", "error_description": "metrics need the metrics token"},
            status=401,
            headers={"WWW-Authenticate": f'Bearer realm="metrics"{error}', "Cache-Control": "no-store"},
        )
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _bears(request: web.BaseRequest, token: str) -> bool:
    """Constant time in the token and the guess: both are hashed to 32 bytes first, so neither the length nor a
    common prefix shows; bytes that are not UTF-8 are compared as sent (surrogateescape), never an error."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    guess = hashlib.sha256(presented.strip().encode("utf-8", "surrogateescape")).digest()
    matches = secrets.compare_digest(guess, hashlib.sha256(token.encode()).digest())
    return scheme.lower() == "bearer" and matches


async def handle_jwks(request: web.Request) -> web.Response:
    """Public keys that verify the identity JWTs the gateway sends upstream."""
    return web.json_response(
        await request.app[SIGNER_KEY].jwks(),
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )
