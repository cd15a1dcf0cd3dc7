"""Gateway configuration: pydantic-settings models loaded from YAML, `MCP_GATEWAY_…` env overrides.

Sources, highest first: init kwargs > environment (`MCP_GATEWAY_STORE__URL`) > YAML file > defaults.
`${VAR}` inside any YAML string is replaced from the environment before validation. Every problem is
collected and reported at once with its key path (`routes[1].upstream: …`); validators mutate nothing.

One module per section, each with the checks of that section beside its model; `settings` puts them
together and `loading` reads the file. Everything callers use is importable from `gateway.config`.
"""

from gateway.config.access import PUBLIC_ENTRA_TENANTS, AllowRules
from gateway.config.audit import AuditSettings
from gateway.config.base import ConfigError
from gateway.config.cimd import CimdSettings
from gateway.config.clients import ClientSettings
from gateway.config.enterprise import EnterpriseSettings, TrustedIssuer
from gateway.config.identity_jwt import IdentityJwtSettings
from gateway.config.listen import Listen, host_problem
from gateway.config.loading import load_settings
from gateway.config.login import LoginSettings, ProviderSettings, ProviderType, SignupSettings
from gateway.config.oauth import REVOCATIONS_KEPT_SECONDS, IntrospectionCredential, OAuthSettings
from gateway.config.policy import NameRule, PolicySettings
from gateway.config.proxy import ProxySettings
from gateway.config.rate_limits import RateLimit, RateLimitSettings, RouteRateLimits
from gateway.config.routes import DEFAULT_IDENTITY_HEADERS, Claim, Route
from gateway.config.settings import ENV_PREFIX, Settings
from gateway.config.store import STORE_SCHEMES, StoreSettings
from gateway.config.upstream_auth import (
    OAuthUpstreamAuth,
    ProviderTokenUpstreamAuth,
    StaticUpstreamAuth,
    TokenExchangeUpstreamAuth,
)
from gateway.config.vault import VaultSettings

__all__ = [
    "OAuthUpstreamAuth",
    "ProviderTokenUpstreamAuth",
    "VaultSettings",
    "StaticUpstreamAuth",
    "TokenExchangeUpstreamAuth",
    "DEFAULT_IDENTITY_HEADERS",
    "ENV_PREFIX",
    "PUBLIC_ENTRA_TENANTS",
    "REVOCATIONS_KEPT_SECONDS",
    "STORE_SCHEMES",
    "AllowRules",
    "AuditSettings",
    "CimdSettings",
    "Claim",
    "ClientSettings",
    "EnterpriseSettings",
    "TrustedIssuer",
    "ConfigError",
    "IdentityJwtSettings",
    "IntrospectionCredential",
    "Listen",
    "LoginSettings",
    "NameRule",
    "OAuthSettings",
    "PolicySettings",
    "ProviderSettings",
    "ProviderType",
    "ProxySettings",
    "RateLimit",
    "RateLimitSettings",
    "Route",
    "RouteRateLimits",
    "Settings",
    "SignupSettings",
    "StoreSettings",
    "host_problem",
    "load_settings",
]
