"""`users add | list | remove | passwd`: local accounts (argon2id password hashes)."""

from __future__ import annotations

import argparse
import time

from gateway.accounts import add_user, remove_user, set_password
from gateway.cli.common import Commands, add_command, read_password, when, with_store
from gateway.config import Settings
from gateway.store.base import Store


def add_commands(commands: Commands) -> None:
    users = commands.add_parser("users", help="local accounts (argon2id password hashes)")
    user_commands = users.add_subparsers(title="users commands", metavar="ACTION", required=True)
    add = add_command(user_commands, "add", "create a local account", _users_add)
    add.add_argument("name")
    add.add_argument("--email")
    add.add_argument("--groups", default="", help="comma-separated group names")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add_command(user_commands, "list", "list local accounts", _users_list)
    remove = add_command(user_commands, "remove", "delete a local account", _users_remove)
    remove.add_argument("name")
    passwd = add_command(user_commands, "passwd", "set a new password", _users_passwd)
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def _users_add(args: argparse.Namespace) -> int:
    password = read_password(args.password_stdin)
    groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())

    async def action(settings: Settings, store: Store) -> None:
        user = await add_user(store, args.name, password, email=args.email, groups=groups, now=time.time())
        print(f"created user {user.name} ({user.user_id})")

    return with_store(args, action)


def _users_list(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        for user in await store.list_users():
            print(f"{user.name}\t{user.email or '-'}\t{','.join(user.groups) or '-'}\t{when(user.created_at)}")

    return with_store(args, action)


def _users_remove(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        from gateway.upstream_oauth.connector import Connector
        from gateway.vault import Vault

        removal = await remove_user(store, args.name, now=time.time())
        connector = Connector(store, Vault(settings.vault, store), settings.public_url)
        try:  # the credentials it held upstream: revoked there where the server allows, and dropped
            held = await connector.disconnect_all(
                f"local:{args.name}", {r.name: r.upstream_auth for r in settings.routes}
            )
        finally:
            await connector.close()
        print(
            f"removed user {args.name}: {removal.sessions} login session(s) ended, {removal.tokens} token(s) "
            f"revoked (with their refresh tokens), {held} upstream credential(s) revoked and dropped"
        )

    return with_store(args, action)


def _users_passwd(args: argparse.Namespace) -> int:
    password = read_password(args.password_stdin)

    async def action(settings: Settings, store: Store) -> None:
        await set_password(store, args.name, password)
        print(
            f"password changed for {args.name}; their login sessions ended (tokens already issued stay valid: "
            "`tokens list`, `tokens revoke`)"
        )

    return with_store(args, action)
