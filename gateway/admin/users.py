"""Local accounts and login sessions: list, add, remove, passwords, groups; a user's sessions, and ending one."""

from __future__ import annotations

import re

from gateway import accounts
from gateway.accounts import USER_NAME, AccountError
from gateway.admin.errors import bad_request, conflict, not_found
from gateway.admin.target import AdminTarget, connector_for
from gateway.admin.views import MAX_LISTED, SessionList, SessionView, UserList, UserRemoval, UserView
from gateway.oauth.token_values import token_id
from gateway.store.base import Store
from gateway.store.records import UserRecord

MAX_GROUPS = 64
GROUP_NAME = re.compile(r"^[^,\s][^,]{0,127}$")  # a comma would split it in X-Forwarded-Groups and in `--groups`
HEX = re.compile(r"^[0-9a-f]{8,64}$")


def user_view(user: UserRecord) -> UserView:
    return UserView(user.name, user.user_id, user.email, list(user.groups), user.created_at)


async def resolve_user_id(store: Store, user: str) -> str:
    """A stable user id (`corp:1234`, `local:alice`, taken as given) or a local account's name (which must exist).

    Raises:
        AdminError: 404, no local account of that name.
    """
    if ":" in user:
        return user
    record = await store.load_user(user)
    if record is None:
        raise not_found(f"no user named {user!r}")
    return record.user_id


async def list_users(store: Store, *, limit: int | None = MAX_LISTED) -> UserList:
    """Local accounts by name; `limit` None: all of them (the CLI's listing)."""
    users = await store.list_users()
    limit = len(users) if limit is None else limit
    return UserList([user_view(u) for u in users[:limit]], len(users) > limit)


def check_groups(groups: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Group names, de-duplicated in order.

    Raises:
        AdminError: 400, too many, empty, with a comma, or longer than 128 characters.
    """
    if len(groups) > MAX_GROUPS:
        raise bad_request(f"at most {MAX_GROUPS} groups")
    for group in groups:
        if not GROUP_NAME.match(group):
            raise bad_request("a group name has 1 to 128 characters, no comma, and does not start with a space")
    return tuple(dict.fromkeys(groups))


async def add_user(
    store: Store, name: str, password: str, *, email: str | None, groups: tuple[str, ...], now: float
) -> UserView:
    """Raises: AdminError 409 (exists) or 400 (bad name, weak password, bad groups)."""
    groups = check_groups(groups)
    if USER_NAME.match(name) and await store.load_user(name) is not None:
        raise conflict(f"user {name!r} already exists (use `users passwd` to change the password)")
    try:
        record = await accounts.add_user(store, name, password, email=email, groups=groups, now=now)
    except AccountError as exc:
        raise bad_request(str(exc)) from None
    return user_view(record)


async def show_user(store: Store, name: str) -> UserView:
    """Raises: AdminError 404."""
    return user_view(await _existing(store, name))


async def _existing(store: Store, name: str) -> UserRecord:
    user = await store.load_user(name)
    if user is None:
        raise not_found(f"no user named {name!r}")
    return user


async def remove_user(target: AdminTarget, name: str) -> UserRemoval:
    """Delete the account and end its access at once (gateway.accounts.remove_user), then revoke and drop the
    upstream credentials held for it. Raises: AdminError 404."""
    await _existing(target.store, name)
    try:
        removal = await accounts.remove_user(target.store, name, now=target.clock())
    except AccountError as exc:  # (removed meanwhile)
        raise not_found(str(exc)) from None
    routes = {route.name: route.upstream_auth for route in target.settings.routes}
    async with connector_for(target) as connector:  # revoked at their servers where they allow it, and dropped
        held = await connector.disconnect_all(f"local:{name}", routes)
    return UserRemoval(name, removal.sessions, removal.tokens, held)


async def set_password(store: Store, name: str, password: str) -> None:
    """A new password; the user's login sessions end. Raises: AdminError 404, 400 (weak password)."""
    await _existing(store, name)
    try:
        await accounts.set_password(store, name, password)
    except AccountError as exc:
        raise bad_request(str(exc)) from None


async def set_groups(store: Store, name: str, groups: list[str] | tuple[str, ...]) -> UserView:
    """Replace the user's groups; their login sessions end (tokens already issued keep the groups they were issued
    with until they expire or are revoked). Raises: AdminError 404, 400."""
    checked = check_groups(groups)
    user = await _existing(store, name)
    if user.groups != checked:
        user = user.model_copy(update={"groups": checked})
        await store.save_user(user)
    return user_view(user)


def _session_view(session_hash: str, user_id: str, created_at: float, authenticated_at: float | None) -> SessionView:
    return SessionView(token_id(session_hash), user_id, created_at, authenticated_at)


async def list_sessions(store: Store, user: str) -> SessionList:
    user_id = await resolve_user_id(store, user)
    found = await store.list_user_sessions(user_id)
    views = [_session_view(h, user_id, r.created_at, r.authenticated_at) for h, r in found[:MAX_LISTED]]
    return SessionList(views, len(found) > MAX_LISTED)


async def end_session(store: Store, user: str, session_id: str) -> SessionView:
    """End one login session, named by the id `list_sessions` shows. Raises: AdminError 400, 404, 409."""
    session_id = session_id.lower()
    if not HEX.match(session_id):
        raise bad_request("a session id is 8 to 64 hex digits")
    user_id = await resolve_user_id(store, user)
    matching = [(h, r) for h, r in await store.list_user_sessions(user_id) if h.startswith(session_id)]
    if not matching:
        raise not_found(f"{user_id} has no login session {session_id}")
    if len(matching) > 1:
        raise conflict(f"session id {session_id} is ambiguous ({len(matching)} sessions); give more hex digits")
    session_hash, record = matching[0]
    await store.delete_browser_session(session_hash)
    return _session_view(session_hash, user_id, record.created_at, record.authenticated_at)
