"""`vault`: how the gateway encrypts the per-user upstream credentials it holds (gateway.vault).

Keys are 32 random bytes, base64url (`gateway credentials new-key` prints one). The first key encrypts; every key
listed decrypts, so a rotation puts a new key first and keeps the old ones until `credentials rekey` has moved
every credential onto the new one. With no keys configured, the key set lives in the store (made on first use,
`credentials rotate-key` adds one): a store compromise then exposes the credentials too, so production deployments
give keys here (from a secret: `${VAULT_KEY}`) or in `key_file`."""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from gateway.config.base import Model

KEY_BYTES = 32


class VaultKeyError(ValueError):
    """The configured key file cannot be used."""


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

    @field_validator("key_file")
    @classmethod
    def _key_file(cls, path: Path | None) -> Path | None:
        if path is not None:
            read_key_file(path)  # (checked when the configuration is loaded: check-config and start-up say so)
        return path

    @field_validator("keys")
    @classmethod
    def _keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for key in keys:
            decode_key(key.get_secret_value())
        return keys


def read_key_file(path: os.PathLike[str] | str) -> list[bytes]:
    """One base64url key per line (blank lines and `#` comments skipped); owner-only, like every key file."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise VaultKeyError(f"vault.key_file {str(path)!r} is not a regular file")
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise VaultKeyError(f"vault.key_file {str(path)!r} is readable by others: chmod 600 it")
        with open(path, encoding="ascii") as file:
            lines = [line.strip() for line in file.read(64 * 1024).splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise VaultKeyError(f"vault.key_file {str(path)!r} cannot be read ({type(exc).__name__})") from None
    try:
        keys = [decode_key(line) for line in lines if line and not line.startswith("#")]
    except ValueError as exc:
        raise VaultKeyError(f"vault.key_file {str(path)!r}: {exc}") from None
    if not keys:
        raise VaultKeyError(f"vault.key_file {str(path)!r} holds no key")
    return keys
