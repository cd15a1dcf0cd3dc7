"""`mcp-auth-gateway`: serve | check-config | demo | users | clients | keys | tokens. One-line errors, exit 1."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import NoReturn, TypeVar

from redis.exceptions import RedisError

from gateway import __version__
from gateway.accounts import (
    AccountError,
    add_static_client,
    add_user,
    issue_service_token,
    parse_duration,
    remove_user,
    set_password,
)
from gateway.config import ConfigError, Listen, Settings, load_settings
from gateway.logs import configure as configure_logging
from gateway.oauth.token_values import hash_token
from gateway.ports import BindError
from gateway.routing import RouteTable
from gateway.startup import OptionError, bind_all, cli_listen, cli_port, cli_workers, public_url_warnings
from gateway.store.base import Store
from gateway.store.errors import EmbeddedStoreError, StoreUnavailableError
from gateway.store.open import describe_store, open_store, unavailable_reason

CONFIG_ENV = "MCP_GATEWAY_CONFIG"
T = TypeVar("T")


class CliError(Exception):
    """Printed as `mcp-auth-gateway: error: <message>`, exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
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
        return _fail("output closed before everything was written (broken pipe)")
    except ConfigError as exc:
        if len(exc.problems) == 1:
            return _fail(f"invalid configuration: {exc.problems[0]}")
        print(f"mcp-auth-gateway: error: invalid configuration ({len(exc.problems)} problems):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except (CliError, AccountError, EmbeddedStoreError) as exc:
        return _fail(str(exc))
    except StoreUnavailableError as exc:
        return _fail(f"cannot reach the store ({unavailable_reason(exc)}); is Redis running at store.url?")
    except RedisError as exc:  # something answered at store.url, but not as Redis does
        return _fail(f"the store at store.url does not answer as Redis ({type(exc).__name__}: {exc})"[:300])
    except EOFError:
        return _fail("standard input ended before the input was complete")
    except KeyboardInterrupt:
        return _fail("interrupted")
    except OSError as exc:  # writing the output (a full disk), a file named on the command line
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"{exc.strerror or type(exc).__name__}{where}")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage is one `--help` away), exit status 2 as argparse's."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _fail(reason: str) -> int:
    print(f"mcp-auth-gateway: error: {' '.join(reason.split())}", file=sys.stderr)
    return 1


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mcp-auth-gateway",
        description="OAuth 2.1 gateway and reverse proxy for unmodified MCP servers.",
        epilog=f"The config file may also come from ${CONFIG_ENV}; every key can be overridden by "
        "MCP_GATEWAY_<KEY> environment variables (__ for nesting, e.g. MCP_GATEWAY_STORE__URL).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = _command(commands, "serve", "run the gateway", _serve)
    serve.add_argument("--host", help="override listen.host")
    serve.add_argument("--port", help="override listen.port")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--workers", default="1", help="worker processes accepting on the one bound port; state is shared through Redis"
    )
    serve.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one JSON object per line, with request ids (for log shippers)",
    )
    serve.add_argument(
        "--watch-config",
        action="store_true",
        help="also reload when the config file changes (checked every second), as on SIGHUP",
    )

    check = _command(commands, "check-config", "validate the configuration; exit 0 valid, 1 invalid", _check_config)
    check.add_argument(
        "--print", action="store_true", dest="print_config", help="print the effective configuration (secrets redacted)"
    )

    demo = commands.add_parser(
        "demo",
        help="run a demo upstream MCP server with the gateway in front of it",
        description="Start a bundled demo MCP server, the gateway in front of it on the "
        "embedded store, create user 'demo', print the MCP URL and the login.",
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", default="8080")
    demo.add_argument("--upstream-port", default="9001")
    demo.add_argument("--data-dir", default="./mcp-gateway-demo", help="where the embedded Redis keeps its data")
    demo.set_defaults(run=_demo)

    users = commands.add_parser("users", help="local accounts (argon2id password hashes)")
    user_commands = users.add_subparsers(title="users commands", metavar="ACTION", required=True)
    add = _command(user_commands, "add", "create a local account", _users_add)
    add.add_argument("name")
    add.add_argument("--email")
    add.add_argument("--groups", default="", help="comma-separated group names")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _command(user_commands, "list", "list local accounts", _users_list)
    remove = _command(user_commands, "remove", "delete a local account", _users_remove)
    remove.add_argument("name")
    passwd = _command(user_commands, "passwd", "set a new password", _users_passwd)
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    clients = commands.add_parser("clients", help="pre-registered OAuth clients (PRE-1)")
    client_commands = clients.add_subparsers(title="clients commands", metavar="ACTION", required=True)
    _command(client_commands, "list", "list YAML, admin-added and registered clients", _clients_list)
    cadd = _command(client_commands, "add", "pre-register a client with fixed id and redirect URIs", _clients_add)
    cadd.add_argument("--client-id", help="fixed id (default: generated)")
    cadd.add_argument("--redirect-uri", action="append", default=[], required=True, help="repeatable")
    cadd.add_argument("--name", help="shown on the consent page")
    cadd.add_argument(
        "--auth-method",
        default="none",
        choices=["none", "client_secret_post", "client_secret_basic"],
        help="none: public client with PKCE (default); otherwise a secret is printed once",
    )
    cadd.add_argument("--secret-stdin", action="store_true", help="read a fixed secret from standard input")
    cremove = _command(client_commands, "remove", "delete an admin-added or registered client", _clients_remove)
    cremove.add_argument("client_id")

    keys = commands.add_parser("keys", help="keys that sign the identity JWTs sent upstream")
    key_commands = keys.add_subparsers(title="keys commands", metavar="ACTION", required=True)
    _command(key_commands, "rotate", "add a new signing key (older ones stay published)", _keys_rotate)

    tokens = commands.add_parser("tokens", help="access tokens for scripts, CI and service accounts")
    token_commands = tokens.add_subparsers(title="tokens commands", metavar="ACTION", required=True)
    issue = _command(token_commands, "issue", "print a new access token bound to one route", _tokens_issue)
    issue.add_argument("--user", required=True, help="local user the token acts for")
    issue.add_argument("--route", required=True, help="route name (the token's audience)")
    issue.add_argument("--scope", action="append", default=[], help="scope to grant (repeatable; default: the route's)")
    issue.add_argument("--ttl", default="1h", help="lifetime: 90s, 15m, 1h, 30d (default 1h)")
    revoke = _command(token_commands, "revoke", "revoke a token by value or by id", _tokens_revoke)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("token", nargs="?", help="the token value ('-' reads it from standard input)")
    which.add_argument("--id", dest="token_id", help="the 8-hex token id shown by `tokens list`")
    listing = _command(token_commands, "list", "list a user's tokens (ids only, never values)", _tokens_list)
    listing.add_argument("--user", required=True)
    return parser


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    run: Callable[[argparse.Namespace], int | None],
) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=help_text, description=help_text)
    command.add_argument(
        "-c", "--config", default=os.environ.get(CONFIG_ENV), help=f"YAML configuration file (default: ${CONFIG_ENV})"
    )
    command.set_defaults(run=run)
    return command


