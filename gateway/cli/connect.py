"""`check-config --connect`: reach what the configuration names (the store, each HTTP upstream, each stdio
server's program, each OIDC provider's discovery document), all at once, within one deadline."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from redis.exceptions import RedisError

from gateway.config import ProviderSettings, Route, Settings
from gateway.config.stdio import StdioCommand
from gateway.idp.http import provider_session
from gateway.idp.oidc import ENTRA_TEMPLATE, issuer_for
from gateway.store.errors import EmbeddedStoreError, StoreUnavailableError
from gateway.store.open import describe_store, open_store, unavailable_reason

CHECK_TIMEOUT = 3.0  # seconds for each HTTP check
DEADLINE = 10.0  # seconds for all of them together
DISCOVERY_KEYS = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")  # as gateway.idp.oidc needs


@dataclass(frozen=True)
class Outcome:
    """One check: what was reached, and how it went (`HTTP 405`, `connection refused`)."""

    ok: bool
    what: str
    detail: str = ""

    def line(self) -> str:
        if self.ok:
            return f"ok   {self.what}" + (f" ({self.detail})" if self.detail else "")
        return f"FAIL {self.what}: {self.detail}"


async def run_checks(settings: Settings, deadline: float = DEADLINE) -> list[Outcome]:
    """Every check, concurrently; one still running at the deadline fails as unanswered."""
    checks: list[tuple[str, Awaitable[Outcome]]] = []
    store_what = f"store {describe_store(settings.store)}"
    checks.append((store_what, _store(settings, store_what)))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        for route in settings.routes:
            if route.command is not None:
                what = f"command {route.name} {route.command.argv[0]}"
                checks.append((what, _command(route.command, what)))
            elif route.aggregate is None:
                what = f"upstream {route.name} {route.upstream}"
                checks.append((what, _upstream(http, route, what)))
        for provider in settings.login.providers:
            if provider.type != "github":  # (no discovery document: its endpoints are fixed)
                what = f"provider {provider.name} {discovery_url(provider)}"
                checks.append((what, _discovery(provider, what)))
        tasks = [asyncio.ensure_future(check) for _, check in checks]
        done, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return [
        task.result() if task in done else Outcome(False, what, f"no answer within {deadline:g} s (the deadline)")
        for (what, _), task in zip(checks, tasks, strict=True)
    ]


async def _store(settings: Settings, what: str) -> Outcome:
    try:
        async with open_store(settings.store) as store:
            await store.ping()
    except StoreUnavailableError as exc:
        return Outcome(False, what, unavailable_reason(exc))
    except RedisError as exc:  # something answered, not as Redis does
        return Outcome(False, what, f"does not answer as Redis ({type(exc).__name__})")
    except EmbeddedStoreError as exc:
        return Outcome(False, what, str(exc))
    return Outcome(True, what, "ping")


async def _upstream(http: aiohttp.ClientSession, route: Route, what: str) -> Outcome:
    """Any HTTP answer means reachable (an MCP endpoint may well answer a bare GET with 400, 401 or 405)."""
    try:
        async with http.get(
            route.upstream, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT)
        ) as response:
            return Outcome(True, what, f"HTTP {response.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Outcome(False, what, unreachable(exc))


async def _command(command: StdioCommand, what: str) -> Outcome:
    """The program is found as the gateway will start it: on its PATH (`command.env` may set one), or a path."""
    program = command.argv[0]
    cwd = Path(command.cwd) if command.cwd is not None else Path.cwd()
    if not cwd.is_dir():
        return Outcome(False, what, f"cwd {cwd} is not a directory")
    if os.sep in program:
        found = str(cwd / program)
        if not (os.path.isfile(found) and os.access(found, os.X_OK)):
            return Outcome(False, what, f"{found} is not an executable file")
    else:
        located = shutil.which(program, path=command.env.get("PATH", os.environ.get("PATH", os.defpath)))
        if located is None:
            return Outcome(False, what, "not found on PATH")
        found = located
    return Outcome(True, what, found)


def discovery_url(provider: ProviderSettings) -> str:
    return f"{issuer_for(provider).rstrip('/')}/.well-known/openid-configuration"


async def _discovery(provider: ProviderSettings, what: str) -> Outcome:
    """GET issuer/.well-known/openid-configuration: a JSON document with what sign-in needs, naming this issuer."""
    issuer = issuer_for(provider)
    async with provider_session(provider.ca_file) as http:
        try:
            async with http.get(
                discovery_url(provider), allow_redirects=False, timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT)
            ) as response:
                if response.status != 200:
                    return Outcome(False, what, f"HTTP {response.status}")
                document = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Outcome(False, what, unreachable(exc))
        except ValueError:
            return Outcome(False, what, "HTTP 200 but not JSON")
    if not isinstance(document, dict) or not all(isinstance(document.get(k), str) for k in DISCOVERY_KEYS):
        return Outcome(False, what, f"not a discovery document (needs {', '.join(DISCOVERY_KEYS)})")
    if ENTRA_TEMPLATE not in document["issuer"] and document["issuer"] != issuer:  # OIDC Discovery §4.3
        return Outcome(False, what, f"the document names another issuer ({document['issuer'][:200]})")
    return Outcome(True, what, "HTTP 200")


def unreachable(exc: BaseException) -> str:
    """Why a connection failed, in words: `connection refused`, `TLS certificate not accepted: …`, a timeout."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT:g} s"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate not accepted ({exc.certificate_error})"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS error ({exc})"[:300]
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "host name not found"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused"
        return (exc.os_error.strerror or type(exc.os_error).__name__).lower()
    return f"{type(exc).__name__} {exc}"[:300].strip()
