"""The admin listener's application: authentication, JSON errors, no caching, an audit line per change; and its
socket and TLS.

`create_admin_app(settings, store, public_app=None)` builds it over fixed state (tests, embedding);
`build_admin_app(target)` over whatever `target()` answers at each request (the server: the current public
application, so a reload's new store and token apply at once). The API lives under `/api/`; the console
(gateway.admin.console, HTML) adds its pages under `/` to the same application, with its own sign-in: the
middleware here authenticates `/api/` only, and answers any unknown path with a JSON 404.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import ssl
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.admin.api import MAX_BODY_BYTES, setup_api
from gateway.admin.console import setup_console
from gateway.admin.errors import AdminError
from gateway.admin.target import (
    ACTOR_KEY,
    REQUEST_TARGET_KEY,
    TARGET_KEY,
    AdminTarget,
    certificate_subject,
    refuse_cross_site,
    target_of,
)
from gateway.config import Settings
from gateway.config.admin import AdminSettings
from gateway.ports import bind_listeners
from gateway.store.base import Store
from gateway.store.errors import StoreUnavailableError

logger = logging.getLogger("gateway.admin")
API_PREFIX = "/api/"
CHALLENGE = 'Bearer realm="admin"'
HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache", "X-Content-Type-Options": "nosniff"}
READS = frozenset({"GET", "HEAD", "OPTIONS"})


def create_admin_app(
    settings: Settings,
    store: Store,
    public_app: web.Application | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The admin application over one settings, store and (optionally) running public application."""
    return build_admin_app(lambda: AdminTarget(settings, store, public_app, clock))


def following(current: Callable[[], web.Application]) -> Callable[[], AdminTarget]:
    """A target that is always the current public application's (gateway.server passes its `current[0]`)."""
    return lambda: target_of(current())


def build_admin_app(target: Callable[[], AdminTarget]) -> web.Application:
    app = web.Application(middlewares=[admin_middleware], client_max_size=MAX_BODY_BYTES)
    app[TARGET_KEY] = target
    setup_api(app)
    setup_console(app)
    return app


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": code, "error_description": message}
    return web.json_response(body, status=status, headers={**HEADERS, **(headers or {})})


def _token_matches(header: str, expected: str) -> bool:
    """Constant time whatever the lengths: the digests of both are compared (never the values)."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return False
    presented = hashlib.sha256(value.strip().encode("utf-8", "surrogateescape")).digest()
    return hmac.compare_digest(presented, hashlib.sha256(expected.encode("utf-8")).digest())


def authenticate(request: web.Request, admin: AdminSettings) -> str:
    """Who is asking: `certificate:<CN>` or `token`.

    Raises:
        AdminError: 401 (the answer carries the challenge).
    """
    subject = certificate_subject(request)
    if subject is not None:
        return f"certificate:{subject}"
    header = request.headers.get("Authorization")
    if header is not None and admin.token is not None and _token_matches(header, admin.token.get_secret_value()):
        return "token"
    raise AdminError(401, "unauthorized", "send Authorization: Bearer <admin.token>" if header is None else "bad token")


def _challenge(request: web.Request) -> str:
    return CHALLENGE if "Authorization" not in request.headers else CHALLENGE + ', error="invalid_token"'


@web.middleware
async def admin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate `/api/`, render every refusal as JSON, stamp no-store, and log each change (never a secret:
    the method, the path, who, from where, the status)."""
    actor = None
    try:
        if request.path.startswith(API_PREFIX) or request.path == API_PREFIX.rstrip("/"):
            target = request.app[TARGET_KEY]()
            request[REQUEST_TARGET_KEY] = target
            refuse_cross_site(request)
            actor = authenticate(request, target.settings.admin)
        response = await handler(request)
        actor = actor or request.get(ACTOR_KEY)  # (a console page's: its session's)
    except AdminError as exc:
        headers = {"WWW-Authenticate": _challenge(request)} if exc.status == 401 else None
        response = error_response(exc.status, exc.code, exc.message, headers)
    except StoreUnavailableError:
        response = error_response(503, "store_unavailable", "the store (Redis) is unavailable; try again")
    except web.HTTPMethodNotAllowed as exc:
        allow = {"Allow": ", ".join(sorted(exc.allowed_methods))}
        response = error_response(405, "method_not_allowed", f"{request.method} is not allowed here", allow)
    except web.HTTPNotFound:
        response = error_response(404, "not_found", "no such path")
    except web.HTTPRequestEntityTooLarge:
        response = error_response(413, "payload_too_large", f"the body is larger than {MAX_BODY_BYTES // 1024} KiB")
    response.headers.update(HEADERS)
    if request.method not in READS:
        _audit(request, actor, response.status)
    return response


def _audit(request: web.Request, actor: str | None, status: int) -> None:
    logger.info("admin %s %s by %s from %s: %d", request.method, request.path, actor or "-", request.remote, status)
    target = request.get(REQUEST_TARGET_KEY)
    if target is not None and target.public_app is not None:
        from gateway.app_state import AUDIT_KEY

        if AUDIT_KEY in target.public_app:
            target.public_app[AUDIT_KEY].emit(
                "admin.request",
                method=request.method,
                path=request.path,
                actor=actor,
                client_ip=request.remote,
                status=status,
            )


def bind_admin(admin: AdminSettings) -> list[socket.socket]:
    """The admin listener's sockets, bound once at start (none when the admin API is off).

    Raises:
        BindError: the host or port cannot be bound.
    """
    if admin.listen.port is None:
        return []
    return bind_listeners(admin.listen.host, admin.listen.port)


def admin_ssl_context(admin: AdminSettings) -> ssl.SSLContext | None:
    """HTTPS for the admin listener (admin.tls); with client_ca_file, client certificates it signed are verified
    (required when no admin.token is configured, optional beside one). None: plain HTTP."""
    if admin.tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(admin.tls.cert_file, admin.tls.key_file)
    if admin.tls.client_ca_file is not None:
        context.load_verify_locations(cafile=admin.tls.client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if admin.token is None else ssl.CERT_OPTIONAL
    return context
