"""What every command shares: the config file option, the store around an action, one-line errors, input."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import NoReturn, TypeAlias, TypeVar

from gateway.config import Settings, load_settings
from gateway.ports import BindError
from gateway.startup import OptionError
from gateway.store.base import Store
from gateway.store.open import open_store

CONFIG_ENV = "MCP_GATEWAY_CONFIG"
T = TypeVar("T")
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # (not subscriptable at run time)
Run: TypeAlias = Callable[[argparse.Namespace], int | None]


class CliError(Exception):
    """Printed as `mcp-auth-gateway: error: <message>`, exit status 1."""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage is one `--help` away), exit status 2 as argparse's."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def fail(reason: str) -> int:
    print(f"mcp-auth-gateway: error: {' '.join(reason.split())}", file=sys.stderr)
    return 1


def add_command(commands: Commands, name: str, help_text: str, run: Run) -> argparse.ArgumentParser:
    """A subcommand that reads the configuration (`-c FILE`, default $MCP_GATEWAY_CONFIG) and runs `run`."""
    command = commands.add_parser(name, help=help_text, description=help_text)
    command.add_argument(
        "-c", "--config", default=os.environ.get(CONFIG_ENV), help=f"YAML configuration file (default: ${CONFIG_ENV})"
    )
    command.set_defaults(run=run)
    return command


def settings_of(args: argparse.Namespace, **overrides: object) -> Settings:
    if not args.config:
        raise CliError(f"no configuration: pass -c FILE or set {CONFIG_ENV}")
    return load_settings(args.config, **overrides)


def with_store(args: argparse.Namespace, action: Callable[[Settings, Store], Awaitable[int | None]]) -> int:
    """Run `action` on the configured store, reached (ping) before anything else happens."""
    settings = settings_of(args)

    async def run() -> int | None:
        async with open_store(settings.store) as store:
            await store.ping()
            return await action(settings, store)

    return int(asyncio.run(run()) or 0)


def checked(check: Callable[[], T]) -> T:
    """`check()`, with a bad option or a port that cannot be bound as a one-line CliError."""
    try:
        return check()
    except (OptionError, BindError) as exc:
        raise CliError(str(exc)) from None


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return read_line("a password")
    if sys.stdin is None or not sys.stdin.isatty():
        raise CliError("no terminal to prompt for a password; use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise CliError("passwords do not match")
    return first


def read_line(what: str) -> str:
    """One line of standard input, without its line ending; an empty input is an error, not an empty value."""
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise CliError(f"no input: expected {what} on standard input")
    return line.rstrip("\r\n")


def when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
