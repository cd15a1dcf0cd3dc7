"""`config print`: the effective configuration (file, environment, defaults) as YAML or JSON, secrets redacted."""

from __future__ import annotations

import argparse
import json
from typing import Any

import yaml

from gateway.cli.common import Commands, add_command, settings_of
from gateway.config import Settings


def add_commands(commands: Commands) -> None:
    group = commands.add_parser("config", help="the effective configuration")
    actions = group.add_subparsers(title="config commands", metavar="ACTION", required=True)
    printing = add_command(actions, "print", "print the effective configuration, secrets redacted", _print)
    printing.add_argument("--json", action="store_true", help="JSON (as check-config --print) instead of YAML")


def redacted(settings: Settings) -> dict[str, Any]:
    """Every setting as plain data; secrets (SecretStr: store.url, client secrets, credentials) as '**********'."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    return data


def _print(args: argparse.Namespace) -> int:
    data = redacted(settings_of(args))
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    return 0
