"""`vault`: how the gateway encrypts the per-user upstream credentials it holds (gateway.vault).

Keys are 32 random bytes, base64url (`gateway credentials new-key` prints one). The first key encrypts; every key
listed decrypts, so a rotation puts a new key first and keeps the old ones until `credentials rekey` has moved
every credential onto the new one. With no keys configured, the key set lives in the store (made on first use,
`credentials rotate-key` adds one): a store compromise then exposes the credentials too, so production deployments
give keys here (from a secret: `${VAULT_KEY}`) or in `key_file`."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from gateway.config.base import Model

KEY_BYTES = 32


def decode_key(text: str) -> bytes:
    """A key from its base64url text. Raises ValueError when it is not 32 bytes."""
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("a vault key is 32 bytes in base64url") from None
    if len(raw) != KEY_BYTES:
        raise ValueError("a vault key is 32 bytes in base64url")
    return raw


class VaultSettings(Model):
    keys: list[SecretStr] = Field(
        default_factory=list, description="Encryption keys (base64url, 32 bytes); the first encrypts, all decrypt."
    )
    key_file: Path | None = Field(
        default=None, description="A file with one key per line instead (owner-readable only); first encrypts."
    )
    refresh_ahead_seconds: int = Field(
        default=60, ge=0, le=3600, description="Refresh an upstream token this long before it expires."
    )

    @field_validator("keys")
    @classmethod
    def _keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for key in keys:
            decode_key(key.get_secret_value())
        return keys
