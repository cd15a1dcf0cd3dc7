"""`routes`: one MCP upstream each, its public path, access, policy and what is forwarded in both directions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from gateway.config.access import AllowRules
from gateway.config.aggregate import Aggregate
from gateway.config.base import Model, plain, url_problems
from gateway.config.policy import PolicySettings
from gateway.config.rate_limits import RouteRateLimits
from gateway.config.stdio import STDIO_SCHEME, Bridge, StdioCommand, stdio_problems
from gateway.config.upstream_auth import UpstreamAuth, upstream_auth_problems
from gateway.proxy import header_names

Claim = Literal["user", "email", "preferred_username", "groups", "client_id", "scopes"]
DEFAULT_IDENTITY_HEADERS: dict[str, Claim] = {
    "X-Forwarded-User": "user",
    "X-Forwarded-Email": "email",
    "X-Forwarded-Preferred-Username": "preferred_username",
    "X-Forwarded-Groups": "groups",
    "X-MCP-Client-Id": "client_id",
    "X-MCP-Scopes": "scopes",
}


class Route(Model):
    name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*$",  # (not `.` nor `..`: a path segment in URLs)
        description="Unique; used in the CLI, logs, metrics and URLs.",
    )
    path: str = Field(default="/mcp", description="Public MCP endpoint path; resource = origin + path.")
    host: str | None = Field(default=None, description="Serve this route on another host name (host-based route).")
    upstream: str = Field(description="URL of the unmodified MCP server's Streamable HTTP endpoint.")
    command: StdioCommand | None = Field(
        default=None, description="A stdio MCP server the gateway runs instead of an `upstream` URL."
    )
    upstream_transport: Literal["streamable_http", "sse"] = Field(
        default="streamable_http",
        description="What `upstream` speaks: Streamable HTTP, or the legacy HTTP+SSE transport (2024-11-05; "
        "`upstream` is then its SSE endpoint).",
    )
    aggregate: Aggregate | None = Field(
        default=None, description="(made from a `virtual_servers` entry: the routes it combines)"
    )
    bridge: Bridge = Field(
        default_factory=Bridge, description="Connections to an `upstream_transport: sse` server (shared or per user)."
    )
    scopes: list[str] = Field(default_factory=list, description="scopes_supported in this route's PRM.")
    required_scopes: list[str] = Field(default_factory=list, description="Scopes a token needs; else 403.")
    resource_name: str | None = Field(default=None, description="Human-readable name in the PRM.")
    preserve_host: bool = Field(default=False, description="Forward the client's Host/Origin instead of upstream's.")
    identity_headers: dict[str, Claim] = Field(
        default_factory=lambda: dict(DEFAULT_IDENTITY_HEADERS), description="Header name -> claim sent upstream."
    )
    allowed_origins: list[str] = Field(default_factory=list, description="Extra browser origins for this route.")
    timeout: float = Field(default=300.0, gt=0, description="Seconds to wait for the upstream's response headers.")
    allow: AllowRules | None = Field(default=None, description="Access rules; default: the global `allow`.")
    policy: PolicySettings = Field(default_factory=PolicySettings, description="Per-tool/resource/prompt rules.")
    rate_limits: RouteRateLimits = Field(default_factory=RouteRateLimits, description="Per-route overrides.")
    audit_arguments: bool = Field(default=False, description="Log tools/call arguments (else only a digest).")
    identity_jwt_header: str | None = Field(
        default=None, description="Also send a gateway-signed JWT of the identity in this header (e.g. X-MCP-Identity)."
    )
    forward_headers: list[str] = Field(
        default_factory=list,
        description="More request headers sent upstream, by "
        "name, beyond the built-in allow-list (never Authorization, Cookie, Host, "
        "hop-by-hop, X-Forwarded-* or identity headers).",
    )
    forward_cookies: list[str] = Field(
        default_factory=list,
        description="Cookies sent upstream, by name (default "
        "none); the upstream's Set-Cookie passes for these names only. Never mcpgw*.",
    )
    forward_response_headers: list[str] = Field(
        default_factory=list,
        description="More upstream response headers "
        "passed to clients, by name (never Set-Cookie, Access-Control-*, "
        "Clear-Site-Data, Strict-Transport-Security, Location, …).",
    )
    scope_descriptions: dict[str, Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=dict, description="Scope -> what it allows, in words, shown on the consent page."
    )
    upstream_auth: UpstreamAuth | None = Field(
        default=None, description="The credential the gateway presents to the upstream (never the client's)."
    )
    require_dpop: bool = Field(
        default=False, description="Accept only DPoP-bound tokens with a proof per request (RFC 9449); no Bearer."
    )

    @property
    def bridged(self) -> Bridge | None:
        """How the gateway holds this route's server when it bridges it (gateway.stdio), else None."""
        return self.command if self.command is not None else self.bridge if self.upstream_transport == "sse" else None

    @model_validator(mode="before")
    @classmethod
    def _stdio_upstream(cls, data: Any) -> Any:
        """A command route's upstream is its process host (gateway.stdio), named after the route."""
        if isinstance(data, dict) and data.get("command") is not None and "upstream" not in data:
            return {**data, "upstream": f"{STDIO_SCHEME}{data.get('name')}/mcp"}
        return data