def _settings(args: argparse.Namespace, **overrides: object) -> Settings:
    if not args.config:
        raise CliError(f"no configuration: pass -c FILE or set {CONFIG_ENV}")
    return load_settings(args.config, **overrides)


def _with_store(args: argparse.Namespace, action: Callable[[Settings, Store], Awaitable[int | None]]) -> int:
    settings = _settings(args)

    async def run() -> int | None:
        async with open_store(settings.store) as store:
            await store.ping()
            return await action(settings, store)

    return int(asyncio.run(run()) or 0)


# -- serve / check-config ---------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway.server import event_loop_factory, inherited_sockets, serve

    configure_logging(args.log_level, args.log_format)
    settings = _settings(args)
    listen, workers = _checked(
        lambda: (cli_listen(settings.listen, host=args.host, port=args.port), cli_workers(args.workers))
    )
    inherited = inherited_sockets()  # a worker of `--workers N`: the parent bound everything and said so
    if inherited is not None:
        sockets, metrics = inherited
    else:
        sockets, per_worker = _checked(lambda: bind_all(listen, workers))  # before anything starts
        metrics = per_worker[0] if per_worker else []
        _banner(args, settings, listen, workers)
        for warning in public_url_warnings(settings, listen):
            logging.getLogger("gateway").warning("%s", warning)
        if workers > 1:
            return _serve_workers(args, settings, workers, sockets, per_worker)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(serve(Path(args.config), settings, sockets, metrics, args.watch_config))
    return 0


