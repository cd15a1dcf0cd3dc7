"""Gateway configuration: pydantic-settings models loaded from YAML, `MCP_GATEWAY_…` env overrides.

Sources, highest first: init kwargs > environment (`MCP_GATEWAY_STORE__URL`) > YAML file > defaults.
`${VAR}` inside any YAML string is replaced from the environment before validation. Every problem is
collected and reported at once with its key path (`routes[1].upstream: …`); validators mutate nothing.
"""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Callable
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.mcp import names as mcp_names  # (pure: they import nothing of the gateway)
from gateway.mcp import uris
from gateway.oauth.redirects import DEFAULT_PRIVATE_USE_SCHEMES, private_use_scheme_problem, redirect_uri_problem
from gateway.proxy import header_names

ENV_PREFIX = "MCP_GATEWAY_"
Claim = Literal["user", "email", "preferred_username", "groups", "client_id", "scopes"]
DEFAULT_IDENTITY_HEADERS: dict[str, Claim] = {
    "X-Forwarded-User": "user",
    "X-Forwarded-Email": "email",
    "X-Forwarded-Preferred-Username": "preferred_username",
    "X-Forwarded-Groups": "groups",
    "X-MCP-Client-Id": "client_id",
    "X-MCP-Scopes": "scopes",
}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_yaml_data: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("yaml_data", default=None)


