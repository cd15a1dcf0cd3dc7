"""What every command shares: the config file option, the store around an action, one-line errors, input."""

from __future__ import annotations

import argparse
import asyncio
import copy
import getpass
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeAlias, TypeVar

from gateway.cli.examples import EXAMPLES, command_path, examples_epilog
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


class HelpFormatter(argparse.HelpFormatter):
    """argparse's, with each option's default shown (when it has one worth showing and its help does not already
    say it), and indented lines of descriptions and epilogs (the examples) kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if _shown_default(action) and "%(default)" not in text and "default" not in text.lower():
            text = f"{text} (default: %(default)s)".lstrip()
        return text

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and _shown_default(action):  # (argparse prints no help line for help=None)
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            lines = block.splitlines()
            verbatim = [line for line in lines if line.startswith("  ")]
            wrapped = " ".join(line for line in lines if not line.startswith("  "))
            filled = super()._fill_text(wrapped, width, indent) if wrapped else ""
            blocks.append("\n".join([filled, *(indent + line for line in verbatim)] if filled else verbatim))
        return "\n\n".join(blocks)


def _shown_default(action: argparse.Action) -> bool:
    default = action.default
    if default is None or default is argparse.SUPPRESS or isinstance(default, bool) or default in ("", []):
        return False
    return bool(action.option_strings) or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage is one `--help` away), exit status 2 as argparse's, defaults in
    `--help`, and the command's examples (gateway.cli.examples) at its end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        examples = EXAMPLES.get(command_path(self.prog))
        if examples:
            self.epilog = f"{self.epilog}\n\n{examples_epilog(examples)}" if self.epilog else examples_epilog(examples)

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def fail(reason: str) -> int:
    print(f"mcp-auth-gateway: error: {' '.join(reason.split())}", file=sys.stderr)
    return 1


def add_command(
    commands: Commands, name: str, help_text: str, run: Run, *, examples: Sequence[str] | None = None
) -> argparse.ArgumentParser:
    """A subcommand that reads the configuration (`-c FILE`, default $MCP_GATEWAY_CONFIG) and runs `run`; its
    `--help` ends with `examples` (default: gateway.cli.examples.EXAMPLES of its path)."""
    command = commands.add_parser(name, help=help_text, description=help_text)
    if examples:
        command.epilog = examples_epilog(examples)
    now = ", now %(default)s" if os.environ.get(CONFIG_ENV) else ""
    command.add_argument(
        "-c",
        "--config",
        default=os.environ.get(CONFIG_ENV),
        help=f"YAML configuration file (default: ${CONFIG_ENV}{now})",
    )
    command.set_defaults(run=run)
    return command


def settings_of(args: argparse.Namespace, **overrides: object) -> Settings:
    if not args.config:
        raise CliError(f"no configuration: pass -c FILE or set {CONFIG_ENV}")
    return load_settings(args.config, **overrides)


def with_store(args: argparse.Namespace, action: Callable[[Settings, Store], Awaitable[int | None]]) -> int:
    """Run `action` on the configured store, reached (ping) before anything else happens; a refusal of the admin
    service (gateway.admin, which the commands call) is a one-line CliError."""
    from gateway.admin.errors import AdminError

    settings = settings_of(args)

    async def run() -> int | None:
        async with open_store(settings.store) as store:
            await store.ping()
            try:
                return await action(settings, store)
            except AdminError as exc:
                raise CliError(exc.message) from None

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