def _checked(check: Callable[[], T]) -> T:
    try:
        return check()
    except (OptionError, BindError) as exc:
        raise CliError(str(exc)) from None


def _banner(args: argparse.Namespace, settings: Settings, listen: Listen, workers: int) -> None:
    table = RouteTable(settings)
    print(f"mcp-auth-gateway {__version__}: issuer {settings.public_url}", flush=True)
    print(f"  store: {describe_store(settings.store)}", flush=True)
    for info in table.routes:
        print(f"  route {info.route.name}: {info.resource} -> {info.route.upstream}", flush=True)
        print(f"    metadata: {info.metadata_url}", flush=True)
    metrics = (
        "metrics off"
        if listen.metrics_port is None
        else f"metrics on http://{listen.metrics_host or listen.host}:{listen.metrics_port}/metrics"
        + (" (worker i: port + i)" if workers > 1 else "")
    )
    if listen.metrics_token is not None:
        metrics += ", and /metrics with the metrics token"
    print(
        f"  listening on http://{listen.host}:{listen.port} (health: /healthz, /readyz; {metrics})"
        + (f" with {workers} workers" if workers > 1 else ""),
        flush=True,
    )
    if args.watch_config:
        print(f"  reloading when {args.config} changes (or on SIGHUP)", flush=True)


def _serve_workers(
    args: argparse.Namespace,
    settings: Settings,
    workers: int,
    sockets: list[socket.socket],
    metrics: list[list[socket.socket]],
) -> int:
    """The parent keeps the embedded store up (if any) so workers join one server, then supervises them."""
    from gateway.server import run_workers
    from gateway.store.embedded import start_embedded

    embedded = start_embedded(settings.store.data_dir) if settings.store.url is None else None
    try:
        return run_workers(sys.argv[1:] if args.argv is None else args.argv, workers, sockets, metrics)
    finally:
        if embedded is not None:
            embedded.stop()
        for sock in [*sockets, *(s for own in metrics for s in own)]:
            sock.close()


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway.demo import run_demo

    configure_logging("info", "plain")
    listen = _checked(lambda: cli_listen(Listen(metrics_port=None), host=args.host, port=args.port))
    upstream_port = _checked(lambda: cli_port("--upstream-port", args.upstream_port))
    return _checked(lambda: run_demo(listen, upstream_port, Path(args.data_dir)))


def _check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.print_config:
        print(json.dumps(settings.model_dump(mode="json"), indent=2))  # SecretStr dumps as '**********'
    else:
        print(f"configuration OK: {len(settings.routes)} route(s), store: {describe_store(settings.store)}")
    return 0


# -- users ------------------------------------------------------------------------------------------------


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return _read_line("a password")
    if sys.stdin is None or not sys.stdin.isatty():
        raise CliError("no terminal to prompt for a password; use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise CliError("passwords do not match")
    return first


def _read_line(what: str) -> str:
    """One line of standard input, without its line ending; an empty input is an error, not an empty value."""
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise CliError(f"no input: expected {what} on standard input")
    return line.rstrip("\r\n")


def _users_add(args: argparse.Namespace) -> int:
    password = _read_password(args.password_stdin)
    groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())

    async def action(settings: Settings, store: Store) -> None:
        user = await add_user(store, args.name, password, email=args.email, groups=groups, now=time.time())
        print(f"created user {user.name} ({user.user_id})")

    return _with_store(args, action)


