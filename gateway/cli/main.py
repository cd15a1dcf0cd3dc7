"""The parser (one module per command group adds its commands) and the translation of failures to one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from redis.exceptions import RedisError

from gateway import __version__
from gateway.accounts import AccountError
from gateway.cli import (
    check_config,
    clients,
    config_print,
    credentials,
    demo,
    grants,
    keys,
    routes,
    serve,
    tokens,
    users,
)
from gateway.cli.common import CONFIG_ENV, CliError, Parser, fail
from gateway.config import ConfigError
from gateway.store.errors import EmbeddedStoreError, StoreUnavailableError
from gateway.store.open import unavailable_reason


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else None
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        status = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers, not at interpreter exit
        return status
    except BrokenPipeError:  # `… | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return fail("output closed before everything was written (broken pipe)")
    except ConfigError as exc:
        return _invalid_configuration(exc)
    except (CliError, AccountError, EmbeddedStoreError) as exc:
        return fail(str(exc))
    except StoreUnavailableError as exc:
        return fail(f"cannot reach the store ({unavailable_reason(exc)}); is Redis running at store.url?")
    except RedisError as exc:  # something answered at store.url, but not as Redis does
        return fail(f"the store at store.url does not answer as Redis ({type(exc).__name__}: {exc})"[:300])
    except EOFError:
        return fail("standard input ended before the input was complete")
    except KeyboardInterrupt:
        return fail("interrupted")
    except OSError as exc:  # writing the output (a full disk), a file named on the command line
        where = f" ({exc.filename})" if exc.filename else ""
        return fail(f"{exc.strerror or type(exc).__name__}{where}")


def _invalid_configuration(exc: ConfigError) -> int:
    """One problem on the error line; several, one per indented line below it."""
    problems = exc.located()  # (`gateway.yaml:12: routes[0].upstream: …` where the file names the key)
    if len(problems) == 1:
        return fail(f"invalid configuration: {problems[0]}")
    print(f"mcp-auth-gateway: error: invalid configuration ({len(problems)} problems):", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mcp-auth-gateway",
        description="OAuth 2.1 gateway and reverse proxy for unmodified MCP servers.",
        epilog=f"The config file may also come from ${CONFIG_ENV}; every key can be overridden by "
        "MCP_GATEWAY_<KEY> environment variables (__ for nesting, e.g. MCP_GATEWAY_STORE__URL).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in (
        serve,
        check_config,
        routes,
        config_print,
        demo,
        users,
        clients,
        keys,
        tokens,
        grants,
        credentials,
    ):  # the order `--help` lists them in
        group.add_commands(commands)
    return parser
