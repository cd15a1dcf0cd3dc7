"""Signed identity for upstreams that want proof (issue #5 item 5): a short-lived ES256 JWT per request,
audience = the route's canonical resource, public keys at /.well-known/jwks.json.

Keys live in the store (shared by every gateway instance; the first instance creates one) or in a file.
Rotation without downtime: `keys rotate` adds a key that signs from then on, while older keys stay published
(the newest three), so upstreams holding a cached JWKS refetch on the unknown `kid` and keep verifying."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from gateway.config import IdentityJwtSettings
from gateway.identity import RequestContext
from gateway.store.base import KeyStore

CACHE_SECONDS = 30  # how quickly another instance's rotation is picked up
KEPT_KEYS = 3


def new_key() -> dict[str, Any]:
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"}, auto_kid=True)
    return key.as_dict(private=True)


async def rotate(store: KeyStore) -> str:
    """Add a new signing key (it signs from now on); keep the newest KEPT_KEYS. Returns its kid."""
    current = json.loads(await store.load_signing_keys() or "[]")
    fresh = new_key()
    await store.save_signing_keys(json.dumps([fresh, *current][:KEPT_KEYS]), only_if_absent=False)
    return str(fresh["kid"])


class IdentitySigner:
    def __init__(self, settings: IdentityJwtSettings, store: KeyStore, issuer: str) -> None:
        self._settings = settings
        self._store = store
        self._issuer = issuer
        self._keys: list[ECKey] = []
        self._loaded_at = 0.0
        if settings.key_file is not None:
            self._keys = _parse(json.loads(settings.key_file.read_text()).get("keys", []))
            self._loaded_at = float("inf")  # a file is read once; rotate by redeploying it

    def forget(self) -> None:
        """Read the stored keys again at the next use (a rotation made in this process: `POST /api/keys/rotate`)."""
        if self._settings.key_file is None:
            self._loaded_at = 0.0

    async def keys(self) -> list[ECKey]:
        if time.monotonic() - self._loaded_at > CACHE_SECONDS:
            raw = await self._store.load_signing_keys()
            if raw is None:
                await self._store.save_signing_keys(json.dumps([new_key()]), only_if_absent=True)
                raw = await self._store.load_signing_keys() or "[]"
            self._keys, self._loaded_at = _parse(json.loads(raw)), time.monotonic()
        return self._keys

    async def jwks(self) -> dict[str, Any]:
        return dict(KeySet(await self.keys()).as_dict(private=False))  # type: ignore[arg-type]

    async def sign(self, context: RequestContext, audience: str, lifetime: int | None = None) -> str:
        """The identity JWT for `audience`, valid `lifetime` seconds (default: identity_jwt.lifetime)."""
        key = (await self.keys())[0]
        record, now = context.record, int(time.time())
        claims = {
            "iss": self._issuer,
            "aud": audience,
            "sub": record.user_id,
            "iat": now,
            "exp": now + (self._settings.lifetime if lifetime is None else lifetime),
            "jti": secrets.token_urlsafe(12),
            "client_id": record.client_id,
            "scope": " ".join(record.scopes),
            "email": record.email,
            "preferred_username": record.preferred_username,
            "groups": list(record.groups),
        }
        header = {"alg": "ES256", "kid": key.kid, "typ": "JWT"}
        return jwt.encode(header, {k: v for k, v in claims.items() if v is not None}, key)


def _parse(entries: list[dict[str, Any]]) -> list[ECKey]:
    return [ECKey.import_key(entry) for entry in entries]
