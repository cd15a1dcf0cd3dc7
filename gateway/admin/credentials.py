"""Upstream credentials the gateway holds per user (`routes[].upstream_auth` oauth, provider_token): which slots
are held, never their values; drop one or all (revoked at their servers first where those allow it)."""

from __future__ import annotations

from gateway.admin.errors import bad_request, not_found
from gateway.admin.target import AdminTarget, connector_for
from gateway.admin.views import MAX_LISTED, CredentialDrop, CredentialList, CredentialView
from gateway.store.records import UpstreamCredentialRecord


def _view(user_id: str, slot: str, record: UpstreamCredentialRecord | None) -> CredentialView:
    if record is None:  # sealed with a key the vault's key set no longer has
        return CredentialView(user_id, slot, False, None, None, False)
    return CredentialView(user_id, slot, True, record.issued_at, record.expires_at, record.refresh_token is not None)


async def list_credentials(
    target: AdminTarget, user_id: str | None, *, limit: int | None = MAX_LISTED
) -> CredentialList:
    """The credentials of one user id (`local:alice`, `corp:1234`), or of every user holding any; `limit` None:
    all of them."""
    from gateway.vault import Vault

    vault = Vault(target.settings.vault, target.store)
    users = [user_id] if user_id is not None else await target.store.credential_users()
    views: list[CredentialView] = []
    for user in users:
        views += [_view(user, slot, record) for slot, record in (await vault.all_of(user)).items()]
        if limit is not None and len(views) > limit:
            break
    limit = len(views) if limit is None else limit
    return CredentialList(views[:limit], len(views) > limit)


def _routes(target: AdminTarget) -> dict[str, object]:
    return {route.name: route.upstream_auth for route in target.settings.routes}


async def drop_credential(target: AdminTarget, user_id: str, slot: str) -> CredentialDrop:
    """Revoke one credential at its server (where it allows) and drop it; `slot`: `route:<name>` or
    `provider:<name>`. Raises: AdminError 400 (not a slot), 404 (not held)."""
    kind, _, name = slot.partition(":")
    if kind not in ("route", "provider") or not name:
        raise bad_request("a credential slot is route:<name> or provider:<name>")
    auth = _routes(target).get(name) if kind == "route" else None
    async with connector_for(target) as connector:
        if not await connector.disconnect(user_id, slot, auth):
            held_for = f"route {name}" if kind == "route" else slot
            raise not_found(f"{user_id} holds no credential for {held_for}")
    return CredentialDrop(user_id, 1)


async def drop_credentials(target: AdminTarget, user_id: str) -> CredentialDrop:
    """Every credential of the user, revoked where the servers allow it, and dropped."""
    async with connector_for(target) as connector:
        count = await connector.disconnect_all(user_id, _routes(target))
    return CredentialDrop(user_id, count)
