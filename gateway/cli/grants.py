"""`grants list | revoke`: the authorizations (refresh-token families, with their access tokens) of a user or a
client, and ending one; through the admin service (gateway.admin.grants) the admin API also calls."""

from __future__ import annotations

import argparse
import sys
import time

from gateway.admin import grants
from gateway.admin.views import MAX_LISTED
from gateway.cli.common import Commands, add_command, when, with_store
from gateway.cli.examples import CONFIG, PROG, examples_epilog
from gateway.config import Settings
from gateway.store.base import Store


def add_commands(commands: Commands) -> None:
    group = commands.add_parser("grants", help="grants (authorizations) and their tokens, by user or by client")
    group.epilog = examples_epilog(
        [f"{PROG} grants list --user alice {CONFIG}", f"{PROG} grants revoke 1a2b3c4d {CONFIG}"]
    )
    actions = group.add_subparsers(title="grants commands", metavar="ACTION", required=True)
    listing = add_command(
        actions,
        "list",
        "list the grants of a user or of a client (token ids only, never values)",
        _list,
        examples=[f"{PROG} grants list --user alice {CONFIG}", f"{PROG} grants list --client my-app {CONFIG}"],
    )
    which = listing.add_mutually_exclusive_group(required=True)
    which.add_argument("--user", help="a local account's name, or a user id (corp:1234)")
    which.add_argument("--client", help="a client_id")
    revoke = add_command(
        actions,
        "revoke",
        "end a grant and every token of it, named by its id or by any of its tokens' ids",
        _revoke,
        examples=[f"{PROG} grants revoke 1a2b3c4d {CONFIG}"],
    )
    revoke.add_argument("id", help="a grant id, or a token id from `grants list` / `tokens list`")


def _list(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        listing = await grants.list_grants(store, user=args.user, client=args.client, now=time.time())
        for grant in listing.grants:
            tokens = ",".join(f"{t.kind}:{t.token_id}" for t in grant.tokens)
            print(
                f"{grant.grant_id or '-'}\t{grant.user_id}\t{grant.client_id}\t{grant.route}\t"
                f"{' '.join(grant.scopes) or '-'}\t{grant.state}\texpires {when(grant.expires_at)}\t{tokens}"
            )
        if listing.truncated:
            print(f"(the first {MAX_LISTED} grants; there are more)", file=sys.stderr)

    return with_store(args, action)


def _revoke(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        revoked = await grants.revoke_grant(store, args.id)
        ended = f"grant {revoked.grant_id}" if revoked.grant_id else "a token outside any grant"
        print(f"revoked {ended}: {len(revoked.token_ids)} token(s) ({', '.join(revoked.token_ids)})")

    return with_store(args, action)
