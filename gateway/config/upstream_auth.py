"""`routes[].upstream_auth`: the credential the gateway presents to a route's upstream. The client never sees it
and never supplies it: a copy of the header in a client's request is dropped, the gateway's line replaces it.

`static`: one header, the same for every user (an upstream that knows only an API key, or one service token), its
value in the configuration (`value: "Bearer ${UPSTREAM_KEY}"`, from the environment) or read from a file
(`value_file`, e.g. a mounted secret; read when the configuration is loaded, so a reload picks up a rotated
secret). The value is never logged nor shown by `check-config`: a SecretStr, and no message quotes it.

`token_exchange`: a credential per user, from an RFC 8693 token service (Keycloak, Okta, an STS of your own): the
subject token is a gateway-signed assertion of the user (the identity JWT, `aud` = the token endpoint, verifiable
at the gateway's `/.well-known/jwks.json`), the gateway authenticates as `client_id` / `client_secret`, and the
token it gets is cached per (route, user, client) until shortly before it expires (gateway.upstream_credentials).

`oauth`: a credential per user from the upstream's own OAuth authorization server, with the user's consent: the
gateway is an OAuth 2.1 client there (gateway.upstream_oauth). With no endpoints given, everything is discovered as
an MCP client does it (the upstream's 401 / RFC 9728 metadata, then RFC 8414 metadata of its authorization
server); with `authorization_endpoint` and `token_endpoint`, a plain OAuth provider that is no MCP server (GitHub,
Google, Atlassian, Slack; register `{public_url}/upstream/callback/<route>` there). Tokens are kept per (user,
route) in the vault, encrypted (gateway.vault).

`provider_token`: the access token the user's sign-in provider (`login.providers[]`, `provider`) returned when they
signed in, refreshed with its refresh token; for upstreams that accept tokens of the same IdP."""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, model_validator

from gateway.config.base import Model, url_problems
from gateway.proxy import header_names

MAX_VALUE_CHARS = 8192  # a header line the upstream's server accepts (aiohttp: 8190 per line; nginx: 8 KiB)
MAX_FILE_BYTES = 64 * 1024


class StaticUpstreamAuth(Model):
    type: Literal["static"] = Field(description="The same credential for every user of the route.")
    header: str = Field(default="Authorization", description="Header that carries it to the upstream.")
    value: SecretStr | None = Field(default=None, description="The header's value (`${VAR}`: from the environment).")
    value_file: str | None = Field(
        default=None, description="Read the value from this file instead (trailing newline dropped)."
    )
    _secret: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _resolve(self) -> StaticUpstreamAuth:
        if (self.value is None) == (self.value_file is None):
            raise ValueError("give exactly one of value and value_file")
        secret = self.value.get_secret_value() if self.value is not None else _read_secret(self.value_file or "")
        if not secret or len(secret) > MAX_VALUE_CHARS:
            raise ValueError(f"the value must be 1 to {MAX_VALUE_CHARS} characters")
        if secret != secret.strip(" \t") or not all(c == "\t" or " " <= c <= "~" for c in secret):
            raise ValueError("the value may hold visible ASCII, spaces and tabs only, not at its ends (no line breaks)")
        if set(secret) == {"*"}:
            raise ValueError("the value is the mask check-config --print shows for a secret: give the secret itself")
        self._secret = secret
        return self

    def header_line(self) -> tuple[str, str]:
        """The (name, value) the upstream request carries."""
        return self.header, self._secret


ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class TokenExchangeUpstreamAuth(Model):
    type: Literal["token_exchange"] = Field(description="A credential per user from an RFC 8693 token service.")
    token_endpoint: str = Field(description="The token service's token endpoint (https; http on loopback only).")
    client_id: str = Field(min_length=1, max_length=512, description="The gateway's client at the token service.")
    client_secret: SecretStr | None = Field(default=None, description="Sent as HTTP Basic (client_secret_basic).")
    audience: str | None = Field(default=None, description="RFC 8693 `audience`: the upstream, as the STS names it.")
    resource: str | None = Field(default=None, description="RFC 8707 `resource` of the token asked for.")
    scopes: list[str] = Field(default_factory=list, description="`scope` of the token asked for.")
    requested_token_type: str = Field(default=ACCESS_TOKEN_TYPE, description="RFC 8693 `requested_token_type`.")
    header: str = Field(default="Authorization", description="Header that carries it to the upstream.")
    timeout: float = Field(default=10.0, gt=0, le=60, description="Seconds for one exchange.")
    max_cache_seconds: int = Field(default=3600, ge=0, description="Longest a token is reused (0: never cached).")
    subject_provider: str | None = Field(
        default=None,
        description="Exchange the access token this login.providers[] entry gave the user at sign-in (the STS"
        " trusts that IdP: Entra on-behalf-of, Keycloak, Okta) instead of the gateway's signed assertion.",
    )

    @model_validator(mode="after")
    def _endpoint(self) -> TokenExchangeUpstreamAuth:
        if (problem := endpoint_problem(self.token_endpoint, allow_query=False)) is not None:
            raise ValueError(f"token_endpoint: {problem}")
        return self


