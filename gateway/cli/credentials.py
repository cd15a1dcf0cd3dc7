"""`credentials list | revoke | new-key | rotate-key | rekey`: the per-user upstream credentials the gateway holds
(`routes[].upstream_auth` oauth, provider_token) and the vault keys that encrypt them; listing and revoking through the
admin service (gateway.admin.credentials) the admin API also calls."""

from __future__ import annotations

import argparse

from gateway.admin import credentials
from gateway.admin.target import AdminTarget
from gateway.cli.common import CliError, Commands, add_command, when, with_store
from gateway.config import Settings
from gateway.store.base import Store


def add_commands(commands: Commands) -> None:
    group = commands.add_parser("credentials", help="per-user upstream credentials held in the vault, and its keys")
    actions = group.add_subparsers(title="credentials commands", metavar="ACTION", required=True)
    listing = add_command(actions, "list", "list the credentials held (never their values)", _list)
    listing.add_argument("--user", help="only this user id (e.g. local:alice, corp:1234)")
    revoke = add_command(actions, "revoke", "revoke a user's credentials at their servers and drop them", _revoke)
    revoke.add_argument("user", help="the user id (e.g. local:alice)")
    revoke.add_argument("--route", help="only the credential of this route")
    add_command(actions, "new-key", "print a new vault key (for vault.keys or vault.key_file)", _new_key)
    add_command(actions, "rotate-key", "add a new key to the store-held key set (older ones stay)", _rotate_key)
    add_command(actions, "rekey", "seal every credential again with the first key (then drop old keys)", _rekey)


def _list(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        listing = await credentials.list_credentials(AdminTarget(settings, store), args.user, limit=None)
        for held in listing.credentials:
            if not held.readable or held.issued_at is None:
                print(f"{held.user_id}\t{held.slot}\tunreadable (its key is not in the vault's key set)")
                continue
            expires = when(held.expires_at) if held.expires_at else "-"
            refresh = "refreshable" if held.refreshable else "no refresh token"
            print(f"{held.user_id}\t{held.slot}\tissued {when(held.issued_at)}\texpires {expires}\t{refresh}")

    return with_store(args, action)


def _revoke(args: argparse.Namespace) -> int:
    from gateway.vault import route_slot

    async def action(settings: Settings, store: Store) -> None:
        target = AdminTarget(settings, store)
        if args.route:
            dropped = await credentials.drop_credential(target, args.user, route_slot(args.route))
        else:
            dropped = await credentials.drop_credentials(target, args.user)
        print(f"{dropped.dropped} credential(s) of {args.user} revoked and dropped")

    return with_store(args, action)


def _new_key(args: argparse.Namespace) -> int:
    from gateway.vault import new_key

    print(new_key())
    return 0


def _rotate_key(args: argparse.Namespace) -> int:
    from gateway.vault import rotate_stored_key

    async def action(settings: Settings, store: Store) -> None:
        if settings.vault.keys or settings.vault.key_file is not None:
            raise CliError("vault keys are configured: rotate by putting a new key first in vault.keys / key_file")
        kid = await rotate_stored_key(store)
        print(f"new vault key {kid}; restart the gateways to seal with it (older keys stay for reading)")

    return with_store(args, action)


def _rekey(args: argparse.Namespace) -> int:
    from gateway.vault import Vault

    async def action(settings: Settings, store: Store) -> None:
        moved, unreadable = await Vault(settings.vault, store).rekey()
        print(f"{moved} credential(s) sealed again with the first key; {unreadable} unreadable left as they are")

    return with_store(args, action)
