"""The whole configuration (`Settings`): its sections, its sources, and the checks across sections.

Every problem is collected and reported at once with its key path (`routes[1].upstream: …`); validators mutate
nothing. Construct it with `load_settings` (YAML file, environment, overrides) or directly (init, environment).
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.config.access import AllowRules, access_problems
from gateway.config.admin import AdminSettings, admin_problems
from gateway.config.aggregate import VirtualServer, aggregate_problems, with_virtual_routes
from gateway.config.audit import AuditSettings
from gateway.config.base import ConfigError, join, url_problems
from gateway.config.branding import Branding
from gateway.config.cimd import CimdSettings
from gateway.config.clients import ClientSettings, client_problems
from gateway.config.enterprise import EnterpriseSettings, enterprise_problems
from gateway.config.identity_jwt import IdentityJwtSettings
from gateway.config.listen import Listen
from gateway.config.login import LoginSettings, login_problems
from gateway.config.oauth import OAuthSettings
from gateway.config.proxy import ProxySettings
from gateway.config.rate_limits import RateLimitSettings
from gateway.config.routes import Route, route_problems
from gateway.config.store import StoreSettings
from gateway.config.tracing import TracingSettings
from gateway.config.upstream_auth import provider_token_problems
from gateway.config.vault import VaultSettings

ENV_PREFIX = "MCP_GATEWAY_"


class Settings(BaseSettings):
    """The whole gateway configuration (see config/gateway.example.yaml)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True, hide_input_in_errors=True
    )

    public_url: str = Field(description="The issuer and public origin, byte for byte; no trailing slash.")
    listen: Listen = Field(default_factory=Listen)
    store: StoreSettings = Field(default_factory=StoreSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    allowed_origins: list[str] = Field(default_factory=list, description="Browser origins allowed on MCP routes.")
    routes: list[Route] = Field(default_factory=list)
    virtual_servers: list[VirtualServer] = Field(
        default_factory=list, description="MCP endpoints combining several routes (their tools, prompts, resources)."
    )
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)
    clients: list[ClientSettings] = Field(default_factory=list, description="Pre-registered OAuth clients.")
    cimd: CimdSettings = Field(default_factory=CimdSettings)
    enterprise: EnterpriseSettings = Field(
        default_factory=EnterpriseSettings, description="Enterprise IdPs whose ID-JAGs /token accepts."
    )
    login: LoginSettings = Field(default_factory=LoginSettings)
    allow: AllowRules = Field(default_factory=AllowRules, description="Default access rules for every route.")
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings, description="OpenTelemetry span attributes.")
    branding: Branding = Field(default_factory=Branding, description="Name, logo, colours and links of every page.")
    identity_jwt: IdentityJwtSettings = Field(default_factory=IdentityJwtSettings)
    vault: VaultSettings = Field(default_factory=VaultSettings, description="Encryption of upstream credentials.")
    admin: AdminSettings = Field(
        default_factory=AdminSettings, description="The admin API's own listener (off unless admin.listen.port)."
    )
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list, description="Proxies whose X-Forwarded-For is believed (CIDRs); else the socket."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _collect_problems(cls, data: Any, handler: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data.get("routes"), tuple):
            problems = aggregate_problems(data)
            data = with_virtual_routes(data)  # (each virtual server is a route too)
            problems += _cross_check(data)
        else:
            problems = []
        try:
            settings = handler(data)
        except ValidationError as exc:
            raise ConfigError(format_errors(exc) + problems) from None
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
        """Constructed directly: init kwargs > environment > defaults (no .env file, no secrets directory). The
        YAML file enters below the environment through `load_settings`, which validates the three merged."""
        return init_settings, env_settings

    def route(self, name: str) -> Route:
        """The route called `name`; KeyError names the known routes."""
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(f"no route named {name!r} (known: {', '.join(r.name for r in self.routes) or 'none'})")


def format_errors(exc: ValidationError) -> list[str]:
    """pydantic's errors as `key.path: message` lines (`routes[1].upstream: …`)."""
    problems = []
    for err in exc.errors():
        where: str = ""
        for part in err["loc"]:
            where = f"{where}[{part}]" if isinstance(part, int) else join(where, str(part))
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        problems.append(f"{where or '(top level)'}: {message}")
    return problems


def _cross_check(data: dict[str, Any]) -> list[str]:
    """Problems pydantic's per-field checks cannot see; tolerant of malformed input (reported elsewhere)."""
    problems: list[str] = []
    public_url = data.get("public_url")
    if isinstance(public_url, str):
        problems += [f"public_url: {p}" for p in url_problems(public_url, origin_only=True)]
    problems += login_problems(data)
    problems += access_problems(data)
    problems += client_problems(data)
    problems += enterprise_problems(data)
    problems += route_problems(data)
    problems += provider_token_problems(data)
    problems += admin_problems(data)
    return problems
