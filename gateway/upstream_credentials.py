"""Per-user upstream credentials (`routes[].upstream_auth`, per-user modes): the header line the gateway presents to
a route's upstream for one user. Never the client's token, never sent to the client, never logged.

`token_exchange` (RFC 8693): the subject token is a gateway-signed assertion of the user (gateway.signing, `aud` =
the token endpoint), the gateway authenticates with HTTP Basic as the route's `client_id`; the issued token is
reused for the same (route, user, client) until `EXPIRY_MARGIN` before it expires (at most `max_cache_seconds`).
Concurrent requests of one user wait for one exchange (single flight); at most `MAX_CACHED` tokens are kept per
process, at most `MAX_EXCHANGES` exchanges run at once. The token service's answer is read bounded
(`MAX_ANSWER_BYTES`) and held to RFC 6749 §5.1 / RFC 8693 §2.2.1; anything else is a `CredentialError`."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from urllib.parse import quote

import aiohttp

from gateway.config import TokenExchangeUpstreamAuth
from gateway.identity import RequestContext
from gateway.metrics import Family
from gateway.signing import IdentitySigner

logger = logging.getLogger(__name__)
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
EXPIRY_MARGIN = 30.0  # seconds before expiry a cached token is replaced (clock skew, the request's own time)
DEFAULT_LIFETIME = 60.0  # seconds a token without `expires_in` is reused
MAX_CACHED = 10_000
MAX_EXCHANGES = 64
MAX_ANSWER_BYTES = 64 * 1024
MAX_TOKEN_CHARS = 8192  # a header line the upstream's server accepts
Key = tuple[str, str, str]  # (route, user, client)


class CredentialError(Exception):
    """No credential for this request: `status` 403 when the token service refused this user, 502 when it could
    not be asked or answered nonsense. `message` is for the client and names no token."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class UpstreamCredentials:
    """The per-user credentials of every route of one application (one per app, `McpEndpoint.credentials`)."""

    def __init__(self, signer: IdentitySigner, counted: Family, clock: Callable[[], float] = time.time) -> None:
        self._signer, self._counted, self._clock = signer, counted, clock
        self._cached: dict[Key, tuple[str, float]] = {}  # key -> (token, reuse until)
        self._pending: dict[Key, asyncio.Future[tuple[str, float]]] = {}  # exchanges in flight
        self._slots = asyncio.Semaphore(MAX_EXCHANGES)
        self._http: aiohttp.ClientSession | None = None
        self.exchanges = 0  # token service calls made (tests, metrics)

    async def header_line(
        self, route: str, auth: TokenExchangeUpstreamAuth, context: RequestContext
    ) -> tuple[str, str]:
        """(header, value) for this user on this route.

        Raises:
            CredentialError: the token service refused (403) or failed (502).
        """
        record = context.record
        key = (route, record.user_id, record.client_id)
        cached = self._cached.get(key)
        if cached is None or cached[1] <= self._clock():
            cached = await self._single_flight(key, auth, context)
        else:
            self._counted.labels(route, "cached").inc()
        return auth.header, f"Bearer {cached[0]}"

    def forget(self, route: str, context: RequestContext) -> None:
        """The upstream refused this user's token: the next request exchanges again."""
        self._cached.pop((route, context.record.user_id, context.record.client_id), None)

    async def close(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _single_flight(
        self, key: Key, auth: TokenExchangeUpstreamAuth, context: RequestContext
    ) -> tuple[str, float]:
        """One exchange per key at a time, in a task of its own: a waiter that gives up (its client went away)
        cancels neither the exchange nor the others waiting for it."""
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(self._counted_exchange(key[0], auth, context))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        return await asyncio.shield(task)

    def _settled(self, key: Key, task: asyncio.Future[tuple[str, float]]) -> None:
        self._pending.pop(key, None)
        if task.cancelled() or task.exception() is not None:  # (retrieved: the waiters got it too)
            return
        result = task.result()
        if result[1] > self._clock():
            self._remember(key, result)

    async def _counted_exchange(
        self, route: str, auth: TokenExchangeUpstreamAuth, context: RequestContext
    ) -> tuple[str, float]:
        try:
            result = await self._exchange(auth, context)
        except CredentialError as error:
            self._counted.labels(route, "refused" if error.status == 403 else "failed").inc()
            raise
        self._counted.labels(route, "exchanged").inc()
        return result

    def _remember(self, key: Key, result: tuple[str, float]) -> None:
        if len(self._cached) >= MAX_CACHED:
            now = self._clock()
            for stale in [k for k, (_, until) in self._cached.items() if until <= now]:
                del self._cached[stale]
            while len(self._cached) >= MAX_CACHED:
                del self._cached[next(iter(self._cached))]  # the oldest entry
        self._cached[key] = result

    async def _exchange(self, auth: TokenExchangeUpstreamAuth, context: RequestContext) -> tuple[str, float]:
        assertion = await self._signer.sign(context, auth.token_endpoint)
        form = {
            "grant_type": GRANT_TYPE,
            "subject_token": assertion,
            "subject_token_type": JWT_TOKEN_TYPE,
            "requested_token_type": auth.requested_token_type,
        }
        if auth.audience:
            form["audience"] = auth.audience
        if auth.resource:
            form["resource"] = auth.resource
        if auth.scopes:
            form["scope"] = " ".join(auth.scopes)
        headers = {"Accept": "application/json", "Authorization": _basic(auth)}
        async with self._slots:
            started = self._clock()
            self.exchanges += 1
            status, body = await self._post(auth, form, headers)
        if status // 100 != 2:
            error = body.get("error") if isinstance(body, dict) else None
            logger.warning(
                "token exchange for %s refused: %s %s", auth.token_endpoint, status, _printable(error) or "no error"
            )
            if 400 <= status < 500:
                raise CredentialError(403, "The upstream's token service refused a credential for this user")
            raise CredentialError(502, "The upstream's token service failed")
        return _issued(auth, body, started)

    async def _post(
        self, auth: TokenExchangeUpstreamAuth, form: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, object]:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), headers={"User-Agent": "mcp-auth-gateway"}
            )
        try:
            async with asyncio.timeout(auth.timeout):
                async with self._http.post(
                    auth.token_endpoint, data=form, headers=headers, allow_redirects=False
                ) as response:
                    raw = await response.content.read(MAX_ANSWER_BYTES + 1)
                    status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.warning("token exchange at %s failed: %s", auth.token_endpoint, type(exc).__name__)
            raise CredentialError(502, "The upstream's token service could not be reached") from None
        if len(raw) > MAX_ANSWER_BYTES:
            logger.warning("token exchange at %s: answer larger than %d bytes", auth.token_endpoint, MAX_ANSWER_BYTES)
            raise CredentialError(502, "The upstream's token service failed")
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None


