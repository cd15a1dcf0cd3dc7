"""`routes[].command`: a stdio MCP server the gateway runs itself (MCP basic/transports stdio) instead of an
`upstream` URL. Clients still speak Streamable HTTP to the gateway, with everything an HTTP route has."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from gateway.config.base import Model

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# set by the gateway from the caller's identity (per_user isolation) or its credential: never from `env`
IDENTITY_ENV = ("MCP_GATEWAY_USER", "MCP_GATEWAY_EMAIL", "MCP_GATEWAY_GROUPS")
STDIO_SCHEME = "stdio://"  # the `upstream` a command route is given: its process host (gateway.stdio)


class Bridge(Model):
    """How the gateway holds the servers it bridges: stdio processes, or connections to an HTTP+SSE server."""

    isolation: Literal["shared", "per_user"] = Field(
        default="shared",
        description="shared: one process (or connection) for every caller, identity in each request's _meta; "
        "per_user: one per user (identity and credential in its environment, or its HTTP headers).",
    )
    max_processes: int = Field(default=32, ge=1, le=4096, description="Processes (connections) at once on this route.")
    idle_timeout: float = Field(default=300.0, gt=0, description="Seconds without a request before it is stopped.")
    start_timeout: float = Field(default=30.0, gt=0, description="Seconds it may take to answer initialize.")
    max_backoff: float = Field(default=60.0, gt=0, description="Longest wait before starting again after it died.")


class StdioCommand(Bridge):
    argv: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        min_length=1, max_length=256, description="The server's command line: program first (looked up in PATH)."
    )
    env: dict[str, Annotated[str, Field(max_length=32768)]] = Field(
        default_factory=dict,
        description="Environment variables for it (`${VAR}`: from the gateway's); beyond these only HOME, PATH, "
        "LANG, SHELL, TERM, USER and LOGNAME are inherited.",
    )
    cwd: str | None = Field(default=None, description="Working directory (default: the gateway's).")
    user: str | None = Field(
        default=None,
        description="Run it as this system user (needs the gateway to run as root; Linux, via setpriv).",
    )
    credential_env: str | None = Field(
        default=None,
        description="Environment variable that receives the route's upstream credential (upstream_auth: the token, "
        "without its header format); the process is restarted when the credential changes.",
    )

    @model_validator(mode="before")
    @classmethod
    def _argv_alone(cls, data: Any) -> Any:
        """`command: [python, -m, my_server]` (docs/contract.md) is short for `command: {argv: [...]}`."""
        return {"argv": data} if isinstance(data, list) else data


def stdio_problems(route: dict[str, Any], where: str) -> list[str]:
    """Exactly one of `upstream` and `command`; names the gateway sets are not set by hand; per-user credentials
    only with per_user isolation (a shared process would hold one user's credential for everyone)."""
    command = route.get("command")
    command = {"argv": command} if isinstance(command, list) else command  # (the short form)
    if command is None and route.get("upstream_transport") == "sse":
        return _sse_problems(route, where)
    if command is None:
        return [] if "upstream" in route else [f"{where}: needs `upstream` (a URL) or `command` (a stdio server)"]
    if route.get("upstream_transport", "streamable_http") != "streamable_http":
        return [f"{where}.upstream_transport: a command route's server speaks stdio"]
    if "upstream" in route and not str(route.get("upstream", "")).startswith(STDIO_SCHEME):
        return [f"{where}: `upstream` and `command` exclude each other"]
    if not isinstance(command, dict):
        return []  # (pydantic reports the type)
    problems = _env_problems(command, where)
    auth = route.get("upstream_auth")
    auth_type = auth.get("type") if isinstance(auth, dict) else None
    if auth_type is not None and command.get("credential_env") is None:
        problems.append(f"{where}.command.credential_env: names the variable that carries upstream_auth's credential")
    if auth_type not in (None, "static") and command.get("isolation", "shared") != "per_user":
        problems.append(f"{where}.command.isolation: per-user credentials ({auth_type}) need isolation: per_user")
    identity = route.get("identity_headers")
    if command.get("isolation") == "per_user" and isinstance(identity, dict) and "user" not in identity.values():
        problems.append(f"{where}.identity_headers: per_user isolation needs a header for the `user` claim")
    return problems


def _env_problems(command: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    env = command.get("env") if isinstance(command.get("env"), dict) else {}
    for name in env:
        if not ENV_NAME.match(str(name)):
            problems.append(f"{where}.command.env: {name!r} is not an environment variable name")
        elif name in IDENTITY_ENV or name == command.get("credential_env"):
            problems.append(f"{where}.command.env: {name} is set by the gateway")
    credential_env = command.get("credential_env")
    if isinstance(credential_env, str) and not ENV_NAME.match(credential_env):
        problems.append(f"{where}.command.credential_env: {credential_env!r} is not an environment variable name")
    return problems


def _sse_problems(route: dict[str, Any], where: str) -> list[str]:
    """An HTTP+SSE upstream: its URL is the server's SSE endpoint; per-user credentials need per-user connections."""
    if "upstream" not in route:
        return [f"{where}.upstream: the URL of the HTTP+SSE server's SSE endpoint (upstream_transport: sse)"]
    auth = route.get("upstream_auth")
    auth_type = auth.get("type") if isinstance(auth, dict) else None
    bridge = route.get("bridge") if isinstance(route.get("bridge"), dict) else {}
    if auth_type not in (None, "static") and bridge.get("isolation", "shared") != "per_user":
        return [f"{where}.bridge.isolation: per-user credentials ({auth_type}) need isolation: per_user"]
    return []
