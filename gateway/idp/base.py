"""The identity-provider seam and what a successful upstream sign-in yields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from gateway.store.records import Principal


class ProviderError(Exception):
    """The upstream sign-in failed; the message is safe to show the person."""


@dataclass(frozen=True)
class AuthorizationStart:
    """What to remember (in Redis, keyed by `state`) between the redirect and the callback."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class TokenClient:
    """Where and as whom the gateway refreshes a provider's tokens (provider_token routes)."""

    token_endpoint: str
    client_id: str
    client_secret: str


class IdentityProvider(Protocol):
    name: str
    label: str

    async def start(self, redirect_uri: str) -> AuthorizationStart: ...

    async def finish(
        self,
        code: str,
        start_nonce: str,
        code_verifier: str,
        redirect_uri: str,
        *,
        now: float,
        tokens_out: dict[str, Any] | None = None,  # filled with the provider's token answer (provider_token routes)
    ) -> Principal: ...

    async def token_client(self) -> TokenClient: ...

    async def close(self) -> None: ...
