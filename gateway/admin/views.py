"""What the admin service returns: frozen dataclasses, the same for the API's JSON and the CLI's lines.

Never a secret: tokens appear as their 8-hex id (the first digits of their SHA-256), sessions likewise, upstream
credentials as the slot they fill. Times are seconds since the epoch. Every listing is bounded (`MAX_LISTED`) and
says whether it was cut (`truncated`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

MAX_LISTED = 1000  # objects in one listing; more are left out and `truncated` is true

TokenState = Literal["active", "expired", "revoked"]


def as_json(view: Any) -> dict[str, Any]:
    """A view as a JSON-ready mapping (tuples become lists when encoded)."""
    return dataclasses.asdict(view)


@dataclass(frozen=True)
class UserView:
    name: str
    user_id: str
    email: str | None
    groups: list[str]
    created_at: float


@dataclass(frozen=True)
class UserList:
    users: list[UserView]
    truncated: bool


@dataclass(frozen=True)
class UserRemoval:
    name: str
    sessions: int  # login sessions ended
    tokens: int  # access tokens revoked (with the refresh tokens of their grants)
    credentials: int  # upstream credentials revoked and dropped


@dataclass(frozen=True)
class UserRevocation:
    user_id: str
    sessions: int  # login sessions ended
    grants: int  # grants (refresh families) revoked, with every token of theirs
    tokens: int  # access tokens revoked, those of the grants included


@dataclass(frozen=True)
class SessionView:
    session_id: str  # 8 hex digits of the session's digest
    user_id: str
    created_at: float
    authenticated_at: float | None


@dataclass(frozen=True)
class SessionList:
    sessions: list[SessionView]
    truncated: bool


@dataclass(frozen=True)
class TokenView:
    token_id: str  # 8 hex digits of the token's SHA-256
    kind: Literal["access", "refresh"]
    grant_id: str | None
    user_id: str
    client_id: str
    route: str
    scopes: list[str]
    state: TokenState
    issued_at: float
    expires_at: float


@dataclass(frozen=True)
class GrantView:
    grant_id: str | None  # None: a token issued outside any grant (`tokens issue`)
    user_id: str
    client_id: str
    route: str
    resource: str
    scopes: list[str]
    state: TokenState
    issued_at: float
    expires_at: float  # of its refresh token when it has one, else of its newest access token
    tokens: list[TokenView]


@dataclass(frozen=True)
class GrantList:
    grants: list[GrantView]
    truncated: bool


@dataclass(frozen=True)
class Revocation:
    grant_id: str | None
    token_ids: list[str]  # the tokens revoked


@dataclass(frozen=True)
class ClientView:
    client_id: str
    kind: Literal["pre-registered", "dcr", "cimd"]
    source: Literal["config", "static", "dcr", "cimd"]  # where it lives: YAML, admin-added, registered, fetched
    client_name: str | None
    redirect_uris: list[str]
    grant_types: list[str]
    token_endpoint_auth_method: str
    issued_at: int | None
    last_used: float | None = None  # its last token from the token endpoint (remembered 400 days)


@dataclass(frozen=True)
class ClientList:
    clients: list[ClientView]
    truncated: bool


@dataclass(frozen=True)
class ClientCreated:
    client: ClientView
    client_secret: str | None  # a generated secret, shown this once (only its hash is stored)


@dataclass(frozen=True)
class CredentialView:
    user_id: str
    slot: str  # route:<name> or provider:<name>
    readable: bool  # False: sealed with a key the vault no longer has
    issued_at: float | None
    expires_at: float | None
    refreshable: bool


@dataclass(frozen=True)
class CredentialList:
    credentials: list[CredentialView]
    truncated: bool


@dataclass(frozen=True)
class CredentialDrop:
    user_id: str
    dropped: int  # credentials revoked at their servers (where they allow it) and dropped


@dataclass(frozen=True)
class RouteStatus:
    name: str
    path: str
    resource: str
    kind: Literal["http", "sse", "stdio", "virtual"]
    upstream: str | None
    command: str | None
    members: list[str]
    reachable: bool | None  # None: not probed (a stdio route without the running gateway)
    status: int | None  # the upstream's HTTP status to the probe
    detail: str | None
    streams: int | None = None  # SSE streams open on this route in the process answering (None: no gateway)
    processes: int | None = None  # a stdio or HTTP+SSE route's processes or connections running (None: no gateway)


@dataclass(frozen=True)
class RouteList:
    routes: list[RouteStatus]
    open_streams: int | None  # MCP requests in flight in the process serving this answer (None: no gateway)
    truncated: bool


@dataclass(frozen=True)
class KeyView:
    kid: str
    alg: str | None
    signing: bool  # the key that signs now (the others stay published for verifiers with a cached set)
    source: Literal["store", "file"]


@dataclass(frozen=True)
class KeyList:
    keys: list[KeyView]
    truncated: bool
