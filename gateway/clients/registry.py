"""Resolve a client_id to a client: YAML first, then the store (DCR, `clients add`), then CIMD."""

from __future__ import annotations

import json
import logging

from gateway.clients.cimd import CimdError, CimdFetcher, check_url, is_cimd_client_id
from gateway.config import ClientSettings, Settings
from gateway.oauth.client_metadata import MAX_REDIRECT_URIS
from gateway.oauth.display_text import hidden_character
from gateway.oauth.redirects import redirect_uri_problem
from gateway.oauth.registration import DCR_PREFIX
from gateway.oauth.token_values import hash_token
from gateway.store.base import ClientStore
from gateway.store.records import ClientRecord

logger = logging.getLogger(__name__)


def config_client(entry: ClientSettings) -> ClientRecord:
    secret = entry.client_secret.get_secret_value() if entry.client_secret else None
    method = entry.token_endpoint_auth_method or ("client_secret_basic" if secret else "none")
    return ClientRecord(
        client_id=entry.client_id,
        kind="config",
        client_secret_hash=hash_token(secret) if secret else None,
        token_endpoint_auth_method=method,
        redirect_uris=tuple(entry.redirect_uris),
        client_name=entry.client_name,
        grant_types=tuple(entry.grant_types),
        dpop_bound_access_tokens=entry.dpop_bound_access_tokens,
        jwks=json.dumps(entry.jwks) if entry.jwks is not None else None,
        jwks_uri=entry.jwks_uri,
        groups=tuple(entry.groups),
        scopes=tuple(entry.scopes) if entry.scopes is not None else None,
    )


class ClientRegistry:
    def __init__(self, settings: Settings, store: ClientStore, fetcher: CimdFetcher | None) -> None:
        self._configured = {c.client_id: config_client(c) for c in settings.clients}
        self._store = store
        self._fetcher = fetcher
        self._idle_ttl = settings.oauth.dcr_client_idle_ttl
        self._private_use_schemes = tuple(settings.oauth.private_use_schemes)

    async def resolve(self, client_id: str, *, now: float) -> ClientRecord | None:
        """The client, or None when unknown.

        Raises:
            CimdError: a URL client_id whose document could not be used (the fetcher remembers failures briefly).
            StoreUnavailableError: Redis is down.
        """
        if client_id in self._configured:
            return self._configured[client_id]
        if is_cimd_client_id(client_id):
            if self._fetcher is None:
                raise CimdError("this gateway does not accept URL client_ids (cimd.enabled is false)")
            check_url(client_id)  # today's URL rules (ASCII, no punycode host) bind documents cached before them
            cached = await self._store.load_cimd(client_id)
            if cached is not None:
                return self._current_policy(cached)
            record, ttl = await self._fetcher.fetch(client_id, now=now)
            if ttl > 0:
                await self._store.save_cimd(client_id, record, ttl)
            logger.info("CIMD client %s fetched (cached %ss)", client_id, ttl)
            return record
        # DCR clients expire when idle: each use slides the expiry (GETEX); admin-added ones never do
        stored = await self._store.load_client(client_id, self._idle_ttl if client_id.startswith(DCR_PREFIX) else None)
        return None if stored is None else self._current_policy(stored)

    def _current_policy(self, record: ClientRecord) -> ClientRecord | None:
        """A stored client under today's rules: a record saved before they tightened (an `ms-msdt:` redirect,
        140,000 URIs, a name with a bidi override) keeps only what would be accepted now; an oversized one is
        unknown."""
        if len(record.redirect_uris) > MAX_REDIRECT_URIS:
            return None
        kept = tuple(
            u
            for u in record.redirect_uris
            if redirect_uri_problem(u, private_use_schemes=self._private_use_schemes) is None
        )
        update: dict[str, object] = {} if kept == record.redirect_uris else {"redirect_uris": kept}
        if record.client_name is not None and hidden_character(record.client_name):  # saved before that rule
            update["client_name"] = None  # shown as an unnamed application, never with its hidden characters
        return record.model_copy(update=update) if update else record
