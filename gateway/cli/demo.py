"""`demo`: a bundled MCP server with the gateway in front of it on the embedded store, user 'demo' created."""

from __future__ import annotations

import argparse

from gateway.cli.common import Commands, checked
from gateway.config import Listen
from gateway.logs import configure as configure_logging
from gateway.startup import cli_listen, cli_port


def add_commands(commands: Commands) -> None:
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


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway.demo import run_demo

    configure_logging("info", "plain")
    listen = checked(lambda: cli_listen(Listen(metrics_port=None), host=args.host, port=args.port))
    upstream_port = checked(lambda: cli_port("--upstream-port", args.upstream_port))
    return checked(lambda: run_demo(listen, upstream_port, Path(args.data_dir)))
