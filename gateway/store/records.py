"""What the gateway keeps in Redis. Stored types are separate from wire types even where fields match."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


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
    revoked: bool = False

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

    @property
    def user_id(self) -> str:
        return f"local:{self.name}"


class SessionOwnerRecord(_Record):
    """Who an upstream `Mcp-Session-Id` belongs to (MCP security best practices, session hijacking)."""

    user_id: str
    client_id: str
    route: str
