"""Build the configured providers."""

from __future__ import annotations

from gateway.config import ProviderSettings
from gateway.idp.base import IdentityProvider
from gateway.idp.github import GitHubProvider
from gateway.idp.oidc import OidcProvider


def build_provider(settings: ProviderSettings) -> IdentityProvider:
    if settings.type == "github":
        return GitHubProvider(settings)
    return OidcProvider(settings)


def build_providers(settings: list[ProviderSettings]) -> dict[str, IdentityProvider]:
    return {entry.name: build_provider(entry) for entry in settings}
