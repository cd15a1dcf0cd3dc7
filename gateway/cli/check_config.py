"""`check-config`: validate the configuration (exit 0 valid, 1 invalid), or print it with secrets redacted."""

from __future__ import annotations

import argparse
import json

from gateway.cli.common import Commands, add_command, settings_of
from gateway.store.open import describe_store


def add_commands(commands: Commands) -> None:
    check = add_command(commands, "check-config", "validate the configuration; exit 0 valid, 1 invalid", _check_config)
    check.add_argument(
        "--print", action="store_true", dest="print_config", help="print the effective configuration (secrets redacted)"
    )


def _check_config(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    if args.print_config:
        print(json.dumps(settings.model_dump(mode="json"), indent=2))  # SecretStr dumps as '**********'
    else:
        print(f"configuration OK: {len(settings.routes)} route(s), store: {describe_store(settings.store)}")
    return 0
