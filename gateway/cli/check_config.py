"""`check-config`: validate the configuration (exit 0 valid, 1 invalid), or print it with secrets redacted; warn
about what is valid but probably wrong; with `--connect`, reach the store, upstreams and providers it names."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from gateway.cli.common import Commands, add_command, fail, settings_of
from gateway.cli.config_print import redacted
from gateway.config.warnings import config_warnings
from gateway.store.open import describe_store


def add_commands(commands: Commands) -> None:
    check = add_command(commands, "check-config", "validate the configuration; exit 0 valid, 1 invalid", _check_config)
    check.add_argument(
        "--print", action="store_true", dest="print_config", help="print the effective configuration (secrets redacted)"
    )
    check.add_argument(
        "--connect",
        action="store_true",
        help="also reach the store, each HTTP upstream, each stdio server's program and each OIDC provider's "
        "discovery document (3 s each, 10 s in all); exit 1 if any cannot be reached",
    )


def _check_config(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    for warning in config_warnings(settings):
        print(f"mcp-auth-gateway: warning: {warning}", file=sys.stderr)
    if args.print_config:
        print(json.dumps(redacted(settings), indent=2))  # SecretStr dumps as '**********'
    else:
        print(f"configuration OK: {len(settings.routes)} route(s), store: {describe_store(settings.store)}")
    if not args.connect:
        return 0
    from gateway.cli.connect import run_checks

    outcomes = asyncio.run(run_checks(settings))
    for outcome in outcomes:
        print(outcome.line(), flush=True)
    failed = sum(not outcome.ok for outcome in outcomes)
    return fail(f"{failed} of {len(outcomes)} connection checks failed") if failed else 0