def _issued(auth: TokenExchangeUpstreamAuth, body: object, started: float) -> tuple[str, float]:
    """(token, reuse until) from a 2xx answer, or CredentialError(502)."""
    token = body.get("access_token") if isinstance(body, dict) else None
    token_type = body.get("token_type") if isinstance(body, dict) else None
    lifetime = body.get("expires_in", DEFAULT_LIFETIME) if isinstance(body, dict) else None
    usable = (
        isinstance(token, str)
        and 0 < len(token) <= MAX_TOKEN_CHARS
        and all("!" <= c <= "~" for c in token)
        and (not isinstance(token_type, str) or token_type.lower() in ("bearer", "n_a"))
        and isinstance(lifetime, (int, float))
        and not isinstance(lifetime, bool)
        and lifetime >= 0
    )
    if not usable:
        logger.warning("token exchange at %s: the answer is not a usable token response", auth.token_endpoint)
        raise CredentialError(502, "The upstream's token service failed")
    reuse = min(float(lifetime) - EXPIRY_MARGIN, float(auth.max_cache_seconds))  # type: ignore[arg-type]
    return token, started + max(0.0, reuse)  # type: ignore[return-value]


def _basic(auth: TokenExchangeUpstreamAuth) -> str:
    """client_secret_basic (RFC 6749 §2.3.1: both parts form-urlencoded first)."""
    secret = auth.client_secret.get_secret_value() if auth.client_secret is not None else ""
    pair = f"{quote(auth.client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def _printable(value: object) -> str | None:
    """An error code from the token service, safe for one log line."""
    if not isinstance(value, str):
        return None
    return "".join(c for c in value[:64] if "!" <= c <= "~") or None
