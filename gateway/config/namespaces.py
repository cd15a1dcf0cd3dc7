"""The identity namespaces a configuration has: the part of a user id before the colon (`corp:1234`), by which
access rules name providers and qualify groups."""

from __future__ import annotations

from typing import Any

LOCAL, CLIENT = "local", "client"  # local accounts; client_credentials clients (their own principals)


def identity_namespaces(data: dict[str, Any]) -> set[str]:
    """`local`, `client`, every sign-in provider's name and every enterprise issuer's `provider`."""
    login, enterprise = data.get("login"), data.get("enterprise")
    providers = login.get("providers") if isinstance(login, dict) else None
    issuers = enterprise.get("issuers") if isinstance(enterprise, dict) else None
    names = {LOCAL, CLIENT}
    for entries, key in ((providers, "name"), (issuers, "provider")):
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get(key), str):
                names.add(entry[key])
    return names
