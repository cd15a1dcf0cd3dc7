"""`serve`: bind every listener first, print what is served, then run one process or supervise N workers."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys

from gateway import __version__
from gateway.cli.common import Commands, add_command, checked, settings_of
from gateway.config import Listen, Route, Settings
from gateway.config.warnings import config_warnings
from gateway.logs import configure as configure_logging
from gateway.routing import RouteTable
from gateway.startup import bind_all, cli_listen, cli_workers
from gateway.store.open import describe_store


def add_commands(commands: Commands) -> None:
    serve = add_command(commands, "serve", "run the gateway", _serve)
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
        "--access-log",
        action="store_true",
        help="one log line per HTTP request, every endpoint (off by default: the audit log records every MCP "
        "request and OAuth event; the access line costs CPU on every request)",
    )
    serve.add_argument(
        "--watch-config",
        action="store_true",
        help="also reload when the config file changes (checked every second), as on SIGHUP",
    )


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway.admin.listener import bind_admin
    from gateway.server import event_loop_factory, inherited_admin_sockets, inherited_sockets, serve

    configure_logging(args.log_level, args.log_format, access_log=args.access_log)
    settings = settings_of(args)
    listen, workers = checked(
        lambda: (cli_listen(settings.listen, host=args.host, port=args.port), cli_workers(args.workers))
    )
    inherited = inherited_sockets()  # a worker of `--workers N`: the parent bound everything and said so
    if inherited is not None:
        sockets, metrics = inherited
        admin = inherited_admin_sockets()  # (worker 0's; the others serve no admin API)
    else:
        sockets, per_worker = checked(lambda: bind_all(listen, workers))  # before anything starts
        metrics = per_worker[0] if per_worker else []
        admin = checked(lambda: bind_admin(settings.admin))
        _banner(args, settings, listen, workers)
        for warning in config_warnings(settings, listen):
            logging.getLogger("gateway").warning("%s", warning)
        if workers > 1:
            return _serve_workers(args, settings, workers, (sockets, admin), per_worker)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(serve(Path(args.config), settings, sockets, metrics, args.watch_config, admin))
    return 0


def _banner(args: argparse.Namespace, settings: Settings, listen: Listen, workers: int) -> None:
    table = RouteTable(settings)
    print(f"mcp-auth-gateway {__version__}: issuer {settings.public_url}", flush=True)
    print(f"  store: {describe_store(settings.store)}", flush=True)
    for info in table.routes:
        print(f"  route {info.route.name}: {info.resource} -> {_target(info.route)}", flush=True)
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
    bound: tuple[list[socket.socket], list[socket.socket]],
    metrics: list[list[socket.socket]],
) -> int:
    """The parent keeps the embedded store up (if any) so workers join one server, then supervises them; `bound`:
    the public sockets and the admin listener's (for worker 0)."""
    from gateway.server import run_workers
    from gateway.store.embedded import start_embedded

    sockets, admin = bound
    embedded = start_embedded(settings.store.data_dir) if settings.store.url is None else None
    try:
        return run_workers(sys.argv[1:] if args.argv is None else args.argv, workers, sockets, metrics, admin)
    finally:
        if embedded is not None:
            embedded.stop()
        for sock in [*sockets, *(s for own in metrics for s in own), *admin]:
            sock.close()


def _target(route: Route) -> str:
    """What a route forwards to, in words: its URL, its command, or its virtual server's members."""
    if route.command is not None:
        return f"stdio: {' '.join(route.command.argv)[:120]} ({route.command.isolation})"
    if route.aggregate is not None:
        return "virtual server of " + ", ".join(route.aggregate.members)
    return f"{route.upstream} (HTTP+SSE)" if route.upstream_transport == "sse" else route.upstream
