"""What the gateway keeps in Redis. Stored types are separate from wire types even where fields match."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

CodeOutcome = Literal["redeemed", "replayed", "unknown"]  # consume_code: first use, a replay, no such code
RotationOutcome = Literal["rotated", "grace", "reused", "invalid"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # ignore: newer gateways may add fields


class AccessTokenRecord(_Record):
    """An access token, keyed by the SHA-256 of its value; `resource` is its audience (RFC 8707)."""

    user_id: str  # stable id: provider:subject, local:<name>
    email: str | None = None
    preferred_username: str | None = None
    groups: tuple[str, ...] = ()
    client_id: str
    route: str
    resource: str
    scopes: tuple[str, ...] = ()
    issued_at: float
    expires_at: float
    grant_id: str | None = None  # the authorization (refresh family) it came from; None for CLI tokens
    cnf_jkt: str | None = None  # DPoP-bound (RFC 9449 §6): the JWK SHA-256 thumbprint its proofs must be signed by
    revoked: bool = False  # filled in from the separate revocation key at load time

    def usable(self, now: float) -> bool:
        """One answer for unknown, expired and revoked (callers never say which)."""
        return not self.revoked and now < self.expires_at


class UserRecord(_Record):
    """A local account (`users add`); the password only as an argon2id hash."""

    name: str
    email: str | None = None
    groups: tuple[str, ...] = ()
    password_hash: str
    created_at: float
    email_verified: bool = True  # admin-created: vouched for; self sign-up: never (no mail is sent)

    @property
    def user_id(self) -> str:
        return f"local:{self.name}"


class SessionOwnerRecord(_Record):
    """Who an upstream `Mcp-Session-Id` belongs to (MCP security best practices, session hijacking)."""

    user_id: str
    client_id: str
    route: str
    url_elicitation: bool = False  # its initialize declared URL-mode elicitation (gateway.web.connect_required)


class Principal(_Record):
    """The user as tokens and codes snapshot it (claims for identity headers and /userinfo)."""

    user_id: str
    email: str | None = None
    preferred_username: str | None = None
    name: str | None = None
    groups: tuple[str, ...] = ()
    authenticated_at: float | None = None  # when the person last signed in (bounds how stale groups may be)
    account_created_at: float | None = None  # local accounts: which account of that name (a re-created one differs)

    @property
    def provider(self) -> str:
        """`local` or the provider name: the part of the user id before the first colon."""
        return self.user_id.split(":", 1)[0]


class ClientRecord(_Record):
    """An OAuth client: registered by DCR, added by an admin, configured in YAML, or fetched by CIMD."""

    client_id: str
    kind: str  # "dcr" | "static" | "config" | "cimd"
    client_secret_hash: str | None = None  # SHA-256 of the secret; None for public clients
    token_endpoint_auth_method: str = "none"
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    response_types: tuple[str, ...] = ("code",)
    client_name: str | None = None
    client_uri: str | None = None
    logo_uri: str | None = None
    scope: str | None = None
    application_type: str | None = None
    software_id: str | None = None
    software_version: str | None = None
    client_id_issued_at: int | None = None
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2: every token request of this client carries a proof
    jwks: str | None = None  # private_key_jwt (RFC 7523 §2.2): the client's public JWK set (JSON), or
    jwks_uri: str | None = None  # where it is served
    groups: tuple[str, ...] = ()  # client_credentials: the groups of its own principal `client:<id>`
    scopes: tuple[str, ...] | None = None  # client_credentials: the scopes it may be given (None: any of the route's)

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"


class AuthorizationCodeRecord(_Record):
    """What a code was issued for (OAuth 2.1 §4.1.2: bound to client, redirect, PKCE, resource, scope, user)."""

    grant_id: str
    client_id: str
    redirect_uri: str
    redirect_uri_given: bool = True  # the authorization request carried it: /token must too (RFC 6749 §4.1.3)
    code_challenge: str
    route: str
    resource: str
    scopes: tuple[str, ...]
    principal: Principal
    issued_at: float
    expires_at: float
    dpop_jkt: str | None = None  # RFC 9449 §10: redeemed only with a DPoP proof by this key


class RefreshTokenRecord(_Record):
    """A refresh token of one grant (its family). Rotated on use; the successor is kept encrypted under the old
    token's value for the grace window, so a racing client gets the same successor (no second branch)."""

    grant_id: str
    client_id: str
    route: str
    resource: str
    scopes: tuple[str, ...]
    principal: Principal
    issued_at: float
    expires_at: float  # idle expiry: every rotation starts a new window
    cnf_jkt: str | None = None  # a public client's DPoP key (RFC 9449 §5): refreshed only with a proof by it
    rotated_at: float | None = None
    successor_sealed: str | None = None