class ConfigError(Exception):
    """Raised with every configuration problem, each as `key.path: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


REVOCATIONS_KEPT_SECONDS = 90 * 86400  # revocation marks of refresh-token families outlive every refresh token


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(_Model):
    host: str = Field(default="0.0.0.0", description="Interface to bind: an IP address or a host name.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port to bind.")
    shutdown_grace: float = Field(
        default=30.0,
        ge=0,
        description="On SIGTERM or reload: seconds in-flight "
        "requests and open streams may take to finish before they are cut.",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has to send a request's "
        "headers: from the connection's start, or on a kept-alive connection from the "
        "next request's first byte; else 408 and the connection is closed.",
    )
    body_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds without a byte while a request body is "
        "being read; else 408. Responses (SSE streams) are not subject to it.",
    )
    body_total_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a request body may take in all, "
        "however steadily it trickles in; else 408. Responses are not subject to it.",
    )
    keepalive_timeout: float = Field(
        default=75.0,
        gt=0,
        description="Seconds an idle kept-alive connection stays "
        "open waiting for its next request (behind a load balancer: longer than its "
        "idle timeout).",
    )
    max_connections_per_ip: int = Field(
        default=256,
        ge=0,
        description="Most connections open at once from one "
        "client address (0: no limit); peers in trusted_proxies are exempt.",
    )
    metrics_port: int | None = Field(
        default=9464,
        ge=1,
        le=65535,
        description="Serve /metrics on this port "
        "(not on the public one); with --workers N, worker i listens on metrics_port + "
        "i; null: no metrics listener.",
    )
    metrics_host: str | None = Field(
        default="127.0.0.1", description="Interface for metrics_port (loopback by default); null: listen.host."
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that /metrics requires; when set, /metrics is also served on the public port. "
        "A reload changes it on both listeners.",
    )

    @field_validator("host", "metrics_host")
    @classmethod
    def _bindable(cls, value: str | None) -> str | None:
        problem = host_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("needs at least 16 characters")
        return value

    @model_validator(mode="after")
    def _metrics_port_differs(self) -> Listen:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("metrics_port must differ from port")
        return self


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def host_problem(host: str) -> str | None:
    """Why `host` cannot be bound (None when it is an IP address or a syntactically valid host name)."""
    try:
        ip_address(host)
        return None
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if not host or len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        return f"{host!r} is neither an IP address nor a host name"
    return None


STORE_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster", "rediss+cluster")


class StoreSettings(_Model):
    url: SecretStr | None = Field(
        default=None,
        description="redis://, rediss://, unix://, redis+sentinel:// or redis+cluster:// URL; omit "
        "for the embedded Redis under data_dir.",
    )
    data_dir: Path = Field(default=Path("./data"), description="Where the embedded Redis keeps its files.")
    key_prefix: str = Field(
        default="mcpgw", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$", description="Prefix of every Redis key."
    )
    timeout: float = Field(default=2.0, gt=0, description="Seconds before a Redis call fails (then 503).")
    pool_size: int = Field(
        default=256,
        gt=0,
        description="Redis connections per process; a burst beyond it waits up to `timeout` for a free one.",
    )
    token_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Keep validated access tokens in memory "
        "this long (0: off); revocations reach every instance at once (pub/sub).",
    )

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        scheme = urlsplit(value.get_secret_value()).scheme if value is not None else ""
        if value is not None and scheme not in STORE_SCHEMES:
            raise ValueError(f"the scheme must be one of {', '.join(s + '://' for s in STORE_SCHEMES)}")
        return value


class AllowRules(_Model):
    """Who may use a route. Empty: everyone who can sign in (refused by the configuration check when anyone on
    the internet can sign in). Any rule set: deny unless one matches."""

    users: list[str] = Field(default_factory=list, description="Stable user ids: local:alice, corp:<subject>.")
    emails: list[str] = Field(default_factory=list, description="Verified email addresses.")
    email_domains: list[str] = Field(default_factory=list, description="Domains of verified email addresses.")
    groups: list[str] = Field(
        default_factory=list,
        description="Groups qualified by their provider: corp:platform, "
        "github:acme/platform (GitHub: org, org/team), local:eng.",
    )
    providers: list[str] = Field(default_factory=list, description="Sign-in methods: local, or provider names.")
    any_signed_in: bool = Field(
        default=False,
        description="Admit everyone who can sign in, on purpose (needed "
        "with self sign-up or a public provider and no other rule).",
    )

    @property
    def any(self) -> bool:
        return bool(
            self.users or self.emails or self.email_domains or self.groups or self.providers or self.any_signed_in
        )


class NameRule(_Model):
    """One policy rule for tools, prompts (by name) or resources (by URI); the first matching rule decides.

    Matching (README "MCP-aware policy"): names as sent and NFKC case-folded; URIs as sent, RFC 3986-normalized,
    percent-decoded (once and twice) and each of these case-folded. The rule must decide alike for every reading,
    else the call is refused as ambiguous."""

    match: str = Field(
        min_length=1,
        description="Exact name/URI or a glob (fnmatch: *, ?, [..]; * also crosses "
        "'/'); URIs are compared in RFC 3986 normal form, so write the plain spelling.",
    )
    deny: bool = Field(default=False, description="Nobody may use it (hidden from lists).")
    scopes: list[str] = Field(default_factory=list, description="Token scopes needed (403 asks the client to step up).")
    groups: list[str] = Field(default_factory=list, description="The user needs one of these groups.")


def _name_pattern(rule: NameRule) -> NameRule:
    if (problem := mcp_names.pattern_problem(rule.match)) is not None:
        raise ValueError(f"match {rule.match!r}: {problem}")
    return rule


def _uri_pattern(rule: NameRule) -> NameRule:
    if (problem := uris.pattern_problem(rule.match)) is not None:
        raise ValueError(f"match {rule.match!r}: {problem}")
    return rule


class PolicySettings(_Model):
    """MCP-aware policy: who may call which tool, read which resource, get which prompt."""

    tools: list[Annotated[NameRule, AfterValidator(_name_pattern)]] = Field(default_factory=list)
    resources: list[Annotated[NameRule, AfterValidator(_uri_pattern)]] = Field(default_factory=list)
    prompts: list[Annotated[NameRule, AfterValidator(_name_pattern)]] = Field(default_factory=list)
    default: Literal["allow", "deny"] = Field(default="allow", description="When no rule matches.")


class RateLimit(_Model):
    limit: int = Field(gt=0, description="Requests allowed per period (also the burst).")
    period: float = Field(default=60.0, gt=0, description="Seconds.")


class RouteRateLimits(_Model):
    mcp_per_user: RateLimit | None = Field(default=None, description="Override: MCP requests per user.")
    tool_calls_per_user: RateLimit | None = Field(default=None, description="Override: tools/call per user per tool.")


class RateLimitSettings(_Model):
    """GCRA limits kept in Redis (atomic, shared by every gateway instance); null disables one."""

    oauth_per_ip: RateLimit | None = Field(
        default_factory=lambda: RateLimit(limit=120),
        description="Per client IP on /register, /authorize, /token, /revoke, /introspect.",
    )
    mcp_per_user: RateLimit | None = Field(
        default_factory=lambda: RateLimit(limit=600), description="Per user per route on MCP requests."
    )
    tool_calls_per_user: RateLimit | None = Field(
        default_factory=lambda: RateLimit(limit=300), description="Per user per tool on tools/call."
    )
    failed_sign_ins: RateLimit | None = Field(
        default_factory=lambda: RateLimit(limit=10, period=900),
        description="Failed local password sign-ins per user name and client address, and 10 times this per user name"
        " from all addresses (then 429 until a cell frees).",
    )


class Route(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Unique; used in the CLI, logs and metrics.")
    path: str = Field(default="/mcp", description="Public MCP endpoint path; resource = origin + path.")
    host: str | None = Field(default=None, description="Serve this route on another host name (host-based route).")
    upstream: str = Field(description="URL of the unmodified MCP server's Streamable HTTP endpoint.")
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


class ProxySettings(_Model):
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0, description="Larger request bodies get 413.")
    connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to connect to an upstream (else 502).")
    pool_size: int = Field(
        default=0,
        ge=0,
        description="Most upstream connections open at once (0: no limit). "
        "Every open SSE stream holds one; beyond the limit a request waits up to connect_timeout, "
        "then 504.",
    )


class IntrospectionCredential(_Model):
    name: str = Field(min_length=1, pattern=r"^[^:]+$")
    secret: SecretStr


class OAuthSettings(_Model):
    access_token_ttl: int = Field(default=3600, gt=0, description="Access token lifetime, seconds.")
    refresh_token_ttl: int = Field(
        default=30 * 86400,
        gt=0,
        le=REVOCATIONS_KEPT_SECONDS,
        description="Refresh token idle lifetime, seconds; at most 90 days, as long as revocations are kept.",
    )
    refresh_grace: int = Field(default=60, ge=0, description="Seconds a just-rotated refresh token still works.")
    code_ttl: int = Field(default=600, gt=0, le=600, description="Authorization code lifetime (at most 10 min).")
    consent_ttl: int = Field(default=30 * 86400, ge=0, description="How long an approval is remembered; 0: ask always.")
    session_idle_ttl: int = Field(default=12 * 3600, gt=0, description="Login session idle expiry, seconds.")
    session_max_age: int = Field(default=7 * 86400, gt=0, description="Login session absolute expiry, seconds.")
    dcr_enabled: bool = Field(default=True, description="Accept RFC 7591 registrations at /register.")
    dcr_client_idle_ttl: int = Field(default=30 * 86400, gt=0, description="Unused DCR clients expire after this.")
    register_rate_per_minute: int = Field(default=20, gt=0, description="Registrations per client IP per minute.")
    introspection: list[IntrospectionCredential] = Field(
        default_factory=list, description="HTTP Basic credentials allowed to call /introspect; empty: no /introspect."
    )
    private_use_schemes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PRIVATE_USE_SCHEMES),
        description="Private-use redirect URI schemes without a period that clients may register (RFC 8252 §7.1 "
        "asks for reverse-DNS schemes such as com.example.app, which are always accepted).",
    )

    @field_validator("private_use_schemes")
    @classmethod
    def _schemes(cls, schemes: list[str]) -> list[str]:
        problems = [p for p in map(private_use_scheme_problem, schemes) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return schemes


class ClientSettings(_Model):
    """A pre-registered OAuth client (ChatGPT "predefined client", Inspector --client-id …)."""

    client_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._~@-]+$",
        description="Fixed id: letters, digits and ._~@- (never a URL: those are CIMD ids).",
    )
    client_secret: SecretStr | None = Field(default=None, description="Omit for a public client (PKCE only).")
    token_endpoint_auth_method: Literal["none", "client_secret_post", "client_secret_basic"] | None = None
    redirect_uris: list[str] = Field(min_length=1)
    client_name: str | None = None


class CimdSettings(_Model):
    """Client ID Metadata Documents: https client_ids fetched on first use."""

    enabled: bool = True
    allow_hosts: list[str] = Field(
        default_factory=list, description="Hosts exempt from the private/special-use address refusal."
    )
    ca_file: Path | None = Field(default=None, description="Extra CA bundle to trust when fetching documents.")
    timeout: float = Field(default=5.0, gt=0, description="One deadline per fetch: DNS, connect, headers and body.")
    max_bytes: int = Field(default=5120, gt=0, description="Largest document, counted while reading (never inflated).")
    max_concurrent_fetches: int = Field(
        default=10, ge=1, description="Fetches at once per process; one more is refused (503), never queued."
    )
    max_fetches_per_host: int = Field(default=2, ge=1, description="Fetches at once to one host; one more is refused.")
    failure_cache_seconds: int = Field(
        default=60,
        ge=0,
        description="A bad document (status, type, size, content, private address) is remembered this long per"
        " URL (0: retry at once); timeouts and unreachable hosts are not remembered.",
    )
    cache_min_seconds: int = Field(default=300, ge=0)
    cache_max_seconds: int = Field(default=86400, ge=0)


ProviderType = Literal["oidc", "google", "entra", "keycloak", "okta", "auth0", "github"]


class ProviderSettings(_Model):
    """An upstream identity provider; its callback is {public_url}/login/{name}/callback."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="Used in user ids (name:subject).")
    type: ProviderType = "oidc"
    label: str | None = Field(default=None, description="Button text on the login page.")
    issuer: str | None = Field(default=None, description="OIDC issuer (discovery base); presets fill it.")
    tenant: str | None = Field(default=None, description="Entra ID tenant id or domain (type entra).")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scopes: list[str] | None = Field(
        default=None, description="Default: openid email profile (GitHub: read:user user:email read:org)."
    )
    groups_claim: str | None = Field(default=None, description="id_token/userinfo claim holding groups.")
    use_userinfo: bool = Field(default=True, description="Also read the userinfo endpoint (OIDC).")
    github_url: str = Field(default="https://github.com", description="GitHub (Enterprise) web URL.")
    github_api_url: str = Field(default="https://api.github.com", description="GitHub (Enterprise) API URL.")
    ca_file: Path | None = Field(default=None, description="Extra CA bundle to reach this provider.")


