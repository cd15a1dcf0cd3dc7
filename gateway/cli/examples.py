"""Example invocations, shown at the end of each command's `--help` (keyed by the command's path: "users add").

Kept in one place so a command group's module need not carry them; `add_command(..., examples=[...])` may give
them instead. Every command has some (tests/cli_polish walks the parser).
"""

from __future__ import annotations

from collections.abc import Sequence

PROG = "mcp-auth-gateway"
CONFIG = "-c gateway.yaml"

EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        f"{PROG} demo",
        f"{PROG} check-config {CONFIG} --connect",
        f"{PROG} serve {CONFIG}",
    ),
    "serve": (
        f"{PROG} serve {CONFIG}",
        f"MCP_GATEWAY_CONFIG=gateway.yaml {PROG} serve --port 9000 --log-format json",
        f"{PROG} serve {CONFIG} --workers 4 --watch-config",
    ),
    "check-config": (
        f"{PROG} check-config {CONFIG}",
        f"{PROG} check-config {CONFIG} --connect",
        f"{PROG} check-config {CONFIG} --print",
    ),
    "demo": (
        f"{PROG} demo",
        f"{PROG} demo --port 8081 --upstream-port 9101 --data-dir /tmp/gw-demo",
    ),
    "routes": (f"{PROG} routes list {CONFIG}",),
    "routes list": (
        f"{PROG} routes list {CONFIG}",
        f"{PROG} routes list {CONFIG} | cut -f1,3",
    ),
    "config": (f"{PROG} config print {CONFIG}",),
    "config print": (
        f"{PROG} config print {CONFIG}",
        f"{PROG} config print {CONFIG} --json | jq .routes",
    ),
    "users": (
        f"{PROG} users add alice --email alice@example.com {CONFIG}",
        f"{PROG} users list {CONFIG}",
    ),
    "users add": (
        f"{PROG} users add alice --email alice@example.com --groups eng,ops {CONFIG}",
        f"printf '%s\\n' \"$PASSWORD\" | {PROG} users add ci --password-stdin {CONFIG}",
    ),
    "users list": (f"{PROG} users list {CONFIG}",),
    "users remove": (f"{PROG} users remove alice {CONFIG}",),
    "users passwd": (
        f"{PROG} users passwd alice {CONFIG}",
        f"printf '%s\\n' \"$PASSWORD\" | {PROG} users passwd alice --password-stdin {CONFIG}",
    ),
    "clients": (
        f"{PROG} clients list {CONFIG}",
        f"{PROG} clients add --client-id my-app --redirect-uri http://127.0.0.1:3000/callback {CONFIG}",
    ),
    "clients list": (f"{PROG} clients list {CONFIG}",),
    "clients add": (
        f'{PROG} clients add --client-id my-app --redirect-uri http://127.0.0.1:3000/callback --name "My App" {CONFIG}',
        f"{PROG} clients add --client-id ci-bot --auth-method client_secret_basic --grant client_credentials "
        f"--scope notes:read {CONFIG}",
    ),
    "clients remove": (f"{PROG} clients remove my-app {CONFIG}",),
    "keys": (f"{PROG} keys rotate {CONFIG}",),
    "keys rotate": (f"{PROG} keys rotate {CONFIG}",),
    "tokens": (
        f"{PROG} tokens issue --user alice --route notes {CONFIG}",
        f"{PROG} tokens list --user alice {CONFIG}",
    ),
    "tokens issue": (
        f"{PROG} tokens issue --user alice --route notes {CONFIG}",
        f"{PROG} tokens issue --user ci --route notes --scope notes:read --ttl 30d {CONFIG}",
    ),
    "tokens revoke": (
        f"{PROG} tokens revoke --id 1a2b3c4d {CONFIG}",
        f"printf '%s\\n' \"$TOKEN\" | {PROG} tokens revoke - {CONFIG}",
    ),
    "tokens list": (f"{PROG} tokens list --user alice {CONFIG}",),
    "credentials": (
        f"{PROG} credentials list {CONFIG}",
        f"{PROG} credentials revoke local:alice {CONFIG}",
    ),
    "credentials list": (
        f"{PROG} credentials list {CONFIG}",
        f"{PROG} credentials list --user local:alice {CONFIG}",
    ),
    "credentials revoke": (
        f"{PROG} credentials revoke local:alice {CONFIG}",
        f"{PROG} credentials revoke local:alice --route github {CONFIG}",
    ),
    "credentials new-key": (f"{PROG} credentials new-key",),
    "credentials rotate-key": (f"{PROG} credentials rotate-key {CONFIG}",),
    "credentials rekey": (f"{PROG} credentials rekey {CONFIG}",),
}


def command_path(prog: str) -> str:
    """`mcp-auth-gateway users add` -> `users add` (the top level: "")."""
    return prog.partition(" ")[2]


def examples_epilog(examples: Sequence[str]) -> str:
    """The `--help` epilog: one indented line each (kept as written by the help formatter)."""
    return "examples:\n" + "\n".join(f"  {example}" for example in examples)
