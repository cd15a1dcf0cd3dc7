"""`keys rotate | list`: the keys that sign the identity JWTs sent upstream (older ones stay published), through the
admin service (gateway.admin.keys) the admin API also calls."""

from __future__ import annotations

import argparse

from gateway.admin import keys
from gateway.admin.target import AdminTarget
from gateway.cli.common import Commands, add_command, with_store
from gateway.cli.examples import CONFIG, PROG
from gateway.config import Settings
from gateway.store.base import Store


def add_commands(commands: Commands) -> None:
    group = commands.add_parser("keys", help="keys that sign the identity JWTs sent upstream")
    key_commands = group.add_subparsers(title="keys commands", metavar="ACTION", required=True)
    add_command(key_commands, "rotate", "add a new signing key (older ones stay published)", _keys_rotate)
    add_command(
        key_commands,
        "list",
        "list the signing keys' ids, the signing one first",
        _keys_list,
        examples=[f"{PROG} keys list {CONFIG}"],
    )


def _keys_rotate(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        key = await keys.rotate_key(AdminTarget(settings, store))
        print(f"new signing key {key.kid}; gateways pick it up within 30 s, older keys stay in /.well-known/jwks.json")

    return with_store(args, action)


def _keys_list(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        for key in (await keys.list_keys(AdminTarget(settings, store))).keys:
            print(f"{key.kid}\t{key.alg or '-'}\t{'signing' if key.signing else 'published'}\t{key.source}")

    return with_store(args, action)
