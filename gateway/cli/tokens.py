"""`tokens issue | revoke | list`: access tokens for scripts, CI and service accounts (values shown once)."""

from __future__ import annotations

import argparse
import sys
import time

from gateway.accounts import issue_service_token, parse_duration
from gateway.cli.common import CliError, Commands, add_command, read_line, when, with_store
from gateway.config import Settings
from gateway.oauth.token_values import hash_token
from gateway.routing import RouteTable
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
        table = RouteTable(settings)
        try:
            info = table.by_name(args.route)
        except KeyError:
            known = ", ".join(r.route.name for r in table.routes)
            raise CliError(f"no route named {args.route!r} (known: {known})") from None
        issued = await issue_service_token(
            store, args.user, info, tuple(dict.fromkeys(args.scope)), ttl, now=time.time()
        )
        print(
            f"token {issued.token_id} for {issued.record.user_id} on {info.resource}, "
            f"expires {when(issued.record.expires_at)}",
            file=sys.stderr,
        )
        print(issued.token)

    return with_store(args, action)


def _tokens_revoke(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        if args.token_id:
            hashes = await store.find_access_token_hashes(args.token_id.lower())
            if len(hashes) > 1:
                raise CliError(f"token id {args.token_id} is ambiguous ({len(hashes)} tokens); give more hex digits")
        else:
            value = read_line("a token").strip() if args.token == "-" else args.token
            hashes = [hash_token(value)]
        if not hashes or not await store.revoke_access_token(hashes[0]):
            raise CliError("no such token")
        print(f"revoked token {hashes[0][:8]}")

    return with_store(args, action)


def _tokens_list(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        user = await store.load_user(args.user)
        user_id = user.user_id if user else args.user if ":" in args.user else f"local:{args.user}"
        now = time.time()
        for token_hash, record in await store.list_access_tokens(user_id):
            state = "revoked" if record.revoked else "expired" if not record.usable(now) else "active"
            print(
                f"{token_hash[:8]}\t{record.route}\t{' '.join(record.scopes) or '-'}\t{record.client_id}\t"
                f"{state}\texpires {when(record.expires_at)}"
            )

    return with_store(args, action)