def endpoint_problem(
    url: str,
    *,
    allow_query: bool = True,
    http_hosts: frozenset[str] | tuple[str, ...] | None = None,
    internal_ok: bool = True,
) -> str | None:
    """An endpoint the gateway calls or sends browsers to: absolute https (plain http only on the `http_hosts`,
    by default loopback), no user info, no fragment (not quoted: it may carry a password)."""
    if url_problems(url, origin_only=False, allow_query=allow_query):
        return "an absolute http(s) URL without user info or fragment" + ("" if allow_query else " or query")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (a port beyond 65535, or not a number: ValueError)
    except ValueError:
        return "an absolute http(s) URL with a valid port"
    allowed = LOOPBACK if http_hosts is None else http_hosts
    if not internal_ok and parts.hostname not in allowed and internal_host(parts.hostname or ""):
        return "it names an internal address (only the upstream's own host may be one)"
    if parts.scheme != "https" and parts.hostname not in allowed:
        return "https is required (http only on loopback)" if http_hosts is None else "https is required"
    return None


def internal_host(host: str) -> bool:
    """localhost, or an IP literal that is not globally routable (loopback, private, link-local, metadata …)."""
    if host.lower() in LOOPBACK or host.lower().endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:  # `127.1`, `2130706433`, `0x7f000001`: IPv4 as the system's resolver reads it (inet_aton)
            address = ipaddress.ip_address(socket.inet_aton(host))
        except (OSError, ValueError, UnicodeError):
            return False  # (a name: resolved by the system when called)
    return not address.is_global or address.is_multicast


def http_hosts_of(upstream: str) -> frozenset[str]:
    """Where an upstream's documents may name plain http URLs: only on a plain-http upstream's own host (an
    internal sidecar), and loopback for an upstream on loopback; never for an https upstream (a remote one naming
    `http://127.0.0.1:…` would make the gateway call its own host's services)."""
    try:
        parts = urlsplit(upstream)
    except ValueError:
        return frozenset()
    if parts.scheme != "http" or not parts.hostname:
        return frozenset()
    return frozenset({parts.hostname, *(LOOPBACK if parts.hostname in LOOPBACK else ())})


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def format_problem(text: str) -> str | None:
    if text.count(FORMAT_FIELD) != 1 or "{" in text.replace(FORMAT_FIELD, "") or "}" in text.replace(FORMAT_FIELD, ""):
        return "format: must hold {token} once and no other braces"
    if not all(" " <= c <= "~" for c in text) or text != text.strip():
        return "format: visible ASCII and inner spaces only"
    return None


FORMAT_FIELD = "{token}"


class OAuthUpstreamAuth(Model):
    type: Literal["oauth"] = Field(description="A credential per user from the upstream's OAuth server.")
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="The gateway's client there. Default: the gateway's own Client ID Metadata Document (when"
        " public_url is https and the server supports it), else dynamic registration.",
    )
    client_secret: SecretStr | None = Field(default=None, description="Sent as HTTP Basic (client_secret_basic).")
    authorization_endpoint: str | None = Field(
        default=None, description="A plain OAuth provider's authorization endpoint (with token_endpoint)."
    )
    token_endpoint: str | None = Field(default=None, description="A plain OAuth provider's token endpoint.")
    revocation_endpoint: str | None = Field(default=None, description="RFC 7009 endpoint, used at disconnect.")
    issuer: str | None = Field(
        default=None, description="The provider's issuer: its `iss` on the callback must match (RFC 9207)."
    )
    scopes: list[str] = Field(
        default_factory=list, description="Scopes asked for. Default: what the upstream's metadata lists."
    )
    resource: str | None = Field(
        default=None, description="RFC 8707 `resource`. Default: the upstream's (discovered), none for a provider."
    )
    header: str = Field(default="Authorization", description="Header that carries it to the upstream.")
    format: str = Field(default="Bearer {token}", description="The header's value; {token} is the access token.")
    timeout: float = Field(default=10.0, gt=0, le=60, description="Seconds for one call to the upstream's server.")
    connect_on_authorize: bool = Field(
        default=True,
        description="Ask for the credential during sign-in (after consent, before the client's code); else only"
        " when a request needs it (the connect link).",
    )

    @model_validator(mode="after")
    def _endpoints(self) -> OAuthUpstreamAuth:
        if (self.authorization_endpoint is None) != (self.token_endpoint is None):
            raise ValueError("give both authorization_endpoint and token_endpoint, or neither (discovery)")
        if self.authorization_endpoint is not None and self.client_id is None:
            raise ValueError("a provider with explicit endpoints needs client_id (it has no registration)")
        for name in ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "issuer", "resource"):
            value = getattr(self, name)
            if value is not None and (problem := endpoint_problem(value)) is not None:
                raise ValueError(f"{name}: {problem}")
        if (problem := format_problem(self.format)) is not None:
            raise ValueError(problem)
        return self

    @property
    def discovered(self) -> bool:
        """True: endpoints come from the upstream's metadata (an MCP server); False: configured (a provider)."""
        return self.token_endpoint is None

    def header_line(self, token: str) -> tuple[str, str]:
        return self.header, self.format.replace(FORMAT_FIELD, token)


