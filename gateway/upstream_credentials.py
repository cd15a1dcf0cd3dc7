"""Per-user upstream credentials (`routes[].upstream_auth`, per-user modes): the header line the gateway presents to
a route's upstream for one user. Never the client's token, never sent to the client, never logged.

`token_exchange` (RFC 8693): the subject token is a gateway-signed assertion of the user (gateway.signing, `aud` =
the token endpoint) or, with `subject_provider`, the access token the user's sign-in provider gave them (held in
the vault, refreshed when due: gateway.upstream_oauth.connector); the gateway authenticates with HTTP Basic as
the route's `client_id`; the issued token is reused for the same (route, user, client, and the claims the
assertion made: scopes, groups, email, name) until
`EXPIRY_MARGIN` before it expires (at most `max_cache_seconds`), so a user's changed groups or a down-scoped token
get a token of their own. Concurrent requests of one user wait for one exchange (single flight); at most
`MAX_CACHED` tokens are kept per process, at most `MAX_EXCHANGES` exchanges run at once per token service, and
`timeout` bounds the whole exchange (waiting for a slot and signing included). The token service's answer is read
bounded (`MAX_ANSWER_BYTES`, however it is framed) and held to RFC 6749 §5.1 / RFC 8693 §2.2.1; anything else is a
`CredentialError`. The subject assertion lives `ASSERTION_SECONDS`, whatever `identity_jwt.lifetime` says."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable

import aiohttp

from gateway.config import TokenExchangeUpstreamAuth
from gateway.config.upstream_auth import ACCESS_TOKEN_TYPE
from gateway.identity import RequestContext
from gateway.metrics import Family
from gateway.signing import IdentitySigner
from gateway.upstream_oauth.client import basic, printable, seconds, token_shaped
from gateway.upstream_oauth.connector import Connector, ConnectRequiredError, HeldCredentialError

logger = logging.getLogger(__name__)
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
EXPIRY_MARGIN = 30.0  # seconds before expiry a cached token is replaced (clock skew, the request's own time)
DEFAULT_LIFETIME = 60.0  # seconds a token without `expires_in` is reused
MAX_CACHED = 10_000
MAX_EXCHANGES = 64
MAX_ANSWER_BYTES = 64 * 1024
ASSERTION_SECONDS = 60
# the service refused this user (403 for the client); anything else it answers is its failure or the gateway's
# misconfiguration (invalid_client, throttling): 502, and the operator's warning says which
REFUSED_STATUSES = frozenset({400, 403})
GATEWAY_ERRORS = frozenset({"invalid_client", "unauthorized_client", "unsupported_grant_type", "invalid_scope"})
Key = tuple[str, str, str, tuple[object, ...]]  # (route, user, client, the assertion's claims)


class CredentialError(Exception):
    """No credential for this request: `status` 403 when the token service refused this user, 502 when it could
    not be asked or answered nonsense. `message` is for the client and names no token."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class UpstreamCredentials:
    """The per-user credentials of every route of one application (one per app, `McpEndpoint.credentials`)."""

    def __init__(
        self,
        signer: IdentitySigner,
        counted: Family,
        clock: Callable[[], float] = time.time,
        held: Connector | None = None,
    ) -> None:
        self._signer, self._counted, self._clock = signer, counted, clock
        self._held = held  # the users' provider tokens (subject_provider)
        self._cached: dict[Key, tuple[str, float]] = {}  # key -> (token, reuse until)
        self._pending: dict[Key, asyncio.Future[tuple[str, float]]] = {}  # exchanges in flight
        self._slots: dict[str, asyncio.Semaphore] = {}  # per token endpoint: a hanging one holds only its own
        self._http: aiohttp.ClientSession | None = None

    async def header_line(
        self, route: str, auth: TokenExchangeUpstreamAuth, context: RequestContext
    ) -> tuple[str, str]:
        """(header, value) for this user on this route.

        Raises:
            CredentialError: the token service refused (403) or failed (502).
        """
        key = _key(route, context, await self._subject_digest(auth, context))
        cached = self._cached.get(key)
        if cached is None or cached[1] <= self._clock():
            cached = await self._single_flight(key, auth, context)
        else:
            self._counted.labels(route, "cached").inc()
        return auth.header, f"Bearer {cached[0]}"

    def forget(self, route: str, context: RequestContext, refused: tuple[str, str]) -> None:
        """The upstream refused this token (`refused`, the header line it got): the next request exchanges again
        (a newer token cached meanwhile stays)."""
        who = _key(route, context)[:3]
        for key in [k for k, (token, _) in self._cached.items() if k[:3] == who and refused[1] == f"Bearer {token}"]:
            del self._cached[key]

    async def close(self) -> None:
        pending = list(self._pending.values())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
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
        try:
            async with asyncio.timeout(auth.timeout):  # (the slot, the signature and the call together)
                return await self._exchange_now(auth, context)
        except TimeoutError:
            logger.warning("token exchange at %s: no answer within %ss", auth.token_endpoint, auth.timeout)
            raise CredentialError(502, "The upstream's token service could not be reached") from None

    async def _exchange_now(self, auth: TokenExchangeUpstreamAuth, context: RequestContext) -> tuple[str, float]:
        slots = self._slots.setdefault(auth.token_endpoint, asyncio.Semaphore(MAX_EXCHANGES))
        async with slots:
            return await self._ask(auth, context)

    async def _ask(self, auth: TokenExchangeUpstreamAuth, context: RequestContext) -> tuple[str, float]:
        if auth.subject_provider is not None:  # the user's own token from their sign-in provider
            subject, subject_type = await self._provider_token(auth.subject_provider, context), ACCESS_TOKEN_TYPE
        else:
            subject = await self._signer.sign(context, auth.token_endpoint, ASSERTION_SECONDS)
            subject_type = JWT_TOKEN_TYPE
        form = {
            "grant_type": GRANT_TYPE,
            "subject_token": subject,
            "subject_token_type": subject_type,
            "requested_token_type": auth.requested_token_type,
        }
        if auth.audience:
            form["audience"] = auth.audience
        if auth.resource:
            form["resource"] = auth.resource
        if auth.scopes:
            form["scope"] = " ".join(auth.scopes)
        headers = {"Accept": "application/json", "Authorization": _basic(auth)}
        started = self._clock()
        status, body = await self._post(auth, form, headers)
        if status // 100 != 2:
            error = printable(body.get("error") if isinstance(body, dict) else None)
            if status in REFUSED_STATUSES and error not in GATEWAY_ERRORS:
                logger.warning("token exchange at %s refused the user: %s %s", auth.token_endpoint, status, error)
                raise CredentialError(403, "The upstream's token service refused a credential for this user")
            logger.warning(
                "token exchange at %s failed: %s %s (the service, or the gateway's client there: check upstream_auth)",
                auth.token_endpoint,
                status,
                error or "no error code",
            )
            raise CredentialError(502, "The upstream's token service failed")
        return _issued(auth, body, started)

    async def _subject_digest(self, auth: TokenExchangeUpstreamAuth, context: RequestContext) -> str:
        """With `subject_provider`: a digest of the user's provider token, so a token exchanged for an older one
        (revoked, refreshed) is not reused; "" for the gateway's own assertion (its claims are in the key)."""
        if auth.subject_provider is None:
            return ""
        subject = await self._provider_token(auth.subject_provider, context)
        return hashlib.sha256(subject.encode("utf-8")).hexdigest()[:16]

    async def _provider_token(self, provider: str, context: RequestContext) -> str:
        if self._held is None:
            raise CredentialError(502, "The upstream's token service could not be asked")
        try:
            return await self._held.provider_access_token(context.record.user_id, provider)
        except ConnectRequiredError:
            raise CredentialError(403, f"Sign in again with {provider} to use this MCP server") from None
        except HeldCredentialError:
            raise CredentialError(502, "The sign-in provider could not refresh the user's token") from None

    async def _post(
        self, auth: TokenExchangeUpstreamAuth, form: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, object]:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), headers={"User-Agent": "mcp-auth-gateway"}
            )
        try:
            async with self._http.post(
                auth.token_endpoint, data=form, headers=headers, allow_redirects=False
            ) as response:
                status, raw = response.status, bytearray()
                if (response.content_length or 0) <= MAX_ANSWER_BYTES:
                    async for chunk in response.content.iter_chunked(16 * 1024):  # (however the answer is framed)
                        raw += chunk
                        if len(raw) > MAX_ANSWER_BYTES:
                            break
                else:
                    raw = bytearray(MAX_ANSWER_BYTES + 1)  # (said to be larger: not read)
        except (aiohttp.ClientError, OSError) as exc:
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
    answer = body if isinstance(body, dict) else {}
    token, token_type, issued = answer.get("access_token"), answer.get("token_type"), answer.get("issued_token_type")
    lifetime = seconds(answer.get("expires_in", DEFAULT_LIFETIME))
    # N_A: "not an access token" (RFC 8693 §2.2.1): usable as a Bearer value only when no access token was asked for
    types = ("bearer",) if auth.requested_token_type == ACCESS_TOKEN_TYPE else ("bearer", "n_a")
    usable = (
        isinstance(token, str)
        and token_shaped(token)
        and isinstance(token_type, str)
        and token_type.lower() in types
        and (issued is None or issued == auth.requested_token_type)
        and lifetime is not None
    )
    if not usable:
        logger.warning("token exchange at %s: the answer is not a usable token response", auth.token_endpoint)
        raise CredentialError(502, "The upstream's token service failed")
    reuse = min((lifetime or 0.0) - EXPIRY_MARGIN, float(auth.max_cache_seconds))
    return str(token), started + max(0.0, reuse)


def _key(route: str, context: RequestContext, subject: str = "") -> Key:
    """The cache and single-flight key: who asks, what the assertion says of them (and which provider token is
    exchanged, `subject`: its digest)."""
    record = context.record
    claims = (record.scopes, tuple(record.groups), record.email, record.preferred_username, subject)
    return route, record.user_id, record.client_id, claims


def _basic(auth: TokenExchangeUpstreamAuth) -> str:
    return basic(auth.client_id, auth.client_secret.get_secret_value() if auth.client_secret is not None else "")
