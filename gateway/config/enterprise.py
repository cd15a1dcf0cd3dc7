"""`enterprise`: identity providers whose Identity Assertion JWT Authorization Grants (ID-JAG) the token endpoint
accepts (MCP extension io.modelcontextprotocol/enterprise-managed-authorization, SEP-990)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gateway.config.base import Model, url_problems
from gateway.config.clients import key_set_problems
from gateway.config.upstream_auth import endpoint_problem

RESERVED_NAMESPACES = ("local", "client")  # local accounts and client_credentials principals


class TrustedIssuer(Model):
    """One enterprise IdP. Its subjects become `<provider>:<sub>`: the namespace of the sign-in provider of that
    name when there is one, so access rules, groups and credentials apply to the person whichever way they came."""

    issuer: str = Field(description="The IdP's issuer identifier, byte for byte as in the ID-JAG's `iss`.")
    provider: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="Identity namespace (user ids), like a sign-in name."
    )
    jwks_uri: str | None = Field(default=None, description="Its JWK set; default: from its discovery document.")
    jwks: dict[str, Any] | None = Field(default=None, description="Its JWK set inline (instead of a URL).")
    clients: list[str] = Field(min_length=1, description="client_ids that may present this IdP's ID-JAGs.")
    email_claim: str = Field(default="email")
    trust_email: bool = Field(
        default=False,
        description="Take the email claim as verified without email_verified: true (an IdP that vouches for it).",
    )
    groups_claim: str | None = Field(default="groups", description="Claim holding the user's groups (or none).")
    username_claim: str = Field(default="preferred_username")
    max_lifetime: int = Field(default=600, gt=0, le=3600, description="Longest exp - iat accepted, seconds.")


class EnterpriseSettings(Model):
    issuers: list[TrustedIssuer] = Field(default_factory=list)
    access_token_ttl: int | None = Field(
        default=None, gt=0, description="Lifetime of tokens issued for an ID-JAG; default: oauth.access_token_ttl."
    )


def enterprise_problems(data: dict[str, Any]) -> list[str]:
    """Issuers that are URLs, unique, with one source of keys, in a namespace that is no one else's."""
    enterprise = data.get("enterprise")
    issuers = enterprise.get("issuers") if isinstance(enterprise, dict) else None
    problems: list[str] = []
    seen: set[str] = set()
    namespaces: set[str] = set()
    for i, entry in enumerate(issuers if isinstance(issuers, (list, tuple)) else []):
        if not isinstance(entry, dict):
            continue
        where, issuer = f"enterprise.issuers[{i}]", entry.get("issuer")
        if isinstance(issuer, str):
            problems += [f"{where}.issuer: {p}" for p in url_problems(issuer, origin_only=False)]
            if issuer in seen:
                problems.append(f"{where}.issuer: {issuer} appears twice")
            seen.add(issuer)
        provider = entry.get("provider")
        if isinstance(provider, str) and provider in namespaces:  # IdP B could mint IdP A's people
            problems.append(f"{where}.provider: {provider!r} is another issuer's namespace (one per issuer)")
        namespaces.add(str(provider))
        if entry.get("provider") in RESERVED_NAMESPACES:
            problems.append(f"{where}.provider: {entry['provider']!r} is reserved (local accounts, machine clients)")
        elif (problem := _shared_namespace_problem(data, entry.get("provider"), issuer)) is not None:
            problems.append(f"{where}.provider: {problem}")
        problems += _key_source_problems(entry, where, issuer)
    return problems


def _key_source_problems(entry: dict[str, Any], where: str, issuer: Any) -> list[str]:
    """One source of keys: inline public keys, a usable jwks_uri, or an issuer its discovery can be fetched from."""
    problems: list[str] = []
    jwks, jwks_uri = entry.get("jwks"), entry.get("jwks_uri")
    if jwks is not None and jwks_uri is not None:
        problems.append(f"{where}: jwks or jwks_uri, not both")
    problems += key_set_problems(jwks, jwks_uri, where)
    if jwks is None and jwks_uri is None and isinstance(issuer, str) and (problem := endpoint_problem(issuer)):
        problems.append(f"{where}.issuer: its discovery document is fetched from it: {problem}")
    return problems


def _shared_namespace_problem(data: dict[str, Any], provider: Any, issuer: Any) -> str | None:
    """A namespace shared with a sign-in provider must be the same IdP: that provider's configured `issuer`. Else
    this IdP could mint the user ids of another provider's people (`github:<id>`) and be them: their access,
    their held upstream credentials."""
    login = data.get("login")
    providers = login.get("providers") if isinstance(login, dict) else None
    for entry in providers if isinstance(providers, list) else []:
        if not isinstance(entry, dict) or entry.get("name") != provider:
            continue
        theirs = entry.get("issuer")
        if not isinstance(theirs, str) or not isinstance(issuer, str) or theirs.rstrip("/") != issuer.rstrip("/"):
            return (
                f"{provider!r} is the sign-in provider login.providers[name={provider}] with another issuer: "
                "an enterprise IdP may share only its own sign-in provider's namespace (pick another name)"
            )
    return None
