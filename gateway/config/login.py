"""`login`: local accounts, self sign-up and upstream identity providers (OIDC presets, GitHub)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr

from gateway.config.base import Model, url_problems
from gateway.config.namespaces import identity_namespaces

ProviderType = Literal["oidc", "google", "entra", "keycloak", "okta", "auth0", "github"]


class ProviderSettings(Model):
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


class SignupSettings(Model):
    enabled: bool = Field(default=False, description="Let people create local accounts themselves.")
    email_domains: list[str] = Field(default_factory=list, description="Only these email domains may sign up.")


class LoginSettings(Model):
    local: bool = Field(default=True, description="Offer local accounts (`users add`).")
    providers: list[ProviderSettings] = Field(default_factory=list)
    signup: SignupSettings = Field(default_factory=SignupSettings)
    identity_max_age: int = Field(
        default=86400,
        gt=0,
        description="Seconds a sign-in counts: after it, /authorize asks to sign in again and codes and refreshes "
        "of that sign-in are refused (fresh groups from the provider).",
    )


def login_problems(data: dict[str, Any]) -> list[str]:
    """Providers: unique names, what each type needs; allow rules may only name known sign-in methods."""
    login = data.get("login")
    providers = login.get("providers") if isinstance(login, dict) else None
    problems, _ = _provider_problems(providers if isinstance(providers, list) else [])
    signup = login.get("signup") if isinstance(login, dict) else None
    if isinstance(signup, dict) and signup.get("enabled") and not signup.get("email_domains"):
        problems.append("login.signup.email_domains: required when sign-up is enabled (who may sign up)")
    return problems + _unknown_method_problems(data, identity_namespaces(data))


def _provider_problems(providers: list[Any]) -> tuple[list[str], list[str]]:
    """What is wrong with each provider entry, and the names of the providers."""
    problems: list[str] = []
    names: list[str] = []
    for i, entry in enumerate(providers):
        if not isinstance(entry, dict):
            continue
        where, kind, name = f"login.providers[{i}]", entry.get("type", "oidc"), entry.get("name")
        if isinstance(name, str):
            if name in names or name in ("local", "client"):
                problems.append(f"{where}.name: {name!r} is taken (names must be unique, not 'local' nor 'client')")
            names.append(name)
        if kind in ("oidc", "keycloak", "okta", "auth0") and not entry.get("issuer"):
            problems.append(f"{where}.issuer: required for type {kind}")
        if kind == "entra" and not entry.get("tenant"):
            problems.append(f"{where}.tenant: required for type entra (tenant id or domain)")
        issuer = entry.get("issuer")
        if isinstance(issuer, str):
            problems += [f"{where}.issuer: {p}" for p in url_problems(issuer, origin_only=False)]
    return problems, names


def _unknown_method_problems(data: dict[str, Any], known: set[str]) -> list[str]:
    """`providers` in the global or a route's allow rules that name no configured sign-in method."""
    routes = data.get("routes") or []
    rule_sets = (
        [("allow", data.get("allow"))]
        + [(f"routes[{i}].allow", r.get("allow")) for i, r in enumerate(routes) if isinstance(r, dict)]
        if isinstance(routes, list)
        else []
    )
    problems: list[str] = []
    for where, rules in rule_sets:
        wanted = rules.get("providers") if isinstance(rules, dict) else None
        for provider in wanted if isinstance(wanted, list) else []:
            if provider not in known:
                problems.append(
                    f"{where}.providers: unknown sign-in method {provider!r} (known: {', '.join(sorted(known))})"
                )
    return problems
