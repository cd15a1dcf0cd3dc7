"""`keys rotate`: a new key to sign the identity JWTs sent upstream (older ones stay published)."""

from __future__ import annotations

import argparse

from gateway.cli.common import CliError, Commands, add_command, with_store
from gateway.config import Settings
from gateway.store.base import Store


def add_commands(commands: Commands) -> None:
    keys = commands.add_parser("keys", help="keys that sign the identity JWTs sent upstream")
    key_commands = keys.add_subparsers(title="keys commands", metavar="ACTION", required=True)
    add_command(key_commands, "rotate", "add a new signing key (older ones stay published)", _keys_rotate)


def _keys_rotate(args: argparse.Namespace) -> int:
    from gateway.signing import rotate

    async def action(settings: Settings, store: Store) -> None:
        if settings.identity_jwt.key_file is not None:
            raise CliError("identity_jwt.key_file is set: rotate by deploying a new key file")
        kid = await rotate(store)
        print(f"new signing key {kid}; gateways pick it up within 30 s, older keys stay in /.well-known/jwks.json")

    return with_store(args, action)