class SignupSettings(_Model):
    enabled: bool = Field(default=False, description="Let people create local accounts themselves.")
    email_domains: list[str] = Field(default_factory=list, description="Only these email domains may sign up.")


class LoginSettings(_Model):
    local: bool = Field(default=True, description="Offer local accounts (`users add`).")
    providers: list[ProviderSettings] = Field(default_factory=list)
    signup: SignupSettings = Field(default_factory=SignupSettings)
    identity_max_age: int = Field(
        default=86400,
        gt=0,
        description="Seconds a sign-in counts: after it, /authorize asks to sign in again and codes and refreshes "
        "of that sign-in are refused (fresh groups from the provider).",
    )


class IdentityJwtSettings(_Model):
    lifetime: int = Field(default=60, gt=0, le=3600, description="Seconds an identity JWT is valid.")
    key_file: Path | None = Field(
        default=None,
        description="Private JWK set (JSON) to sign with; first key signs. "
        "Default: keys kept in the store, made on first use, `keys rotate` adds one.",
    )


class AuditSettings(_Model):
    enabled: bool = Field(default=True, description="One JSON line per MCP request and per OAuth event.")
    path: str = Field(
        default="-",
        description="'-' for standard output, else a file (appended, created 0600; reopened if rotated away).",
    )


