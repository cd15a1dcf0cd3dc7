"""Who is calling: the authenticated principal a request carries from the bearer check to the proxy."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from gateway.config import Claim
from gateway.store.records import AccessTokenRecord


@dataclass(frozen=True)
class RequestContext:
    """The result of a successful bearer check, attached to the request."""

    token_id: str  # 8 hex digits of the token hash, for logs
    record: AccessTokenRecord

    def claim(self, name: Claim) -> str | None:
        """A claim as a header value; None when the principal has none (the header is then omitted)."""
        return self.claims[name]

    @cached_property
    def claims(self) -> dict[str, str | None]:
        """Every claim as a header value, worked out once (a context is kept with its cached token)."""
        r = self.record
        return {
            "user": r.user_id,
            "email": r.email,
            "preferred_username": r.preferred_username,
            "groups": ",".join(r.groups) or None,
            "client_id": r.client_id,
            "scopes": " ".join(r.scopes) or None,
        }
