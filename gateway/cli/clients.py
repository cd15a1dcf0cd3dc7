"""`clients list | add | remove`: pre-registered OAuth clients (PRE-1) beside those of the YAML file, through the admin
service (gateway.admin.clients) the admin API also calls."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gateway.admin import clients as admin_clients
from gateway.cli.common import CliError, Commands, add_command, read_line, with_store
from gateway.config import Settings
from gateway.oauth.grant_types import GRANT_TYPES
from gateway.store.base import Store


def add_commands(commands: Commands) -> None:
    clients = commands.add_parser("clients", help="pre-registered OAuth clients (PRE-1)")
    client_commands = clients.add_subparsers(title="clients commands", metavar="ACTION", required=True)
    add_command(client_commands, "list", "list YAML, admin-added and registered clients", _clients_list)
    cadd = add_command(client_commands, "add", "pre-register a client with fixed id and redirect URIs", _clients_add)
    cadd.add_argument("--client-id", help="fixed id (default: generated)")
    cadd.add_argument(
        "--redirect-uri", action="append", default=[], help="repeatable; required for the authorization_code grant"
    )
    cadd.add_argument("--name", help="shown on the consent page")
    cadd.add_argument(
        "--auth-method",
        default="none",
        choices=["none", "client_secret_post", "client_secret_basic", "private_key_jwt"],
        help="none: public client with PKCE (default); private_key_jwt: signed assertions (--jwks-file or "
        "--jwks-uri); otherwise a secret is printed once",
    )
    cadd.add_argument("--secret-stdin", action="store_true", help="read a fixed secret from standard input")
    cadd.add_argument(
        "--grant",
        action="append",
        choices=list(GRANT_TYPES),
        help="repeatable (default: authorization_code and refresh_token); client_credentials: a machine client, "
        "its own principal client:<id>",
    )
    cadd.add_argument("--jwks-file", type=Path, help="private_key_jwt: the client's public JWK set (JSON file)")
    cadd.add_argument("--jwks-uri", help="private_key_jwt: where the client publishes its JWK set")
    cadd.add_argument("--group", action="append", default=[], help="client_credentials: a group of client:<id>")
    cadd.add_argument("--scope", action="append", help="client_credentials: a scope it may be given (repeatable)")
    cremove = add_command(client_commands, "remove", "delete an admin-added or registered client", _clients_remove)
    cremove.add_argument("client_id")


def _clients_add(args: argparse.Namespace) -> int:
    secret = read_line("a client secret").strip() if args.secret_stdin else None
    if args.secret_stdin and (not secret or len(secret) < 16):
        raise CliError("a client secret needs at least 16 characters")
    try:
        jwks = args.jwks_file.read_text(encoding="utf-8") if args.jwks_file else None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {args.jwks_file}: {exc}") from None

    async def action(settings: Settings, store: Store) -> None:
        created = await admin_clients.add_client(
            settings,
            store,
            client_id=args.client_id,
            redirect_uris=args.redirect_uri,
            auth_method=args.auth_method,
            name=args.name,
            secret=secret,
            grant_types=args.grant,
            jwks=jwks,
            jwks_uri=args.jwks_uri,
            groups=args.group,
            scopes=args.scope,
            now=time.time(),
        )
        print(f"client_id: {created.client.client_id}")
        if created.client_secret is not None:
            print(f"client_secret: {created.client_secret}   (shown once; only its hash is stored)")
        print(f"token_endpoint_auth_method: {created.client.token_endpoint_auth_method}", file=sys.stderr)
        print(f"grant_types: {' '.join(created.client.grant_types)}", file=sys.stderr)

    return with_store(args, action)


def _clients_list(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        for client in (await admin_clients.list_clients(settings, store, limit=None)).clients:
            print(f"{client.client_id}\t{client.source}\t{client.client_name or '-'}\t{' '.join(client.redirect_uris)}")

    return with_store(args, action)


def _clients_remove(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        await admin_clients.remove_client(settings, store, args.client_id)
        print(f"removed client {args.client_id} (its tokens stay valid until they expire or are revoked)")

    return with_store(args, action)
