"""`virtual_servers[]`: one MCP endpoint (its own resource, PRM and scopes) combining several routes. Each becomes
a route of its own (`routes[].aggregate`, made here from the `virtual_servers` entry: every part of the gateway
that knows routes knows it: PRM, consent, tokens, the CLI), whose requests are dispatched to its member routes
(gateway.web.aggregate)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field

from gateway.config.access import AllowRules
from gateway.config.base import Model

VIRTUAL_SCHEME = "virtual://"  # the `upstream` of a virtual server's route
PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")  # also a URI scheme's first part: `<prefix>+<uri>`
MAX_MEMBERS = 32


class Aggregate(Model):
    members: list[str] = Field(min_length=1, max_length=MAX_MEMBERS, description="The routes it combines.")
    separator: str = Field(default="__", min_length=1, max_length=8, pattern=r"^[A-Za-z0-9_.-]+$")
    prefixes: dict[str, Annotated[str, Field(pattern=PREFIX.pattern)]] = Field(default_factory=dict)

    def prefix(self, member: str) -> str:
        return self.prefixes.get(member, member)


class VirtualServer(Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*$", description="Unique among routes.")
    path: str = Field(description="Its public MCP endpoint path; resource = origin + path.")
    host: str | None = Field(default=None, description="Serve it on another host name.")
    routes: list[str] = Field(min_length=1, max_length=MAX_MEMBERS, description="The routes it combines, by name.")
    separator: str = Field(default="__", description="Between a member's prefix and a tool or prompt name.")
    prefixes: dict[str, str] = Field(
        default_factory=dict, description="Route name -> the prefix of its names (default: the route's name)."
    )
    scopes: list[str] | None = Field(default=None, description="scopes_supported (default: every member's).")
    required_scopes: list[str] = Field(default_factory=list, description="Scopes a token needs; else 403.")
    resource_name: str | None = Field(default=None, description="Human-readable name in the PRM.")
    allow: AllowRules | None = Field(default=None, description="Access rules (members' own rules apply too).")


def with_virtual_routes(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with a route for each virtual server (tolerant of malformed input: pydantic and
    `aggregate_problems` report it)."""
    virtual = data.get("virtual_servers")
    routes = data.get("routes")
    if not isinstance(virtual, list) or not virtual or not isinstance(routes, list):
        return data
    by_name = {r.get("name"): r for r in routes if isinstance(r, dict)}
    made = []
    for server in virtual:
        if not isinstance(server, dict) or (by_name.get(server.get("name")) or {}).get("aggregate") is not None:
            continue  # (settings written back out and read again already hold it)
        members = server.get("routes") if isinstance(server.get("routes"), list) else []
        scopes = server.get("scopes")
        if scopes is None:  # every member's, once each, in order
            scopes = list(dict.fromkeys(s for m in members for s in (by_name.get(m) or {}).get("scopes", [])))
        route = {
            "name": server.get("name"),
            "path": server.get("path"),
            "upstream": f"{VIRTUAL_SCHEME}{server.get('name')}",
            "scopes": scopes,
            "required_scopes": server.get("required_scopes", []),
            "aggregate": {
                "members": members,
                "separator": server.get("separator", "__"),
                "prefixes": server.get("prefixes", {}),
            },
        }
        for key in ("host", "resource_name", "allow"):
            if server.get(key) is not None:
                route[key] = server[key]
        made.append(route)
    return {**data, "routes": [*routes, *made]}


def aggregate_problems(data: dict[str, Any]) -> list[str]:
    """Members that are routes of their own (not virtual servers), each once; prefixes of members, distinct
    (a name must say whose it is); a route set up by hand as an aggregate (only `virtual_servers` makes them)."""
    problems: list[str] = []
    routes = data.get("routes") if isinstance(data.get("routes"), list) else []
    virtual = data.get("virtual_servers") if isinstance(data.get("virtual_servers"), list) else []
    virtual_names = {v.get("name") for v in virtual if isinstance(v, dict)}
    for i, route in enumerate(routes):
        if isinstance(route, dict) and route.get("aggregate") is not None and route.get("name") not in virtual_names:
            problems.append(f"routes[{i}].aggregate: unknown key (use virtual_servers)")
    names = {r.get("name") for r in routes if isinstance(r, dict) and r.get("aggregate") is None}
    for i, server in enumerate(virtual):
        if isinstance(server, dict):
            problems += _server_problems(server, f"virtual_servers[{i}]", names)
    return problems


def _server_problems(server: dict[str, Any], where: str, names: set[Any]) -> list[str]:
    problems: list[str] = []
    members = server.get("routes") if isinstance(server.get("routes"), list) else []
    if len(set(map(str, members))) != len(members):
        problems.append(f"{where}.routes: a route is named twice")
    for member in members:
        if member not in names:
            problems.append(f"{where}.routes: {member!r} is not a route")
    prefixes = server.get("prefixes") if isinstance(server.get("prefixes"), dict) else {}
    for member in prefixes:
        if member not in members:
            problems.append(f"{where}.prefixes: {member!r} is not one of its routes")
    chosen = [str(prefixes.get(m, m)) for m in members]
    for member, prefix in zip(members, chosen, strict=True):
        if not PREFIX.match(prefix):
            problems.append(
                f"{where}.prefixes: {member!r} needs a prefix of letters, digits and '-', starting with a letter "
                f"(its names become <prefix>{server.get('separator', '__')}<name>, its resources <prefix>+<uri>)"
            )
    if len(set(p.lower() for p in chosen)) != len(chosen):
        problems.append(f"{where}.prefixes: two routes have the same prefix")
    separator = server.get("separator", "__")
    if isinstance(separator, str) and any(separator in p for p in chosen):
        problems.append(f"{where}.separator: {separator!r} appears in a prefix")
    return problems
