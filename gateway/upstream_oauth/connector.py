"""Credentials the gateway holds for users at the servers behind it (`upstream_auth: oauth`, `provider_token`):
connecting (the authorization at the upstream's server, started after consent or from the connect page, finished
at `/upstream/callback`), the header line for a request (refreshed ahead of expiry), and disconnecting.

A refresh happens once per credential however many requests and gateway instances need it at once: in one process
the requests wait for one task; across processes the one that takes the slot's lock in the store refreshes, the
others wait for the sealed value to change (or the lock to go) and read the new one. A refresh the server refuses
with `invalid_grant` drops the credential: the next request asks the user to connect again."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from gateway.config import OAuthUpstreamAuth, ProviderTokenUpstreamAuth
from gateway.idp.base import ProviderError, TokenClient
from gateway.metrics import Family
from gateway.oauth.pkce import s256
from gateway.routing import RouteInfo
from gateway.store.base import Store
from gateway.store.records import PendingAuthorizationRecord, UpstreamCredentialRecord, UpstreamFlightRecord
from gateway.upstream_oauth import client as oauth_client
from gateway.upstream_oauth.client import GrantRevokedError, UpstreamClient
from gateway.upstream_oauth.discovery import Discovery
from gateway.upstream_oauth.http import UpstreamOAuthError, oauth_session
from gateway.vault import Vault, provider_slot, route_slot

logger = logging.getLogger(__name__)
FLIGHT_TTL = 600
REFRESH_CALLS = 2
WAIT_STEP = 0.05
TokenClientOf = Callable[[], Awaitable[TokenClient]]  # provider_token: where and as whom to refresh


class ConnectRequiredError(Exception):
    """The user holds no usable credential for this route: they must connect (or sign in again, `provider`)."""

    def __init__(self, route: str, provider: str | None = None) -> None:
        super().__init__(route)
        self.route, self.provider = route, provider


class HeldCredentialError(Exception):
    """The upstream's server could not be used to refresh (502 for the client); names no token."""


