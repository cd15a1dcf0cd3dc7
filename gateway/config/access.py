"""`allow` and `routes[].allow`: who may use a route, and the checks that refuse rules which do not say what
they mean (a route open to anyone on the internet by default, a group without its provider)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from gateway.config.base import Model, plain, truthy
from gateway.config.namespaces import identity_namespaces


class AllowRules(Model):
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


PUBLIC_ENTRA_TENANTS = frozenset({"common", "organizations", "consumers", "9188040d-6c67-4c5b-b112-36a304b66dad"})
_ENTRA_ISSUER = re.compile(r"^https://login\.microsoftonline\.com/([^/]+)(/v2\.0)?/?$", re.IGNORECASE)
_RULE_KEYS = ("users", "emails", "email_domains", "groups", "providers")


def access_problems(data: dict[str, Any]) -> list[str]:
    """Access rules that do not say what they mean: routes open to the internet by default (self sign-up, a
    public provider, no rule), group names without their provider, scope descriptions of unknown scopes."""
    login, routes, global_rules = plain(data.get("login")), plain(data.get("routes")), plain(data.get("allow"))
    login = login if isinstance(login, dict) else {}
    routes = [(i, r) for i, r in enumerate(routes) if isinstance(r, dict)] if isinstance(routes, list) else []
    providers = login.get("providers")
    providers = [p for p in providers if isinstance(p, dict)] if isinstance(providers, list) else []
    methods = sorted(identity_namespaces(data))
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
            if truthy(rules.get("any_signed_in")) and any(rules.get(k) for k in _RULE_KEYS):
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
    if truthy(login.get("local", True)) and isinstance(signup, dict) and truthy(signup.get("enabled")):
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
    rules = plain(rules)
    return isinstance(rules, dict) and (any(rules.get(k) for k in _RULE_KEYS) or truthy(rules.get("any_signed_in")))