class Settings(BaseSettings):
    """The whole gateway configuration (see config/gateway.example.yaml)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True)

    public_url: str = Field(description="The issuer and public origin, byte for byte; no trailing slash.")
    listen: Listen = Field(default_factory=Listen)
    store: StoreSettings = Field(default_factory=StoreSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    allowed_origins: list[str] = Field(default_factory=list, description="Browser origins allowed on MCP routes.")
    routes: list[Route] = Field(default_factory=list)
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)
    clients: list[ClientSettings] = Field(default_factory=list, description="Pre-registered OAuth clients.")
    cimd: CimdSettings = Field(default_factory=CimdSettings)
    login: LoginSettings = Field(default_factory=LoginSettings)
    allow: AllowRules = Field(default_factory=AllowRules, description="Default access rules for every route.")
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    identity_jwt: IdentityJwtSettings = Field(default_factory=IdentityJwtSettings)
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list, description="Proxies whose X-Forwarded-For is believed (CIDRs); else the socket."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _collect_problems(cls, data: Any, handler: Any) -> Any:
        problems = _cross_check(data) if isinstance(data, dict) else []
        try:
            settings = handler(data)
        except ValidationError as exc:
            raise ConfigError(_format_errors(exc) + problems) from None
        if problems:
            raise ConfigError(problems)
        return settings

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlSource(settings_cls)

    def route(self, name: str) -> Route:
        """The route called `name`; KeyError names the known routes."""
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(f"no route named {name!r} (known: {', '.join(r.name for r in self.routes) or 'none'})")


class _YamlSource(PydanticBaseSettingsSource):
    """Supplies the already-interpolated YAML mapping of the current `load_settings` call."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return (_yaml_data.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_yaml_data.get() or {})