class ConsentRecord(_Record):
    """An approval remembered per (user, client, route). `redirect_uris`: the exact redirect URIs (port included)
    it was given for, most recent last, bounded; a public native client gets no page only for one of them."""

    scopes: tuple[str, ...]
    granted_at: float
    redirect_uris: tuple[str, ...] = ()


class BrowserSessionRecord(_Record):
    """The gateway's own login session (cookie value hashed into the key); anonymous until login."""

    csrf: str
    principal: Principal | None = None
    created_at: float
    authenticated_at: float | None = None


class PendingAuthorizationRecord(_Record):
    """A validated /authorize request waiting for login and consent (10 minutes)."""

    client_id: str
    redirect_uri: str
    redirect_uri_given: bool = True  # False: omitted (the client's only registered URI was used)
    state: str | None = None
    code_challenge: str
    dpop_jkt: str | None = None  # RFC 9449 §10: the key the code is bound to
    scopes_requested: tuple[str, ...] = ()
    routes: tuple[str, ...]  # candidate routes: one when `resource` named it, several when the user must pick
    session_hash: str  # the browser session that started it
    created_at: float
    force_consent: bool = False  # prompt=consent: ask even when an approval is remembered


class IdpStateRecord(_Record):
    """An upstream sign-in in flight, keyed by its `state` (stored only after consent, single use, 10 min)."""

    provider: str
    nonce: str
    code_verifier: str
    route: str
    pending: PendingAuthorizationRecord
    created_at: float


@dataclass(frozen=True)
class GrantTokens:
    """One authorization's tokens as an admin listing reads them (a result, not a stored record): its access tokens
    (`revoked` filled in) and its live refresh token (rotated ones left out). `grant_id` None: a token issued
    outside any grant (`tokens issue`)."""

    grant_id: str | None
    revoked: bool
    access: tuple[tuple[str, AccessTokenRecord], ...] = ()
    refresh: tuple[tuple[str, RefreshTokenRecord], ...] = ()


@dataclass(frozen=True)
class Rotation:
    """What `rotate_refresh_token` decided (a result, not a stored record)."""

    outcome: RotationOutcome
    record: RefreshTokenRecord | None = None  # the presented token's record (grant, scopes, principal)
    successor: str | None = None  # plaintext refresh token to hand out (rotated or grace)


class UpstreamCredentialRecord(_Record):
    """A user's credential for one upstream (`routes[].upstream_auth` oauth, provider_token), as the vault keeps it:
    encrypted as a whole (gateway.vault), never in the clear in Redis. `endpoint`, `client_id` (and a registered
    client's `client_secret`) are what a refresh and a revocation need; `issued_at` tells a refreshed one apart."""

    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None  # None: the server said nothing (used until the upstream refuses it)
    scope: str | None = None
    token_endpoint: str
    revocation_endpoint: str | None = None
    client_id: str
    client_secret: str | None = None  # a dynamically registered client's (a configured one's stays in config)
    issuer: str | None = None
    resource: str | None = None
    upstream: str | None = None  # the route's upstream it was made for (never sent to another one)
    issued_at: float


class UpstreamFlightRecord(_Record):
    """An authorization at an upstream's server in flight, keyed by its `state` (single use, 10 minutes), bound to
    the browser session and the user that started it; with `pending`, the client's own authorization it continues."""

    route: str
    user_id: str
    session_hash: str
    code_verifier: str
    redirect_uri: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None = None
    issuer: str | None = None
    iss_required: bool = False  # RFC 9207: the server said it sends `iss`
    client_id: str
    client_secret: str | None = None  # a registered client's (sealed with the vault key, see gateway.vault)
    resource: str | None = None
    pending: PendingAuthorizationRecord | None = None
    remember: bool = True
    created_at: float


class UpstreamClientRecord(_Record):
    """The gateway's dynamically registered client (RFC 7591) at one upstream authorization server."""

    client_id: str
    client_secret: str | None = None
    registered_at: float
