"""`routes list`: one tab-separated line per route and virtual server, as the gateway will serve them."""

from __future__ import annotations

import argparse

from gateway.cli.common import Commands, add_command, settings_of
from gateway.config import AllowRules, Route
from gateway.routing import RouteTable

RULE_KINDS = ("users", "emails", "email_domains", "groups", "providers")


def add_commands(commands: Commands) -> None:
    group = commands.add_parser("routes", help="the configured routes and virtual servers")
    actions = group.add_subparsers(title="routes commands", metavar="ACTION", required=True)
    add_command(
        actions,
        "list",
        "one line per route: name, endpoint, resource, upstream, scopes, access (tab-separated)",
        _list,
    )


def _list(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    for info in RouteTable(settings).routes:
        route = info.route
        endpoint = f"{route.host}{route.path}" if route.host else route.path
        rules, inherited = (route.allow, False) if route.allow is not None else (settings.allow, True)
        scopes = ",".join(route.scopes) or "-"
        print("\t".join((route.name, endpoint, info.resource, target(route), scopes, access(rules, inherited))))
    return 0


def target(route: Route) -> str:
    """Where a route's requests go: its URL, `stdio: <program>` or `virtual: <member>,<member>`."""
    if route.command is not None:
        return f"stdio: {route.command.argv[0]}"
    if route.aggregate is not None:
        return "virtual: " + ",".join(route.aggregate.members)
    return route.upstream


def access(rules: AllowRules, inherited: bool) -> str:
    """`users:2 groups:1`, or `any signed-in user` (no rule: everyone who can sign in; a token is always needed);
    `(global allow)` when the route has no `allow` of its own."""
    parts = [f"{kind}:{len(getattr(rules, kind))}" for kind in RULE_KINDS if getattr(rules, kind)]
    summary = "any signed-in user" if rules.any_signed_in or not parts else " ".join(parts)
    return summary + (" (global allow)" if inherited else "")