def load_settings(path: str | Path | None, **overrides: Any) -> Settings:
    """Read YAML at `path` (or nothing), interpolate `${VAR}`, apply env and `overrides`, validate.

    Raises:
        ConfigError: with every problem found, each prefixed by its key path.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
        except UnicodeDecodeError as exc:
            raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
        except yaml.YAMLError as exc:
            raise ConfigError([f"{path}: not valid YAML ({exc})".replace("\n", " ")]) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError([f"{path}: the top level must be a mapping"])
        missing: list[str] = []
        data = _interpolate(loaded or {}, "", missing)
        if missing:
            raise ConfigError(missing)
    token = _yaml_data.set(data)
    try:
        return Settings(**overrides)
    finally:
        _yaml_data.reset(token)


def _interpolate(value: Any, where: str, missing: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, _join(where, str(k)), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]", missing) for i, v in enumerate(value)]
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                missing.append(f"{where}: environment variable {name} is not set")
                return ""
            return os.environ[name]

        return _VAR.sub(replace, value)
    return value


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _format_errors(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        where: str = ""
        for part in err["loc"]:
            where = f"{where}[{part}]" if isinstance(part, int) else _join(where, str(part))
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        problems.append(f"{where or '(top level)'}: {message}")
    return problems


def _cross_check(data: dict[str, Any]) -> list[str]:
    """Problems pydantic's per-field checks cannot see; tolerant of malformed input (reported elsewhere)."""
    problems: list[str] = []
    public_url = data.get("public_url")
    if isinstance(public_url, str):
        problems += [f"public_url: {p}" for p in _url_problems(public_url, origin_only=True)]
    problems += _login_problems(data)
    problems += _access_problems(data)
    problems += _client_problems(data)
    routes = data.get("routes")
    if routes is None or routes == []:
        return [*problems, "routes: at least one route is required"]
    if not isinstance(routes, list):
        return problems
    public_host = urlsplit(public_url).netloc.lower() if isinstance(public_url, str) else ""
    names: dict[str, int] = {}
    endpoints: dict[tuple[str, str], int] = {}
    for i, route in enumerate(routes):
        if not isinstance(route, dict):
            continue
        where = f"routes[{i}]"
        name = route.get("name")
        if isinstance(name, str):
            if name in names:
                problems.append(f"{where}.name: duplicate route name {name!r} (also routes[{names[name]}])")
            names.setdefault(name, i)
        path = route.get("path", "/mcp")
        if isinstance(path, str):
            if not path.startswith("/") or "?" in path or "#" in path or "//" in path:
                problems.append(f"{where}.path: must be an absolute path without query or fragment")
            elif path != "/" and path.endswith("/"):
                problems.append(f"{where}.path: no trailing slash (both forms are served)")
            else:
                # a route whose host is public_url's host is the same endpoint as a host-less one
                key = (str(route.get("host") or public_host).lower(), path.rstrip("/") or "/")
                if key in endpoints:
                    problems.append(f"{where}.path: duplicate route path {path!r} (also routes[{endpoints[key]}])")
                endpoints.setdefault(key, i)
        upstream = route.get("upstream")
        if isinstance(upstream, str):
            problems += [f"{where}.upstream: {p}" for p in _url_problems(upstream, origin_only=False)]
        for field in ("scopes", "required_scopes"):
            scopes = route.get(field)
            if isinstance(scopes, list) and "offline_access" in scopes:
                problems.append(f"{where}.{field}: offline_access is not a resource scope (MCP SEP-2207)")
        problems += _forwarding_problems(route, where)
    return problems


