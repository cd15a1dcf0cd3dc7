"""What an admin action works on: the settings, the store, the clock, and the running gateway when there is one.

The CLI has no running gateway (`public_app` None); the admin listener works on the current public application,
whose settings and store change with a reload (gateway.server), so it asks for its target at every request.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.admin.errors import AdminError
from gateway.config import Settings
from gateway.store.base import Store

if TYPE_CHECKING:  # (deferred at run time: the CLI's commands that never need it start faster)
    from gateway.upstream_oauth.connector import Connector


@dataclass(frozen=True)
class AdminTarget:
    settings: Settings
    store: Store
    public_app: web.Application | None = None
    clock: Callable[[], float] = field(default=time.time)


TARGET_KEY: web.AppKey[Callable[[], AdminTarget]] = web.AppKey("admin_target")  # asked once per request
REQUEST_TARGET_KEY = web.RequestKey("admin_request_target", AdminTarget)  # what it answered
ACTOR_KEY = web.RequestKey("admin_actor", str)  # who a console page acts for (its session's actor)


def target_of(app: web.Application) -> AdminTarget:
    """The running public application as a target (its own settings, store and clock)."""
    from gateway.app_state import CLOCK_KEY, SETTINGS_KEY, STORE_KEY

    return AdminTarget(app[SETTINGS_KEY], app[STORE_KEY], app, app[CLOCK_KEY])


@asynccontextmanager
async def connector_for(target: AdminTarget) -> AsyncIterator[Connector]:
    """The running gateway's connector (its metrics count what is revoked), or one of our own for this action."""
    from gateway.app_state import CONNECTOR_KEY

    if target.public_app is not None and CONNECTOR_KEY in target.public_app:
        yield target.public_app[CONNECTOR_KEY]
        return
    from gateway.upstream_oauth.connector import Connector
    from gateway.vault import Vault

    connector = Connector(target.store, Vault(target.settings.vault, target.store), target.settings.public_url)
    try:
        yield connector
    finally:
        await connector.close()


def refuse_cross_site(request: web.Request) -> None:
    """A browser's request made by another site's page never reaches the API: a client certificate installed in
    the admin's browser would otherwise let any page post to it (the bearer cannot be sent cross-site; a
    certificate is). Browsers say where a request comes from (Sec-Fetch-Site, Origin); other clients send neither.

    Raises:
        AdminError: 403.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:  # (decisive where sent: a same-origin form under `Referrer-Policy: no-referrer` says
        # `Origin: null`)
        crossed = site not in ("same-origin", "none")
    else:
        origin = request.headers.get("Origin")
        crossed = origin is not None and origin != f"{request.scheme}://{request.host}"
    if crossed:
        raise AdminError(403, "cross_site", "requests from other sites' pages are refused")


def certificate_subject(request: web.Request) -> str | None:
    """The common name of a client certificate the TLS handshake verified (admin.tls.client_ca_file)."""
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return None
    names = [value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"]
    return names[0] if names else "(no common name)"
