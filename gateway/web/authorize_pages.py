"""The pages of /authorize: sign-in, consent and access denied (contract.md "Login and consent pages").

The consent page says how the gateway knows the client (MCP security best practices, "Confused Deputy"): a
CIMD client by the host that publishes its metadata document (verified), a pre-registered one by its configured
name, a DCR client's self-chosen name only in quotes and marked unverified. Scopes are shown with the route's
`scope_descriptions`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway.access import AccessPolicy
from gateway.app_state import PROVIDERS_KEY, ROUTES_KEY, SETTINGS_KEY, STORE_KEY
from gateway.config import Route
from gateway.oauth.authorize import PRE_REGISTERED_KINDS
from gateway.oauth.redirects import is_loopback_only
from gateway.oauth.scopes import OPENID, grant_scopes
from gateway.store.records import ClientRecord, PendingAuthorizationRecord, Principal
from gateway.web.render import render
from gateway.web.session import BrowserSession

MAX_SHOWN_NAME = 80  # characters of a client's own name shown on a page


@dataclass(frozen=True)
class ClientDescription:
    name: str  # how the pages call it
    badge: str  # "verified" | "pre-registered" | "unverified"
    how: str  # one sentence: how the gateway knows who this is
    calls_itself: str | None = None  # a verified client's own name, shown after `how` (in <bdi>, as every name)


def describe_client(client: ClientRecord) -> ClientDescription:
    claimed = (client.client_name or "").strip()[:MAX_SHOWN_NAME]
    if client.kind == "cimd":
        host = host_of(client.client_id) or client.client_id
        return ClientDescription(
            host,
            "verified",
            f"Its metadata document is published by {host} at {client.client_id}.",
            claimed if claimed and claimed.lower() != host else None,
        )
    if client.kind in PRE_REGISTERED_KINDS:
        return ClientDescription(
            claimed or client.client_id, "pre-registered", "Registered with this gateway by its administrator."
        )
    return ClientDescription(
        f'"{claimed}"' if claimed else "An unnamed application",
        "unverified",
        "This application registered itself with the gateway, and anyone may register under "
        "any name: the gateway does not know who made it.",
    )


OPENID_DESCRIPTION = "Who you are: your user id, name, email and groups (at the gateway's /userinfo)"


def scope_items(route: Route, scopes: tuple[str, ...] | list[str]) -> list[dict[str, str | None]]:
    """Each scope with what it allows in words (`routes[].scope_descriptions`), when the operator said so."""
    return [
        {
            "scope": scope,
            "description": route.scope_descriptions.get(scope) or (OPENID_DESCRIPTION if scope == OPENID else None),
        }
        for scope in scopes
    ]


def consent_page(
    request: web.Request,
    session: BrowserSession,
    request_id: str,
    pending: PendingAuthorizationRecord,
    client: ClientRecord,
    principal: Principal | None,
    provider: str | None,
) -> web.Response:
    """Who asks, where it returns, which server and scopes; before a provider sign-in `principal` is None."""
    table, settings = request.app[ROUTES_KEY], request.app[SETTINGS_KEY]
    routes = [table.by_name(name) for name in pending.routes]
    if principal is not None:  # offer only what this person may use
        policy = AccessPolicy(settings, request.app[STORE_KEY])
        routes = [
            r
            for r in routes
            if policy.permits(r.route, user_id=principal.user_id, email=principal.email, groups=principal.groups)
        ]
        if not routes:
            return denied_page(session, principal, table.by_name(pending.routes[0]).route.name)
    scopes = (
        grant_scopes(pending.scopes_requested, routes[0].route.scopes) if len(routes) == 1 else pending.scopes_requested
    )
    label = request.app[PROVIDERS_KEY][provider].label if provider else None
    context: dict[str, Any] = {
        "client": describe_client(client),
        "redirect_host": host_of(pending.redirect_uri) or pending.redirect_uri,
        "redirect_uri": pending.redirect_uri,
        "loopback_only": is_loopback_only(client.redirect_uris),
        "user": (principal.preferred_username or principal.user_id) if principal else None,
        "provider": provider,
        "provider_label": label,
        "routes": [
            {
                "name": r.route.name,
                "resource": r.resource,
                "scopes": scope_items(r.route, grant_scopes(pending.scopes_requested, r.route.scopes)),
            }
            for r in routes
        ],
        "scopes": scope_items(routes[0].route, scopes),
        "csrf_token": session.record.csrf,
        "request_id": request_id,
    }
    return render("consent.html", context)


def denied_page(session: BrowserSession, principal: Principal, route: str) -> web.Response:
    """No code is issued; say which account was used and how to switch."""
    return render(
        "denied.html",
        {
            "user": principal.preferred_username or principal.user_id,
            "email": principal.email,
            "user_id": principal.user_id,
            "provider": principal.provider,
            "route": route,
            "csrf_token": session.record.csrf,
        },
        status=403,
    )


def login_page(
    request: web.Request,
    session: BrowserSession,
    request_id: str,
    client: ClientRecord,
    username: str = "",
    error: str | None = None,
    *,
    status: int = 200,
) -> web.Response:
    providers = [{"name": name, "label": p.label} for name, p in request.app[PROVIDERS_KEY].items()]
    settings = request.app[SETTINGS_KEY]
    return render(
        "login.html",
        {
            "client": describe_client(client),
            "csrf_token": session.record.csrf,
            "request_id": request_id,
            "username": username,
            "error": error,
            "providers": providers,
            "local": settings.login.local,
            "signup": settings.login.signup.enabled,
        },
        status=status,
    )


def host_of(uri: str) -> str | None:
    try:
        return urlsplit(uri).hostname
    except ValueError:
        return None
