"""OAuth clients: those of the YAML file, admin-added ones (PRE-1), registered ones (DCR) and fetched metadata
documents (CIMD); add and remove the admin-added and registered ones."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import replace
from typing import Any, Literal

from gateway.accounts import AccountError, add_static_client
from gateway.admin.errors import bad_request, conflict, forbidden, not_found
from gateway.admin.views import MAX_LISTED, ClientCreated, ClientList, ClientView
from gateway.clients.registry import config_client
from gateway.config import Settings
from gateway.oauth.grant_types import AUTHORIZATION_CODE, REFRESH_TOKEN
from gateway.store.base import Store
from gateway.store.records import ClientRecord

Kind = Literal["pre-registered", "dcr", "cimd"]
Source = Literal["config", "static", "dcr", "cimd"]
_KINDS: dict[str, tuple[Kind, Source]] = {
    "config": ("pre-registered", "config"),
    "static": ("pre-registered", "static"),
    "dcr": ("dcr", "dcr"),
    "cimd": ("cimd", "cimd"),
}


def client_view(record: ClientRecord) -> ClientView:
    kind, source = _KINDS.get(record.kind, ("dcr", "dcr"))
    return ClientView(
        record.client_id,
        kind,
        source,
        record.client_name,
        list(record.redirect_uris),
        list(record.grant_types),
        record.token_endpoint_auth_method,
        record.client_id_issued_at,
    )


async def list_clients(settings: Settings, store: Store, *, limit: int | None = MAX_LISTED) -> ClientList:
    """YAML clients first, then the stored ones, then the cached metadata documents; `limit` None: all."""
    records = [config_client(entry) for entry in settings.clients]
    records += await store.list_clients()
    records += await store.list_cimd_clients()
    limit = len(records) if limit is None else limit
    used = await store.clients_last_used([r.client_id for r in records[:limit]])
    views = [replace(client_view(r), last_used=used.get(r.client_id)) for r in records[:limit]]
    return ClientList(views, len(records) > limit)


def _configured(settings: Settings, client_id: str | None) -> bool:
    return client_id is not None and any(c.client_id == client_id for c in settings.clients)


async def add_client(
    settings: Settings,
    store: Store,
    *,
    client_id: str | None,
    redirect_uris: list[str],
    auth_method: str,
    name: str | None,
    secret: str | None,
    grant_types: Collection[str] | None,
    jwks: dict[str, Any] | str | None,
    jwks_uri: str | None,
    groups: Collection[str],
    scopes: Collection[str] | None,
    now: float,
) -> ClientCreated:
    """Pre-register a client with the rules of `clients[]` (gateway.accounts.add_static_client); a generated secret
    comes back once. Raises: AdminError 409 (the id is taken), 400 (what the rules refuse)."""
    if _configured(settings, client_id):
        raise conflict(f"client {client_id!r} is defined in the YAML configuration")
    if client_id and await store.load_client(client_id) is not None:
        raise conflict(f"client {client_id!r} already exists")
    if secret is not None and len(secret) < 16:
        raise bad_request("a client secret needs at least 16 characters")
    try:
        record, issued = await add_static_client(
            store,
            client_id=client_id,
            redirect_uris=redirect_uris,
            auth_method=auth_method,
            name=name,
            secret=secret,
            now=now,
            private_use_schemes=settings.oauth.private_use_schemes,
            grant_types=grant_types or (AUTHORIZATION_CODE, REFRESH_TOKEN),
            jwks=json.dumps(jwks) if isinstance(jwks, dict) else jwks,
            jwks_uri=jwks_uri,
            groups=groups,
            scopes=scopes,
        )
    except AccountError as exc:
        raise bad_request(str(exc)) from None
    return ClientCreated(client_view(record), issued if secret is None else None)


async def remove_client(settings: Settings, store: Store, client_id: str) -> ClientView:
    """Delete an admin-added or registered client (its tokens stay valid until they expire or are revoked).
    Raises: AdminError 403 (a YAML client), 404."""
    if _configured(settings, client_id):
        raise forbidden(f"client {client_id!r} is defined in the YAML configuration; remove it there")
    record = await store.load_client(client_id)
    if record is None or not await store.delete_client(client_id):
        raise not_found(f"no client {client_id!r}")
    return client_view(record)
