"""`users add | list | remove | passwd | groups | revoke`: local accounts (argon2id password hashes), through the
admin service (gateway.admin.users, gateway.admin.grants) the admin API also calls."""

from __future__ import annotations

import argparse
import time

from gateway.admin import grants, users
from gateway.admin.target import AdminTarget
from gateway.cli.common import Commands, add_command, read_password, when, with_store
from gateway.cli.examples import CONFIG, PROG
from gateway.config import Settings
from gateway.store.base import Store


def add_commands(commands: Commands) -> None:
    group = commands.add_parser("users", help="local accounts (argon2id password hashes)")
    user_commands = group.add_subparsers(title="users commands", metavar="ACTION", required=True)
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
    groups = add_command(
        user_commands,
        "groups",
        "show a local account's groups, or replace them (its login sessions end)",
        _users_groups,
        examples=[f"{PROG} users groups alice {CONFIG}", f"{PROG} users groups alice --set eng,ops {CONFIG}"],
    )
    groups.add_argument("name")
    groups.add_argument("--set", dest="groups", help="comma-separated group names ('' for none)")
    revoke = add_command(
        user_commands,
        "revoke",
        "end every grant, token and login session of a user, keeping the account",
        _users_revoke,
        examples=[f"{PROG} users revoke alice {CONFIG}", f"{PROG} users revoke corp:1234 {CONFIG}"],
    )
    revoke.add_argument("name", help="a local account's name, or a user id (corp:1234)")


def _groups(text: str) -> tuple[str, ...]:
    return tuple(g.strip() for g in text.split(",") if g.strip())


def _users_add(args: argparse.Namespace) -> int:
    password = read_password(args.password_stdin)

    async def action(settings: Settings, store: Store) -> None:
        user = await users.add_user(
            store, args.name, password, email=args.email, groups=_groups(args.groups), now=time.time()
        )
        print(f"created user {user.name} ({user.user_id})")

    return with_store(args, action)


def _users_list(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        for user in (await users.list_users(store, limit=None)).users:
            print(f"{user.name}\t{user.email or '-'}\t{','.join(user.groups) or '-'}\t{when(user.created_at)}")

    return with_store(args, action)


def _users_remove(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        removal = await users.remove_user(AdminTarget(settings, store), args.name)
        print(
            f"removed user {args.name}: {removal.sessions} login session(s) ended, {removal.tokens} token(s) "
            f"revoked (with their refresh tokens), {removal.credentials} upstream credential(s) revoked and dropped"
        )

    return with_store(args, action)


def _users_passwd(args: argparse.Namespace) -> int:
    password = read_password(args.password_stdin)

    async def action(settings: Settings, store: Store) -> None:
        await users.set_password(store, args.name, password)
        print(
            f"password changed for {args.name}; their login sessions ended (tokens already issued stay valid: "
            "`tokens list`, `tokens revoke`)"
        )

    return with_store(args, action)


def _users_groups(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        if args.groups is None:
            shown = await users.show_user(store, args.name)
            print(f"{shown.name}\t{','.join(shown.groups) or '-'}")
            return
        user = await users.set_groups(store, args.name, _groups(args.groups))
        print(f"{user.name}\t{','.join(user.groups) or '-'}")

    return with_store(args, action)


def _users_revoke(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        revoked = await grants.revoke_user(store, args.name, now=time.time())
        print(
            f"revoked the access of {revoked.user_id}: {revoked.sessions} login session(s) ended, {revoked.grants} "
            f"grant(s) and {revoked.tokens} token(s) revoked; the account stays"
        )

    return with_store(args, action)
