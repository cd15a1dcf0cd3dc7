"""`clients`: pre-registered OAuth clients, with their redirect URIs checked under the rules of DCR."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr

from gateway.config.base import Model
from gateway.oauth.redirects import DEFAULT_PRIVATE_USE_SCHEMES, redirect_uri_problem


class ClientSettings(Model):
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


def client_problems(data: dict[str, Any]) -> list[str]:
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