class ProviderTokenUpstreamAuth(Model):
    type: Literal["provider_token"] = Field(description="The user's own token from their sign-in provider.")
    provider: str = Field(min_length=1, description="The login.providers[] entry whose token is sent.")
    header: str = Field(default="Authorization", description="Header that carries it to the upstream.")
    format: str = Field(default="Bearer {token}", description="The header's value; {token} is the access token.")
    timeout: float = Field(default=10.0, gt=0, le=60, description="Seconds for one refresh at the provider.")

    @model_validator(mode="after")
    def _format(self) -> ProviderTokenUpstreamAuth:
        if (problem := format_problem(self.format)) is not None:
            raise ValueError(problem)
        return self

    def header_line(self, token: str) -> tuple[str, str]:
        return self.header, self.format.replace(FORMAT_FIELD, token)


PER_USER_CONNECTED = (OAuthUpstreamAuth, ProviderTokenUpstreamAuth)  # held in the vault

UpstreamAuth = Annotated[
    StaticUpstreamAuth | TokenExchangeUpstreamAuth | OAuthUpstreamAuth | ProviderTokenUpstreamAuth,
    Field(discriminator="type"),
]


def _read_secret(path: str) -> str:
    """The file's text. Opened without blocking and only when it is a regular file (a FIFO or a device would hold
    start-up, or a reload and every request with it, until something writes to it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ValueError(f"value_file {path!r} cannot be read ({type(exc).__name__})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"value_file {path!r} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"value_file {path!r} cannot be read ({type(exc).__name__})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"value_file {path!r} is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"value_file {path!r} holds more than ASCII text") from None
    return text.removesuffix("\n").removesuffix("\r")


def _names(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def upstream_auth_problems(route: dict[str, Any], where: str, own_names: set[str]) -> list[str]:
    """The header names one the gateway may send for its credential (not one it sets or guards otherwise, not one the
    route forwards from clients)."""
    auth = route.get("upstream_auth")
    if not isinstance(auth, dict):
        return []
    header = auth.get("header", "Authorization")
    if not isinstance(header, str):
        return []
    name = header_names.canonical(header)
    h = header_names
    if not h.TOKEN.match(header):
        return [f"{where}.upstream_auth.header: {header!r} is not a valid name"]
    reserved = (h.GATEWAY_REQUEST - {"authorization"}) | h.HOP_BY_HOP | h.FORWARDED_REQUEST | own_names
    if name in reserved or name.startswith((*h.GATEWAY_REQUEST_PREFIXES, h.MCP_PARAM_PREFIX)):
        return [f"{where}.upstream_auth.header: {header!r} is set or guarded by the gateway for another purpose"]
    forwarded = [*_names(route.get("forward_headers")), *_names(route.get("forward_response_headers"))]
    if name in {h.canonical(str(f)) for f in forwarded}:
        return [f"{where}.upstream_auth.header: {header!r} is also in forward_headers or forward_response_headers"]
    return []


def provider_token_problems(data: dict[str, Any]) -> list[str]:
    """`provider_token` routes (and token exchanges of a provider's token) that name no configured sign-in
    provider."""
    login = data.get("login")
    providers = login.get("providers") if isinstance(login, dict) else None
    known = {p.get("name") for p in providers if isinstance(p, dict)} if isinstance(providers, list) else set()
    routes = data.get("routes")
    problems = []
    for i, route in enumerate(routes if isinstance(routes, list) else []):
        auth = route.get("upstream_auth") if isinstance(route, dict) else None
        if not isinstance(auth, dict):
            continue
        key = {"provider_token": "provider", "token_exchange": "subject_provider"}.get(str(auth.get("type")))
        named = auth.get(key) if key is not None else None
        if key is not None and (named is not None or key == "provider") and named not in known:
            names = ", ".join(sorted(str(k) for k in known)) or "none"
            problems.append(
                f"routes[{i}].upstream_auth.{key}: {named!r} is no login.providers[] entry (known: {names})"
            )
    return problems