def route_problems(data: dict[str, Any]) -> list[str]:
    """At least one route; unique names and endpoints; paths, upstream URLs, scopes and forwarded names that
    work. Tolerant of malformed input (pydantic reports its types)."""
    routes = plain(data.get("routes"))  # (routes given as models are checked alike)
    if routes is None or routes == []:
        return ["routes: at least one route is required"]
    if not isinstance(routes, list):
        return []
    public_url = data.get("public_url")
    public_host = urlsplit(public_url).netloc.lower() if isinstance(public_url, str) else ""
    problems: list[str] = []
    names: dict[str, int] = {}
    endpoints: dict[tuple[str, str], int] = {}
    for i, route in enumerate(routes):
        if not isinstance(route, dict):
            continue
        where = f"routes[{i}]"
        problems += _name_problems(route, where, i, names)
        problems += _path_problems(route, where, i, endpoints, public_host)
        problems += stdio_problems(route, where)
        upstream = route.get("upstream")
        if isinstance(upstream, str) and route.get("command") is None and route.get("aggregate") is None:
            problems += [f"{where}.upstream: {p}" for p in url_problems(upstream, origin_only=False)]
        for field in ("scopes", "required_scopes"):
            scopes = route.get(field)
            if isinstance(scopes, list) and "offline_access" in scopes:
                problems.append(f"{where}.{field}: offline_access is not a resource scope (MCP SEP-2207)")
        problems += _forwarding_problems(route, where)
        problems += upstream_auth_problems(route, where, _own_names(route))
    return problems


def _name_problems(route: dict[str, Any], where: str, i: int, names: dict[str, int]) -> list[str]:
    """A route name seen before (`names`: name -> first index, updated)."""
    name = route.get("name")
    if not isinstance(name, str):
        return []
    first = names.setdefault(name, i)
    return [f"{where}.name: duplicate route name {name!r} (also routes[{first}])"] if first != i else []


def _path_problems(
    route: dict[str, Any], where: str, i: int, endpoints: dict[tuple[str, str], int], public_host: str
) -> list[str]:
    """A path that is not a plain absolute path, or an endpoint (host, path) seen before (`endpoints`, updated)."""
    path = route.get("path", "/mcp")
    if not isinstance(path, str):
        return []
    if not path.startswith("/") or "?" in path or "#" in path or "//" in path:
        return [f"{where}.path: must be an absolute path without query or fragment"]
    if path != "/" and path.endswith("/"):
        return [f"{where}.path: no trailing slash (both forms are served)"]
    # a route whose host is public_url's host is the same endpoint as a host-less one
    key = (str(route.get("host") or public_host).lower(), path.rstrip("/") or "/")
    first = endpoints.setdefault(key, i)
    return [f"{where}.path: duplicate route path {path!r} (also routes[{first}])"] if first != i else []


def _own_names(route: dict[str, Any]) -> set[str]:
    """The identity headers the gateway sets on this route (the defaults too, in any spelling)."""
    identity = route.get("identity_headers", DEFAULT_IDENTITY_HEADERS)
    own = {
        *DEFAULT_IDENTITY_HEADERS,
        *(identity if isinstance(identity, dict) else {}),
        *([route["identity_jwt_header"]] if isinstance(route.get("identity_jwt_header"), str) else []),
    }
    return {header_names.canonical(str(h)) for h in own}


def _forwarding_problems(route: dict[str, Any], where: str) -> list[str]:
    """forward_headers / forward_cookies / forward_response_headers name valid tokens the gateway may let through:
    never a credential, a header the gateway sets (identity included, in any spelling) or a hop-by-hop header."""
    problems: list[str] = []
    own_names = _own_names(route)
    h = header_names
    checks: dict[str, Callable[[str], bool]] = {
        "forward_headers": lambda n: (
            h.canonical(n) in own_names | h.HOP_BY_HOP | h.GATEWAY_REQUEST
            or h.canonical(n).startswith(h.GATEWAY_REQUEST_PREFIXES)
        ),
        "forward_cookies": h.gateway_cookie,
        "forward_response_headers": lambda n: (
            n.lower() in h.NEVER_FROM_UPSTREAM | h.HOP_BY_HOP or n.lower().startswith(h.NEVER_FROM_UPSTREAM_PREFIXES)
        ),
    }
    for field, refused in checks.items():
        values = route.get(field)
        for value in values if isinstance(values, list) else []:
            if not isinstance(value, str):
                continue  # (pydantic reports the type)
            if not header_names.TOKEN.match(value):
                problems.append(f"{where}.{field}: {value!r} is not a valid name")
            elif refused(value):
                problems.append(f"{where}.{field}: {value!r} can never be forwarded (the gateway sets or guards it)")
    return problems