def _forwarding_problems(route: dict[str, Any], where: str) -> list[str]:
    """forward_headers / forward_cookies / forward_response_headers name valid tokens the gateway may let through:
    never a credential, a header the gateway sets (identity included, in any spelling) or a hop-by-hop header."""
    problems: list[str] = []
    identity = route.get("identity_headers", DEFAULT_IDENTITY_HEADERS)
    own = {
        *DEFAULT_IDENTITY_HEADERS,
        *(identity if isinstance(identity, dict) else {}),
        *([route["identity_jwt_header"]] if isinstance(route.get("identity_jwt_header"), str) else []),
    }
    own_names = {header_names.canonical(str(h)) for h in own}
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


def _client_problems(data: dict[str, Any]) -> list[str]:
    """Pre-registered clients: redirect URIs under the same rules as DCR's, and an auth method that matches the
    presence of a secret (a client_secret_* method without a secret would authenticate with nothing)."""
    problems: list[str] = []
    oauth = data.get("oauth")
    schemes = oauth.get("private_use_schemes") if isinstance(oauth, dict) else None
    schemes = schemes if isinstance(schemes, list) else list(DEFAULT_PRIVATE_USE_SCHEMES)
    clients = data.get("clients")
    for i, entry in enumerate(clients if isinstance(clients, list) else []):
        if not isinstance(entry, dict):
            continue
        where = f"clients[{i}]"
        uris = entry.get("redirect_uris")
        for j, uri in enumerate(uris if isinstance(uris, list) else []):
            problem = redirect_uri_problem(uri, private_use_schemes=schemes) if isinstance(uri, str) else None
            if problem:
                problems.append(f"{where}.redirect_uris[{j}]: {problem}")
        method, secret = entry.get("token_endpoint_auth_method"), entry.get("client_secret")
        if method in ("client_secret_basic", "client_secret_post") and not secret:
            problems.append(f"{where}.client_secret: required for token_endpoint_auth_method {method}")
        if method == "none" and secret:
            problems.append(f"{where}.token_endpoint_auth_method: none (a public client) cannot have a client_secret")
    return problems