class Connector:
    """One per application (`CONNECTOR_KEY`)."""

    def __init__(
        self,
        store: Store,
        vault: Vault,
        public_url: str,
        counted: Family | None = None,
        refresh_ahead: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        counted = counted or Family("counter", "held_credentials", "", ("route", "outcome"))
        self.store, self.vault, self.public_url = store, vault, public_url
        self._counted, self._ahead, self._clock = counted, refresh_ahead, clock
        self.http: aiohttp.ClientSession = oauth_session()
        self.discovery = Discovery(self.http)
        self._pending: dict[tuple[str, str], asyncio.Future[UpstreamCredentialRecord]] = {}
        self.waiting: set[tuple[str, str]] = set()  # (user, route) with a retry waiting for a connection
        self.refreshers: dict[str, TokenClientOf] = {}  # sign-in provider name -> its token client (gateway.idp)

    async def close(self) -> None:
        pending = list(self._pending.values())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.http.close()

    # -- connecting -----------------------------------------------------------------------------------------------

    async def holds(self, user_id: str, route: str) -> bool:
        return await self.vault.load(user_id, route_slot(route)) is not None

    async def start(
        self,
        info: RouteInfo,
        user_id: str,
        session_hash: str,
        *,
        pending: PendingAuthorizationRecord | None = None,
        remember: bool = True,
    ) -> str:
        """The URL of the authorization request at the route's upstream server (the flight stored for the callback).

        Raises:
            UpstreamOAuthError: the upstream's server cannot be found or used.
        """
        auth = info.route.upstream_auth
        if not isinstance(auth, OAuthUpstreamAuth):
            raise UpstreamOAuthError(f"route {info.route.name} does not connect at an authorization server")
        meta = await self.discovery.metadata(info.route.upstream, auth)
        client = await oauth_client.client_for(self.http, self.vault, self.public_url, info.route.name, auth, meta)
        verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(32)
        redirect_uri = oauth_client.callback_url(self.public_url, info.route.name)
        flight = UpstreamFlightRecord(
            route=info.route.name,
            user_id=user_id,
            session_hash=session_hash,
            code_verifier=verifier,
            redirect_uri=redirect_uri,
            authorization_endpoint=meta.authorization_endpoint,
            token_endpoint=meta.token_endpoint,
            revocation_endpoint=meta.revocation_endpoint,
            issuer=meta.issuer,
            iss_required=meta.iss_required,
            client_id=client.client_id,
            resource=meta.resource,
            pending=pending,
            remember=remember,
            created_at=self._clock(),
        )
        await self.store.save_upstream_flight(state, flight, FLIGHT_TTL)
        return oauth_client.authorization_request(meta, client, redirect_uri, state, s256(verifier))

    async def finish(self, info: RouteInfo, flight: UpstreamFlightRecord, code: str) -> None:
        """Redeem the code (PKCE, resource) and keep the credential for the flight's user.

        Raises:
            UpstreamOAuthError: the token endpoint refused or answered nonsense.
        """
        auth = info.route.upstream_auth
        if not isinstance(auth, OAuthUpstreamAuth):  # (reconfigured while the person was at the server)
            raise UpstreamOAuthError(f"route {info.route.name} no longer connects at an authorization server")
        client = await self._client(info.route.name, auth, flight.client_id, flight.issuer or flight.token_endpoint)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flight.redirect_uri,
            "code_verifier": flight.code_verifier,
        }
        if flight.resource:
            form["resource"] = flight.resource
        now = self._clock()
        answer = await oauth_client.token_request(self.http, flight.token_endpoint, client, form, auth.timeout)
        record = oauth_client.credential_from(
            answer,
            flight.token_endpoint,
            client,
            now=now,
            configured_secret=auth.client_id is not None,
            revocation_endpoint=flight.revocation_endpoint,
            issuer=flight.issuer,
            resource=flight.resource,
        ).model_copy(update={"upstream": info.route.upstream})
        await self.vault.save(flight.user_id, route_slot(info.route.name), record)
        self._counted.labels(info.route.name, "connected").inc()

    async def keep_provider_tokens(
        self, user_id: str, provider: str, answer: dict[str, Any], token_endpoint: str, client_id: str
    ) -> None:
        """A sign-in provider's tokens, for `provider_token` routes (kept only when a route uses that provider)."""
        client = UpstreamClient(client_id)
        record = oauth_client.credential_from(answer, token_endpoint, client, now=self._clock(), configured_secret=True)
        await self.vault.save(user_id, provider_slot(provider), record)

    # -- using ----------------------------------------------------------------------------------------------------

    async def header_line(
        self,
        route: str,
        auth: OAuthUpstreamAuth | ProviderTokenUpstreamAuth,
        user_id: str,
        upstream: str | None = None,
    ) -> tuple[str, str]:
        """The header line for this user on this route. A credential made for another upstream than the route's
        `upstream` now (the operator repointed it) is never sent there: dropped, the user connects again.

        Raises ConnectRequiredError (none held, or it ended) or HeldCredentialError (its server failed)."""
        held = await self.vault.load(user_id, slot := _slot(route, auth))
        if held is None:
            self._counted.labels(route, "missing").inc()
            raise ConnectRequiredError(route, getattr(auth, "provider", None))
        record, sealed = held
        if upstream is not None and record.upstream is not None and record.upstream != upstream:
            await self.store.delete_credential(user_id, slot, only_if=sealed)  # (the route now points elsewhere)
            self._counted.labels(route, "missing").inc()
            raise ConnectRequiredError(route, getattr(auth, "provider", None))
        if self._fresh(record):
            self._counted.labels(route, "held").inc()
            return auth.header_line(record.access_token)
        key = (user_id, slot)
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(self._refresh(route, auth, user_id, slot, sealed))
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        record = await asyncio.shield(task)
        return auth.header_line(record.access_token)

    async def provider_access_token(self, user_id: str, provider: str) -> str:
        """The user's access token from their sign-in provider (refreshed when due), for a token exchange.

        Raises ConnectRequiredError (none held: the user signs in with the provider again) or HeldCredentialError."""
        auth = ProviderTokenUpstreamAuth(type="provider_token", provider=provider, format="{token}")
        return (await self.header_line(f"provider:{provider}", auth, user_id))[1]

    async def expire(self, route: str, auth: OAuthUpstreamAuth | ProviderTokenUpstreamAuth, user_id: str) -> None:
        """The upstream refused the access token before its time: the next use refreshes it (one that cannot be
        refreshed is dropped there)."""
        slot = _slot(route, auth)
        held = await self.vault.load(user_id, slot)
        if held is not None and self._fresh(held[0]):  # (only the value read: a newer one stays as it is)
            await self.vault.save(user_id, slot, held[0].model_copy(update={"expires_at": 0.0}), only_if=held[1])

    async def forget(
        self,
        route: str,
        auth: OAuthUpstreamAuth | ProviderTokenUpstreamAuth,
        user_id: str,
        refused: tuple[str, str] | None,
    ) -> None:
        """The upstream refused the credential (401; `refused`: the header line it got): dropped, unless it was
        refreshed meanwhile; the user connects again (a provider token: signs in again)."""
        if isinstance(auth, ProviderTokenUpstreamAuth):  # (shared by every route of the provider: it ends at the IdP)
            return
        slot = _slot(route, auth)
        held = await self.vault.load(user_id, slot)
        if held is not None and (refused is None or auth.header_line(held[0].access_token) == refused):
            await self.store.delete_credential(user_id, slot, only_if=held[1])

    def _fresh(self, record: UpstreamCredentialRecord) -> bool:
        return record.expires_at is None or record.expires_at - self._ahead > self._clock()

    async def _refresh(
        self, route: str, auth: OAuthUpstreamAuth | ProviderTokenUpstreamAuth, user_id: str, slot: str, seen: str
    ) -> UpstreamCredentialRecord:
        holder = secrets.token_hex(8)
        budget = REFRESH_CALLS * auth.timeout  # (a provider's metadata and its token endpoint: two calls)
        deadline = time.monotonic() + budget + 5
        while True:
            # the lock outlives the refresh it guards: the refresh is cut at `budget`, the lock lasts longer
            if await self.store.lock_credential(user_id, slot, holder, int((budget + 10) * 1000)):
                try:
                    async with asyncio.timeout(budget):
                        return await self._refresh_locked(route, auth, user_id, slot)
                except TimeoutError:
                    raise HeldCredentialError("the upstream's authorization server did not answer in time") from None
                finally:
                    await self.store.unlock_credential(user_id, slot, holder)
            await asyncio.sleep(WAIT_STEP)  # another instance refreshes: its result, once it lands
            current = await self.store.load_credential(user_id, slot)
            if current is None:
                raise ConnectRequiredError(route, getattr(auth, "provider", None))
            if current != seen:
                held = await self.vault.load(user_id, slot)
                if held is not None and self._fresh(held[0]):
                    return held[0]
                seen = current
            if time.monotonic() > deadline:
                raise HeldCredentialError("the credential's refresh at the upstream's server took too long")

    async def _refresh_locked(
        self, route: str, auth: OAuthUpstreamAuth | ProviderTokenUpstreamAuth, user_id: str, slot: str
    ) -> UpstreamCredentialRecord:
        held = await self.vault.load(user_id, slot)  # (re-read under the lock: refreshed just before?)
        if held is None:
            raise ConnectRequiredError(route, getattr(auth, "provider", None))
        record, sealed = held
        if self._fresh(record):
            return record
        if record.refresh_token is None:
            await self.store.delete_credential(user_id, slot, only_if=sealed)
            self._counted.labels(route, "expired").inc()
            raise ConnectRequiredError(route, getattr(auth, "provider", None))
        try:
            answer = await self._ask_refresh(route, auth, record)
        except GrantRevokedError as ended:
            if ended.code != "invalid_grant" and (isinstance(auth, ProviderTokenUpstreamAuth) or auth.client_id):
                self._counted.labels(route, "failed").inc()  # (a configured client refused: the operator's to fix)
                logger.warning(
                    "refreshing for route %s: the server refused the gateway's client (%s)", route, ended.code
                )
                raise HeldCredentialError("the upstream's authorization server refused the gateway's client") from None
            await self.store.delete_credential(user_id, slot, only_if=sealed)
            self._counted.labels(route, "revoked").inc()
            logger.info("the upstream server of route %s ended a credential (%s): dropped", route, ended.code)
            raise ConnectRequiredError(route, getattr(auth, "provider", None)) from None
        except UpstreamOAuthError as exc:
            self._counted.labels(route, "failed").inc()
            logger.warning("refreshing a credential for route %s failed: %s", route, exc)
            raise HeldCredentialError("the upstream's authorization server failed") from None
        client = UpstreamClient(record.client_id, record.client_secret)
        fresh = oauth_client.credential_from(
            answer, record.token_endpoint, client, now=self._clock(), configured_secret=True, previous=record
        )
        fresh = fresh.model_copy(update={"client_secret": record.client_secret, "upstream": record.upstream})
        if await self.vault.save(user_id, slot, fresh, only_if=sealed) is None:  # changed meanwhile: as it is now
            now = await self.vault.load(user_id, slot)
            if now is not None and self._fresh(now[0]):  # (connected again, or a new sign-in's token)
                return now[0]
            raise ConnectRequiredError(route, getattr(auth, "provider", None))
        self._counted.labels(route, "refreshed").inc()
        return fresh

    async def _ask_refresh(
        self, route: str, auth: OAuthUpstreamAuth | ProviderTokenUpstreamAuth, record: UpstreamCredentialRecord
    ) -> dict[str, Any]:
        assert record.refresh_token is not None
        form = {"grant_type": "refresh_token", "refresh_token": record.refresh_token}
        if isinstance(auth, ProviderTokenUpstreamAuth):
            token_client_of = self.refreshers.get(auth.provider)
            if token_client_of is None:
                raise UpstreamOAuthError(f"the sign-in provider {auth.provider} is not configured")
            try:
                found = await token_client_of()
            except ProviderError as exc:
                raise UpstreamOAuthError(str(exc)) from None
            client, endpoint = UpstreamClient(found.client_id, found.client_secret), found.token_endpoint
        else:
            client = await self._client(route, auth, record.client_id, record.issuer or record.token_endpoint)
            endpoint = record.token_endpoint
            if record.resource:
                form["resource"] = record.resource
        return await oauth_client.token_request(self.http, endpoint, client, form, auth.timeout, refreshing=True)

    async def _client(self, route: str, auth: OAuthUpstreamAuth, client_id: str, issuer: str) -> UpstreamClient:
        """The gateway's client at the server, as it was when the credential was made (a configured one: its secret
        from the configuration as it is now; a registered one: from the vault)."""
        if auth.client_id is not None and auth.client_id == client_id:
            secret = auth.client_secret.get_secret_value() if auth.client_secret is not None else None
            return UpstreamClient(client_id, secret)
        saved = await self.vault.load_client(route, issuer)
        if saved is not None and saved.client_id == client_id:
            return UpstreamClient(saved.client_id, saved.client_secret)
        return UpstreamClient(client_id)  # (the gateway's CIMD document: a public client)

    # -- disconnecting --------------------------------------------------------------------------------------------

    async def disconnect(self, user_id: str, slot: str, auth: object | None = None) -> bool:
        """Drop one credential, revoking it at its server first when the server offers RFC 7009."""
        held = await self.vault.load(user_id, slot)
        if held is None:
            return await self.store.delete_credential(user_id, slot)
        record = held[0]
        client = UpstreamClient(record.client_id, record.client_secret)
        if isinstance(auth, OAuthUpstreamAuth) and auth.client_id == record.client_id and auth.client_secret:
            client = UpstreamClient(record.client_id, auth.client_secret.get_secret_value())
        await oauth_client.revoke(self.http, record, client)
        await self.store.delete_credential(user_id, slot, only_if=held[1])  # (a newer connection stays)
        return True

    async def disconnect_all(self, user_id: str, routes: dict[str, object]) -> int:
        """Every credential of the user, revoked at its server where it can be, then dropped (`users remove`,
        `credentials revoke`); `routes`: upstream_auth by route name (a configured client's secret)."""
        taken = await self.store.drop_credentials(user_id)  # (at once: what is revoked is what was dropped)
        for slot, sealed in taken.items():
            record = await self.vault.opened(user_id, slot, sealed)
            if record is None:
                continue  # (unreadable: its key is gone; dropped)
            kind, _, name = slot.partition(":")
            auth = routes.get(name) if kind == "route" else None
            secret = (
                auth.client_secret
                if isinstance(auth, OAuthUpstreamAuth) and auth.client_id == record.client_id
                else None
            )
            client = UpstreamClient(record.client_id, secret.get_secret_value() if secret else record.client_secret)
            await oauth_client.revoke(self.http, record, client)
        return len(taken)


def _slot(route: str, auth: OAuthUpstreamAuth | ProviderTokenUpstreamAuth) -> str:
    return provider_slot(auth.provider) if isinstance(auth, ProviderTokenUpstreamAuth) else route_slot(route)
