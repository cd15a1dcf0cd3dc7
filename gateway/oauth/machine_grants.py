"""Grants without a person at the gateway: client_credentials (OAuth 2.1 §4.2; MCP extension
io.modelcontextprotocol/oauth-client-credentials, SEP-1046) and the RFC 7523 jwt-bearer grant carrying an
enterprise IdP's ID-JAG (MCP extension io.modelcontextprotocol/enterprise-managed-authorization, SEP-990).

Neither issues a refresh token: a machine client authenticates again, an enterprise client asks its IdP for a new
ID-JAG (the IdP's policy is consulted every time). Both bind the token to one route (RFC 8707) and apply that
route's access rules to the principal: `client:<id>` for a machine client, `<provider>:<sub>` for the person."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from gateway.access import AccessPolicy
from gateway.config import OAuthSettings
from gateway.oauth.authorize import resolve_routes
from gateway.oauth.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTargetError,
    UnauthorizedClientError,
)
from gateway.oauth.grant_types import CLIENT_CREDENTIALS
from gateway.oauth.grants import TokenResponse, issue_tokens
from gateway.oauth.resource import same_resource
from gateway.oauth.token_values import parse_scopes
from gateway.routing import RouteInfo
from gateway.store.base import TokenStore
from gateway.store.records import ClientRecord, Principal

CLIENT_NAMESPACE = "client"
PRE_REGISTERED = ("config", "static")  # (DCR and CIMD never register client_credentials; checked again here)


def client_principal(client: ClientRecord, *, now: float) -> Principal:
    """A machine client as the principal of its own tokens: `client:<id>`, its configured groups."""
    return Principal(
        user_id=f"{CLIENT_NAMESPACE}:{client.client_id}",
        preferred_username=client.client_id,
        name=client.client_name,
        groups=client.groups,
        authenticated_at=now,
    )


async def client_credentials(
    form: Mapping[str, str],
    resources: list[str],
    client: ClientRecord,
    *,
    routes: list[RouteInfo],
    host: str,
    store: TokenStore,
    oauth: OAuthSettings,
    policy: AccessPolicy,
    now: float,
    jkt: str | None = None,
) -> TokenResponse:
    """An access token for the client itself, for the one route `resource` names.

    Raises:
        UnauthorizedClientError: the client may not use this grant, or the route's rules do not admit it.
        InvalidTargetError: no single route named. InvalidScopeError: a scope beyond the client's.
    """
    if CLIENT_CREDENTIALS not in client.grant_types or client.is_public or client.kind not in PRE_REGISTERED:
        raise UnauthorizedClientError("this client may not use the client_credentials grant")
    info = _one_route(resources, routes, host)
    principal = client_principal(client, now=now)
    if not policy.permits(info.route, user_id=principal.user_id, email=None, groups=principal.groups):
        raise UnauthorizedClientError(f"the access rules of this MCP server do not admit {principal.user_id}")
    offered = info.route.scopes if client.scopes is None else [s for s in info.route.scopes if s in client.scopes]
    requested = [s for s in parse_scopes(form.get("scope")) if s in info.route.scopes]
    if any(s not in offered for s in requested):
        raise InvalidScopeError("a requested scope is not granted to this client")
    if info.route.scopes and not offered:
        raise InvalidScopeError("this client is given none of this MCP server's scopes")
    return await issue_tokens(
        store,
        principal,
        client,
        route=info.route.name,
        resource=info.resource,
        scopes=tuple(requested or offered),
        grant_id=secrets.token_hex(16),
        oauth=oauth,
        now=now,
        with_refresh=False,
        jkt=jkt,
    )


async def identity_assertion(
    form: Mapping[str, str],
    resources: list[str],
    client: ClientRecord,
    claims: dict[str, Any],
    principal: Principal,
    *,
    routes: list[RouteInfo],
    store: TokenStore,
    oauth: OAuthSettings,
    policy: AccessPolicy,
    now: float,
    ttl: int | None = None,
    jkt: str | None = None,
) -> TokenResponse:
    """An access token for the person a verified ID-JAG names (gateway.assertions.verifier), audience-restricted to
    the MCP server its `resource` claim names (profile §5.1), with the scopes the ID-JAG and the request share
    (§7.2.1).

    Raises:
        InvalidGrantError: the resource or scope claim names nothing here (§7.6.2), or the route's rules do not
            admit the person. InvalidTargetError: a `resource` parameter other than the claim.
    """
    resource = claims.get("resource")
    info = next((i for i in routes if isinstance(resource, str) and same_resource(i.resource, resource)), None)
    if info is None:
        raise InvalidGrantError("ID-JAG rejected: its resource claim names no MCP server of this gateway")
    if any(not same_resource(r, info.resource) for r in resources):
        raise InvalidTargetError("resource differs from the ID-JAG's resource claim")
    route_scopes = info.route.scopes
    claim = claims.get("scope")
    if claim is not None and not isinstance(claim, str):
        raise InvalidGrantError("ID-JAG rejected: its scope claim is not a space-separated string")
    granted = parse_scopes(claim) if claim is not None else None
    if granted is not None and any(s not in route_scopes for s in granted):
        raise InvalidGrantError("ID-JAG rejected: its scope claim names scopes this MCP server does not have")
    requested = parse_scopes(form.get("scope"))
    scopes = tuple(s for s in (granted if granted is not None else route_scopes) if not requested or s in requested)
    if route_scopes and not scopes:
        raise InvalidScopeError("the ID-JAG and the request have no scope of this MCP server in common")
    if not policy.permits(info.route, user_id=principal.user_id, email=principal.email, groups=principal.groups):
        raise InvalidGrantError("access to this MCP server is not allowed for this user")
    return await issue_tokens(
        store,
        principal,
        client,
        route=info.route.name,
        resource=info.resource,
        scopes=scopes,
        grant_id=secrets.token_hex(16),
        oauth=oauth,
        now=now,
        with_refresh=False,
        jkt=jkt,
        ttl=ttl,
    )


def _one_route(resources: list[str], routes: list[RouteInfo], host: str) -> RouteInfo:
    if not routes:
        raise InvalidRequestError("this gateway has no MCP servers")
    candidates = resolve_routes(resources, routes, host)
    if len(candidates) != 1:
        raise InvalidTargetError("name the MCP server with the resource parameter (RFC 8707)")
    return candidates[0]
