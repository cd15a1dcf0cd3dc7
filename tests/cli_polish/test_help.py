"""`--help` of every command: its defaults, the config file's environment variable, and example invocations."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from gateway.cli.common import CONFIG_ENV, HelpFormatter
from gateway.cli.main import build_parser
from tests.cli_polish.conftest import run


def commands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser under `parser` (groups and their actions), by command path ("users add"; the top level "")."""
    yield parser.prog.partition(" ")[2], parser
    for action in parser._actions:  # (argparse keeps its subcommands here)
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from commands(child)


COMMANDS = dict(commands(build_parser()))


def test_the_walk_finds_every_command() -> None:
    """The commands docs/contract.md names, and this issue's new ones, are all walked below."""
    expected = {"serve", "check-config", "demo", "users add", "users list", "tokens issue", "clients add"}
    assert expected | {"routes list", "config print"} <= set(COMMANDS)


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda path: path or "top")
def test_every_command_ends_its_help_with_examples(path: str) -> None:
    """Issue 15: 1-3 example invocations at the end of each `--help`, each a whole command line."""
    text = COMMANDS[path].format_help()
    head, found, examples = text.rpartition("\nexamples:\n")
    assert found, text
    lines = examples.rstrip("\n").splitlines()
    assert 1 <= len(lines) <= 3, lines
    for line in lines:
        assert line.startswith("  ") and "mcp-auth-gateway " + path in line, line


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda path: path or "top")
def test_every_option_with_a_default_shows_it(path: str) -> None:
    """Issue 15: an option's default is in `--help` (as `(default: X)`, or in words the option's help gives)."""
    parser = COMMANDS[path]
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        default = action.default
        if not action.option_strings or default in (None, argparse.SUPPRESS, "", []) or isinstance(default, bool):
            continue
        own = HelpFormatter(parser.prog)._get_help_string(action) or ""
        shown = own % {"default": default} if "%(default)" in own else own
        assert str(default) in shown and "default" in shown, (action.option_strings, shown)
        assert " ".join(shown.split()) in text


@pytest.mark.parametrize("path", sorted(p for p, c in COMMANDS.items() if "--config" in c._option_string_actions))
def test_the_config_option_names_its_environment_variable(path: str) -> None:
    text = COMMANDS[path].format_help()
    assert f"${CONFIG_ENV}" in text


def test_help_as_users_see_it() -> None:
    """A subprocess: the defaults and examples are in what `--help` prints, wrapped lines and all."""
    result = run("serve", "--help")
    assert result.returncode == 0, result.stderr
    assert "(default: info)" in result.stdout and "(default: $MCP_GATEWAY_CONFIG)" in result.stdout
    assert result.stdout.rstrip().endswith("mcp-auth-gateway serve -c gateway.yaml --workers 4 --watch-config")
    demo = run("demo", "--help").stdout
    assert "(default: 127.0.0.1)" in demo and "(default: 9001)" in demo
