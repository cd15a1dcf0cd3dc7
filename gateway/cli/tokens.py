"""`tokens issue | revoke | list`: access tokens for scripts, CI and service accounts (values shown once), through the
admin service (gateway.admin.grants) the admin API also calls."""

from __future__ import annotations

import argparse
import sys
import time

from gateway.accounts import parse_duration
from gateway.admin import grants
from gateway.cli.common import Commands, add_command, read_line, when, with_store
from gateway.config import Settings
from gateway.store.base import Store


def add_commands(commands: Commands) -> None:
    tokens = commands.add_parser("tokens", help="access tokens for scripts, CI and service accounts")
    token_commands = tokens.add_subparsers(title="tokens commands", metavar="ACTION", required=True)
    issue = add_command(token_commands, "issue", "print a new access token bound to one route", _tokens_issue)
    issue.add_argument("--user", required=True, help="local user the token acts for")
    issue.add_argument("--route", required=True, help="route name (the token's audience)")
    issue.add_argument("--scope", action="append", default=[], help="scope to grant (repeatable; default: the route's)")
    issue.add_argument("--ttl", default="1h", help="lifetime: 90s, 15m, 1h, 30d (default 1h)")
    revoke = add_command(token_commands, "revoke", "revoke a token by value or by id", _tokens_revoke)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("token", nargs="?", help="the token value ('-' reads it from standard input)")
    which.add_argument("--id", dest="token_id", help="the 8-hex token id shown by `tokens list`")
    listing = add_command(token_commands, "list", "list a user's tokens (ids only, never values)", _tokens_list)
    listing.add_argument("--user", required=True)


def _tokens_issue(args: argparse.Namespace) -> int:
    ttl = parse_duration(args.ttl)

    async def action(settings: Settings, store: Store) -> None:
        scopes = tuple(dict.fromkeys(args.scope))
        issued, resource = await grants.issue_token(
            settings, store, args.user, args.route, scopes, ttl, now=time.time()
        )
        print(
            f"token {issued.token_id} for {issued.record.user_id} on {resource}, "
            f"expires {when(issued.record.expires_at)}",
            file=sys.stderr,
        )
        print(issued.token)

    return with_store(args, action)


def _tokens_revoke(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        if args.token_id:
            revoked = await grants.revoke_token(store, args.token_id)
        else:
            value = read_line("a token").strip() if args.token == "-" else args.token
            revoked = await grants.revoke_token_value(store, value)
        print(f"revoked token {revoked.token_ids[0]}")

    return with_store(args, action)


def _tokens_list(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        for token in await grants.list_user_tokens(store, args.user, now=time.time()):
            print(
                f"{token.token_id}\t{token.route}\t{' '.join(token.scopes) or '-'}\t{token.client_id}\t"
                f"{token.state}\texpires {when(token.expires_at)}"
            )

    return with_store(args, action)