def _login_problems(data: dict[str, Any]) -> list[str]:
    """Providers: unique names, what each type needs; allow rules may only name known sign-in methods."""
    problems: list[str] = []
    login = data.get("login")
    providers = login.get("providers") if isinstance(login, dict) else None
    names: list[str] = []
    for i, entry in enumerate(providers if isinstance(providers, list) else []):
        if not isinstance(entry, dict):
            continue
        where, kind, name = f"login.providers[{i}]", entry.get("type", "oidc"), entry.get("name")
        if isinstance(name, str):
            if name in names or name == "local":
                problems.append(f"{where}.name: {name!r} is taken (names must be unique and not 'local')")
            names.append(name)
        if kind in ("oidc", "keycloak", "okta", "auth0") and not entry.get("issuer"):
            problems.append(f"{where}.issuer: required for type {kind}")
        if kind == "entra" and not entry.get("tenant"):
            problems.append(f"{where}.tenant: required for type entra (tenant id or domain)")
        issuer = entry.get("issuer")
        if isinstance(issuer, str):
            problems += [f"{where}.issuer: {p}" for p in _url_problems(issuer, origin_only=False)]
    signup = login.get("signup") if isinstance(login, dict) else None
    if isinstance(signup, dict) and signup.get("enabled") and not signup.get("email_domains"):
        problems.append("login.signup.email_domains: required when sign-up is enabled (who may sign up)")
    known = {"local", *names}
    rule_sets = (
        [("allow", data.get("allow"))]
        + [
            (f"routes[{i}].allow", r.get("allow"))
            for i, r in enumerate(data.get("routes") or [])
            if isinstance(r, dict)
        ]
        if isinstance(data.get("routes") or [], list)
        else []
    )
    for where, rules in rule_sets:
        wanted = rules.get("providers") if isinstance(rules, dict) else None
        for provider in wanted if isinstance(wanted, list) else []:
            if provider not in known:
                problems.append(
                    f"{where}.providers: unknown sign-in method {provider!r} (known: {', '.join(sorted(known))})"
                )
    return problems


# Entra tenants any Microsoft account may sign in through (the last one is the consumer accounts' tenant id)
PUBLIC_ENTRA_TENANTS = frozenset({"common", "organizations", "consumers", "9188040d-6c67-4c5b-b112-36a304b66dad"})
_ENTRA_ISSUER = re.compile(r"^https://login\.microsoftonline\.com/([^/]+)(/v2\.0)?/?$", re.IGNORECASE)
_RULE_KEYS = ("users", "emails", "email_domains", "groups", "providers")
_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})


def _access_problems(data: dict[str, Any]) -> list[str]:
    """Access rules that do not say what they mean: routes open to the internet by default (self sign-up, a
    public provider, no rule), group names without their provider, scope descriptions of unknown scopes."""
    login, routes, global_rules = _plain(data.get("login")), _plain(data.get("routes")), _plain(data.get("allow"))
    login = login if isinstance(login, dict) else {}
    routes = [(i, r) for i, r in enumerate(routes) if isinstance(r, dict)] if isinstance(routes, list) else []
    providers = login.get("providers")
    providers = [p for p in providers if isinstance(p, dict)] if isinstance(providers, list) else []
    methods = sorted({str(p["name"]) for p in providers if isinstance(p.get("name"), str)} | {"local"})
    problems: list[str] = []
    rule_sets: list[tuple[str, Any]] = [("allow", global_rules)]
    for i, entry in routes:
        rule_sets.append((f"routes[{i}].allow", entry.get("allow")))
        policy = entry.get("policy")
        for kind in ("tools", "resources", "prompts"):
            rules = policy.get(kind) if isinstance(policy, dict) else None
            for j, rule in enumerate(rules if isinstance(rules, list) else []):
                rule_sets.append((f"routes[{i}].policy.{kind}[{j}]", rule))
        problems += _scope_description_problems(f"routes[{i}]", entry)
    for where, rules in rule_sets:
        if isinstance(rules, dict):
            problems += _group_problems(f"{where}.groups", rules.get("groups"), methods)
            if _truthy(rules.get("any_signed_in")) and any(rules.get(k) for k in _RULE_KEYS):
                problems.append(
                    f"{where}.any_signed_in: admits everyone signed in, so the other rules here have "
                    "no effect; keep one or the other"
                )
    open_to = _open_sign_in(login, providers)
    if open_to:
        inherit = [str(r.get("name", i)) for i, r in routes if r.get("allow") is None]
        if inherit and not _has_rule(global_rules):
            problems.append(
                f"allow: no access rule, so anyone with {' or '.join(open_to)} may use "
                f"{', '.join(inherit)}; add a rule (users, emails, email_domains, groups, providers) or "
                "set any_signed_in: true to allow that on purpose"
            )
        for i, entry in routes:
            if entry.get("allow") is not None and not _has_rule(entry.get("allow")):
                problems.append(
                    f"routes[{i}].allow: no access rule, so anyone with {' or '.join(open_to)} may use "
                    f"{entry.get('name', i)}; add a rule or set any_signed_in: true to allow that "
                    "on purpose"
                )
    return problems


