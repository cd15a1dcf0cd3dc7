"""The token endpoint's grants (RFC 6749 §4.1.3, §6; OAuth 2.1 §4.1.3, §4.3; RFC 8707 §2.2; RFC 9700 §4.14)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.access import AccessPolicy
from gateway.config import OAuthSettings
from gateway.oauth import pkce
from gateway.oauth.errors import (
    InvalidDpopProofError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTargetError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from gateway.oauth.grant_types import AUTHORIZATION_CODE, GRANT_TYPES
from gateway.oauth.resource import same_resource
from gateway.oauth.scopes import is_narrowing
from gateway.oauth.token_values import hash_token, new_access_token, new_refresh_token, parse_scopes
from gateway.store.base import TokenStore
from gateway.store.records import AccessTokenRecord, ClientRecord, Principal, RefreshTokenRecord

TokenResponse = dict[str, Any]


async def exchange(
    form: Mapping[str, str],
    resources: list[str],
    client: ClientRecord,
    *,
    store: TokenStore,
    oauth: OAuthSettings,
    known_scopes: frozenset[str],
    policy: AccessPolicy,
    now: float,
    jkt: str | None = None,
) -> TokenResponse:
    """Dispatch on grant_type (the user's grants; machine ones: gateway.oauth.machine_grants). `jkt`: the DPoP key
    the request proved (RFC 9449 §5): the tokens issued are bound to it.

    Raises:
        UnsupportedGrantTypeError, UnauthorizedClientError, InvalidRequestError, InvalidGrantError,
        InvalidScopeError, InvalidTargetError.
    """
    grant_type = form.get("grant_type")
    if grant_type not in GRANT_TYPES:
        raise UnsupportedGrantTypeError(f"grant_type must be one of {', '.join(GRANT_TYPES)}")
    if grant_type not in client.grant_types:
        raise UnauthorizedClientError(f"this client did not register the {grant_type} grant")
    if grant_type == AUTHORIZATION_CODE:
        return await redeem_code(form, resources, client, store=store, oauth=oauth, policy=policy, now=now, jkt=jkt)
    return await refresh(
        form, resources, client, store=store, oauth=oauth, known_scopes=known_scopes, policy=policy, now=now, jkt=jkt
    )


async def redeem_code(
    form: Mapping[str, str],
    resources: list[str],
    client: ClientRecord,
    *,
    store: TokenStore,
    oauth: OAuthSettings,
    policy: AccessPolicy,
    now: float,
    jkt: str | None = None,
) -> TokenResponse:
    """Exchange a code for tokens, for the person as they stand now: a code issued before the account was removed
    or changed, or before the rules changed, is refused like a refresh would be."""
    code = form.get("code")
    if not code:
        raise InvalidRequestError("code is required")
    outcome, record = await store.consume_code(hash_token(code))
    if outcome == "replayed" and record is not None:
        await store.revoke_grant(record.grant_id)  # OAuth 2.1 §4.1.3: tokens minted from a replayed code
    if outcome != "redeemed" or record is None:
        raise InvalidGrantError("the authorization code is invalid, expired or already used")
    if record.client_id != client.client_id or now >= record.expires_at:
        raise InvalidGrantError("the authorization code is invalid, expired or already used")
    redirect_uri = form.get("redirect_uri")
    if redirect_uri is None and record.redirect_uri_given:  # RFC 6749 §4.1.3: required when /authorize had it
        raise InvalidGrantError("redirect_uri is required: the authorization request carried one")
    if redirect_uri is not None and redirect_uri != record.redirect_uri:
        raise InvalidGrantError("redirect_uri differs from the authorization request's")
    pkce.verify(form.get("code_verifier"), record.code_challenge)
    if record.dpop_jkt is not None and jkt != record.dpop_jkt:  # RFC 9449 §10.1
        raise InvalidGrantError("the authorization code is bound to a DPoP key (dpop_jkt): send a proof by it")
    if any(not same_resource(r, record.resource) for r in resources):
        raise InvalidTargetError("resource differs from the one authorized")
    principal = await policy.current(record.principal, record.route, now=now)
    return await issue_tokens(
        store,
        principal,
        client,
        route=record.route,
        resource=record.resource,
        scopes=record.scopes,
        grant_id=record.grant_id,
        oauth=oauth,
        now=now,
        jkt=jkt,
    )


async def refresh(
    form: Mapping[str, str],
    resources: list[str],
    client: ClientRecord,
    *,
    store: TokenStore,
    oauth: OAuthSettings,
    known_scopes: frozenset[str],
    policy: AccessPolicy,
    now: float,
    jkt: str | None = None,
) -> TokenResponse:
    """Rotate on every use; a narrower scope or resource is allowed, a wider one refused (TOK-3). Scopes no
    route knows (offline_access, claude.ai's `claudeai`) are ignored here as at /authorize (SCP-4). A refresh
    token bound to a DPoP key (a public client's, RFC 9449 §5) is refreshed only with a proof by that key."""
    presented = form.get("refresh_token")
    if not presented:
        raise InvalidRequestError("refresh_token is required")
    record = await store.load_refresh_token(hash_token(presented))
    if record is None or record.client_id != client.client_id:
        raise InvalidGrantError("the refresh token is invalid, expired or revoked")
    if record.cnf_jkt is not None and jkt != record.cnf_jkt:
        raise InvalidDpopProofError("this refresh token is bound to a DPoP key: send a proof signed by it")
    scopes = tuple(s for s in parse_scopes(form.get("scope")) if s in known_scopes) or record.scopes
    if not is_narrowing(scopes, record.scopes):
        raise InvalidScopeError("a refresh cannot widen the granted scope")
    if any(not same_resource(r, record.resource) for r in resources):
        raise InvalidTargetError("a refresh cannot change the resource")
    principal = await policy.current(record.principal, record.route, now=now)  # before rotating: nothing burnt
    rotation = await store.rotate_refresh_token(
        presented, new_refresh_token(), now=now, ttl=oauth.refresh_token_ttl, grace=oauth.refresh_grace
    )
    if rotation.outcome == "reused":
        await store.revoke_grant(record.grant_id)  # RFC 9700 §4.14.2: reuse of a rotated token
    if rotation.outcome not in ("rotated", "grace") or rotation.successor is None:
        raise InvalidGrantError("the refresh token is invalid, expired or revoked")
    response = await issue_tokens(
        store,
        principal,
        client,
        route=record.route,
        resource=record.resource,
        scopes=scopes,
        grant_id=record.grant_id,
        oauth=oauth,
        now=now,
        with_refresh=False,
        jkt=jkt,
    )
    response["refresh_token"] = rotation.successor
    return response


async def issue_tokens(
    store: TokenStore,
    principal: Principal,
    client: ClientRecord,
    *,
    route: str,
    resource: str,
    scopes: tuple[str, ...],
    grant_id: str,
    oauth: OAuthSettings,
    now: float,
    with_refresh: bool = True,
    jkt: str | None = None,
    ttl: int | None = None,
) -> TokenResponse:
    """Mint an access token (and a refresh token when the client registered that grant, with or without
    offline_access: TOK-5) bound to one resource, and to a DPoP key when `jkt` is given (`token_type` DPoP; a
    public client's refresh token too: RFC 9449 §5)."""
    access = new_access_token()
    ttl = ttl or oauth.access_token_ttl
    live = await store.save_access_token(
        hash_token(access),
        AccessTokenRecord(
            user_id=principal.user_id,
            email=principal.email,
            preferred_username=principal.preferred_username,
            groups=principal.groups,
            client_id=client.client_id,
            route=route,
            resource=resource,
            scopes=scopes,
            issued_at=now,
            expires_at=now + ttl,
            grant_id=grant_id,
            cnf_jkt=jkt,
        ),
        now=now,
    )
    if not live:  # the grant was revoked while we were issuing (code replay, refresh reuse)
        raise InvalidGrantError("the authorization was revoked")
    response: TokenResponse = {
        "access_token": access,
        "token_type": "DPoP" if jkt else "Bearer",
        "expires_in": ttl,
        "scope": " ".join(scopes),
    }
    if with_refresh and "refresh_token" in client.grant_types:
        token = new_refresh_token()
        await store.save_refresh_token(
            hash_token(token),
            RefreshTokenRecord(
                grant_id=grant_id,
                client_id=client.client_id,
                route=route,
                resource=resource,
                scopes=scopes,
                principal=principal,
                issued_at=now,
                expires_at=now + oauth.refresh_token_ttl,
                cnf_jkt=jkt if client.is_public else None,
            ),
            now=now,
        )
        response["refresh_token"] = token
    return response