def _users_list(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        for user in await store.list_users():
            print(f"{user.name}\t{user.email or '-'}\t{','.join(user.groups) or '-'}\t{_when(user.created_at)}")

    return _with_store(args, action)


def _users_remove(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        removal = await remove_user(store, args.name, now=time.time())
        print(
            f"removed user {args.name}: {removal.sessions} login session(s) ended, {removal.tokens} token(s) "
            "revoked (with their refresh tokens)"
        )

    return _with_store(args, action)


def _users_passwd(args: argparse.Namespace) -> int:
    password = _read_password(args.password_stdin)

    async def action(settings: Settings, store: Store) -> None:
        await set_password(store, args.name, password)
        print(
            f"password changed for {args.name}; their login sessions ended (tokens already issued stay valid: "
            "`tokens list`, `tokens revoke`)"
        )

    return _with_store(args, action)


# -- clients ----------------------------------------------------------------------------------------------


def _clients_add(args: argparse.Namespace) -> int:
    secret = _read_line("a client secret").strip() if args.secret_stdin else None
    if args.secret_stdin and (not secret or len(secret) < 16):
        raise CliError("a client secret needs at least 16 characters")

    async def action(settings: Settings, store: Store) -> None:
        if args.client_id and any(c.client_id == args.client_id for c in settings.clients):
            raise CliError(f"client {args.client_id!r} is defined in the YAML configuration")
        record, issued = await add_static_client(
            store,
            client_id=args.client_id,
            redirect_uris=args.redirect_uri,
            auth_method=args.auth_method,
            name=args.name,
            secret=secret,
            now=time.time(),
            private_use_schemes=settings.oauth.private_use_schemes,
        )
        print(f"client_id: {record.client_id}")
        if issued is not None and not args.secret_stdin:
            print(f"client_secret: {issued}   (shown once; only its hash is stored)")
        print(f"token_endpoint_auth_method: {record.token_endpoint_auth_method}", file=sys.stderr)

    return _with_store(args, action)


def _clients_list(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        for entry in settings.clients:
            print(f"{entry.client_id}\tconfig\t{entry.client_name or '-'}\t{' '.join(entry.redirect_uris)}")
        for client in await store.list_clients():
            print(f"{client.client_id}\t{client.kind}\t{client.client_name or '-'}\t{' '.join(client.redirect_uris)}")

    return _with_store(args, action)


def _clients_remove(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        if any(c.client_id == args.client_id for c in settings.clients):
            raise CliError(f"client {args.client_id!r} is defined in the YAML configuration; remove it there")
        if not await store.delete_client(args.client_id):
            raise CliError(f"no client {args.client_id!r}")
        print(f"removed client {args.client_id} (its tokens stay valid until they expire or are revoked)")

    return _with_store(args, action)


def _keys_rotate(args: argparse.Namespace) -> int:
    from gateway.signing import rotate

    async def action(settings: Settings, store: Store) -> None:
        if settings.identity_jwt.key_file is not None:
            raise CliError("identity_jwt.key_file is set: rotate by deploying a new key file")
        kid = await rotate(store)
        print(f"new signing key {kid}; gateways pick it up within 30 s, older keys stay in /.well-known/jwks.json")

    return _with_store(args, action)


# -- tokens -----------------------------------------------------------------------------------------------


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
            f"expires {_when(issued.record.expires_at)}",
            file=sys.stderr,
        )
        print(issued.token)

    return _with_store(args, action)


def _tokens_revoke(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        if args.token_id:
            hashes = await store.find_access_token_hashes(args.token_id.lower())
            if len(hashes) > 1:
                raise CliError(f"token id {args.token_id} is ambiguous ({len(hashes)} tokens); give more hex digits")
        else:
            value = _read_line("a token").strip() if args.token == "-" else args.token
            hashes = [hash_token(value)]
        if not hashes or not await store.revoke_access_token(hashes[0]):
            raise CliError("no such token")
        print(f"revoked token {hashes[0][:8]}")

    return _with_store(args, action)


def _tokens_list(args: argparse.Namespace) -> int:
    async def action(settings: Settings, store: Store) -> None:
        user = await store.load_user(args.user)
        user_id = user.user_id if user else args.user if ":" in args.user else f"local:{args.user}"
        now = time.time()
        for token_hash, record in await store.list_access_tokens(user_id):
            state = "revoked" if record.revoked else "expired" if not record.usable(now) else "active"
            print(
                f"{token_hash[:8]}\t{record.route}\t{' '.join(record.scopes) or '-'}\t{record.client_id}\t"
                f"{state}\texpires {_when(record.expires_at)}"
            )

    return _with_store(args, action)


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