def _open_sign_in(login: dict[str, Any], providers: list[dict[str, Any]]) -> list[str]:
    """The sign-in methods through which a stranger gets an identity: self sign-up, public providers."""
    found = []
    signup = login.get("signup")
    if _truthy(login.get("local", True)) and isinstance(signup, dict) and _truthy(signup.get("enabled")):
        found.append("an account they create themselves (login.signup)")
    for provider in providers:
        kind, name = provider.get("type", "oidc"), provider.get("name")
        issuer = str(provider.get("issuer") or "").rstrip("/").lower()
        tenant = str(provider.get("tenant") or "").lower()
        entra = _ENTRA_ISSUER.match(issuer)
        if kind == "google" or issuer == "https://accounts.google.com":
            found.append(f"a Google account (provider {name})")
        elif kind == "github":
            found.append(f"a GitHub account (provider {name})")
        elif (kind == "entra" and tenant in PUBLIC_ENTRA_TENANTS) or (
            entra is not None and entra.group(1).lower() in PUBLIC_ENTRA_TENANTS
        ):
            found.append(f"a Microsoft account (provider {name}, tenant {tenant or entra and entra.group(1)})")
    return found


def _group_problems(where: str, groups: Any, methods: list[str]) -> list[str]:
    """Every group name must say which provider it comes from, and name one that is configured."""
    problems = []
    for group in groups if isinstance(groups, list) else []:
        if not isinstance(group, str):
            continue
        prefix, colon, rest = group.partition(":")
        if not colon or not prefix or not rest:
            spellings = " or ".join(f"{m}:{group}" for m in methods)
            problems.append(
                f"{where}: group {group!r} must name its provider (groups of different providers are "
                f"kept apart): write {spellings}"
            )
        elif prefix not in methods:
            problems.append(
                f"{where}: group {group!r} names an unknown sign-in method {prefix!r} (known: {', '.join(methods)})"
            )
    return problems


def _scope_description_problems(where: str, route: dict[str, Any]) -> list[str]:
    descriptions, scopes = route.get("scope_descriptions"), route.get("scopes")
    if not isinstance(descriptions, dict):
        return []
    known = set(scopes) if isinstance(scopes, list) else set()
    return [
        f"{where}.scope_descriptions.{scope}: not one of this route's scopes ({', '.join(sorted(known)) or 'none'})"
        for scope in descriptions
        if scope not in known
    ]


def _has_rule(rules: Any) -> bool:
    rules = _plain(rules)
    return isinstance(rules, dict) and (any(rules.get(k) for k in _RULE_KEYS) or _truthy(rules.get("any_signed_in")))


def _truthy(value: Any) -> bool:
    """A boolean as pydantic reads it (environment overrides arrive as strings)."""
    return value is True or (isinstance(value, (str, int)) and str(value).strip().lower() in _TRUE)


def _plain(value: Any) -> Any:
    """Models passed in directly (Settings(routes=[Route(...)])) as the mappings YAML would give."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _url_problems(url: str, *, origin_only: bool) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{url!r} is not an absolute http(s) URL"]
    if parts.username or parts.password or parts.fragment or parts.query:
        return [f"{url!r} must not carry user info, query or fragment"]
    if origin_only and url.endswith("/"):
        return [f"{url!r} must not end with a slash (it is the issuer, compared byte for byte)"]
    if origin_only and parts.path:
        return [f"{url!r} must be an origin without a path"]
    if origin_only and (parts.scheme != parts.scheme.lower() or parts.netloc != parts.netloc.lower()):
        return [f"{url!r} must use a lowercase scheme and host"]
    return []
