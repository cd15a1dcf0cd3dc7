"""The vault: per-user upstream credentials, encrypted at rest (AES-256-GCM), in the store.

Every record is sealed whole: `v1.<key id>.<base64url(nonce ‖ ciphertext)>`, the associated data binding it to its
user and slot (`mcpgw-vault v1\\0<user>\\0<slot>`), so a sealed value copied onto another user or another route
does not open. The key id is the first 8 hex digits of the SHA-256 of the key: the first key of the set seals,
any key of the set opens, so rotation is "put a new key first, keep the old ones while credentials sealed with
them remain" (`credentials rekey` moves them all onto the first key). Keys come from `vault.keys` /
`vault.key_file`, else a key set kept in the store (gateway.config.vault says what that exposes)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from gateway.config import VaultSettings
from gateway.config.vault import VaultKeyError, decode_key, read_key_file
from gateway.store.base import CredentialStore
from gateway.store.records import UpstreamClientRecord, UpstreamCredentialRecord

__all__ = ["Vault", "VaultKeyError", "read_key_file"]
VERSION = "v1"
NONCE_BYTES = 12


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def route_slot(route: str) -> str:
    return f"route:{route}"


def provider_slot(provider: str) -> str:
    return f"provider:{provider}"


class Vault:
    """Seals and opens credentials of one deployment; reads its key set once per process (after a rotation in the
    store, other instances learn the new key on their next start, and open credentials sealed with it meanwhile:
    an unknown key id makes the vault read the set again)."""

    def __init__(self, settings: VaultSettings, store: CredentialStore) -> None:
        self._settings, self._store = settings, store
        self._keys: list[bytes] | None = None

    async def keys(self, *, reread: bool = False) -> list[bytes]:
        if self._keys is None or reread:
            self._keys = await self._load_keys()
        return self._keys

    async def _load_keys(self) -> list[bytes]:
        if self._settings.keys:
            return [decode_key(k.get_secret_value()) for k in self._settings.keys]
        if self._settings.key_file is not None:
            return read_key_file(self._settings.key_file)
        stored = await self._store.load_vault_keys()
        if stored is None:
            await self._store.save_vault_keys(json.dumps([new_key()]), only_if_absent=True)  # the first one wins
            stored = await self._store.load_vault_keys()
        return [decode_key(k) for k in json.loads(stored or "[]")]

    async def seal(self, user_id: str, slot: str, plain: str) -> str:
        key = (await self.keys())[0]
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plain.encode("utf-8"), _aad(user_id, slot))
        return f"{VERSION}.{key_id(key)}.{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    async def open(self, user_id: str, slot: str, sealed: str) -> str | None:
        """The plain text, or None when it was not sealed for this user and slot with a key of the set."""
        version, _, rest = sealed.partition(".")
        kid, _, body = rest.partition(".")
        if version != VERSION:
            return None
        keys = await self.keys()
        if not any(key_id(k) == kid for k in keys):
            keys = await self.keys(reread=True)  # (rotated by another instance since this one read the set)
        for key in keys:
            if key_id(key) != kid:
                continue
            try:
                raw = base64.urlsafe_b64decode(body.encode("ascii"))
                return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(user_id, slot)).decode("utf-8")
            except (InvalidTag, ValueError):
                continue  # (two keys of one id: the other may open it)
        return None

    # -- credentials ----------------------------------------------------------------------------------------------

    async def save(
        self, user_id: str, slot: str, record: UpstreamCredentialRecord, *, only_if: str | None = None
    ) -> str | None:
        """The sealed value kept, or None when `only_if` no longer held (gateway.store.credentials)."""
        sealed = await self.seal(user_id, slot, record.model_dump_json())
        return sealed if await self._store.save_credential(user_id, slot, sealed, only_if=only_if) else None

    async def load(self, user_id: str, slot: str) -> tuple[UpstreamCredentialRecord, str] | None:
        """The credential and its sealed form (for a compare-and-delete), or None when there is none, or it cannot
        be opened (its key is gone: it is as good as none, the user connects again)."""
        sealed = await self._store.load_credential(user_id, slot)
        if sealed is None:
            return None
        record = await self._record(user_id, slot, sealed)
        return (record, sealed) if record is not None else None

    async def all_of(self, user_id: str) -> dict[str, UpstreamCredentialRecord | None]:
        """Every slot the user holds (None: a credential this key set cannot open)."""
        return {
            slot: await self._record(user_id, slot, sealed)
            for slot, sealed in sorted((await self._store.credentials_of(user_id)).items())
        }

    async def opened(self, user_id: str, slot: str, sealed: str) -> UpstreamCredentialRecord | None:
        """The credential a sealed value holds (None: not for this user and slot, or its key is gone)."""
        return await self._record(user_id, slot, sealed)

    async def _record(self, user_id: str, slot: str, sealed: str) -> UpstreamCredentialRecord | None:
        plain = await self.open(user_id, slot, sealed)
        if plain is None:
            return None
        try:
            return UpstreamCredentialRecord.model_validate_json(plain)
        except ValidationError:
            return None

    async def rekey(self) -> tuple[int, int]:
        """Seal every credential again with the first key: (moved, unreadable ones left as they are)."""
        moved = unreadable = 0
        first = key_id((await self.keys())[0])
        for user_id in await self._store.credential_users():
            for slot, sealed in (await self._store.credentials_of(user_id)).items():
                if sealed.split(".")[1:2] == [first]:
                    continue
                plain = await self.open(user_id, slot, sealed)
                if plain is None:
                    unreadable += 1
                    continue
                if await self._store.save_credential(
                    user_id, slot, await self.seal(user_id, slot, plain), only_if=sealed
                ):
                    moved += 1  # (one refreshed or dropped meanwhile is left as it now is)
        return moved, unreadable

    # -- the gateway's registered clients at upstream servers -------------------------------------------------------

    async def save_client(self, route: str, issuer: str, record: UpstreamClientRecord) -> None:
        sealed = await self.seal("-", f"client:{route}:{issuer}", record.model_dump_json())
        await self._store.save_upstream_client(route, issuer, sealed)  # (first writer wins: load it back)

    async def load_client(self, route: str, issuer: str) -> UpstreamClientRecord | None:
        sealed = await self._store.load_upstream_client(route, issuer)
        plain = await self.open("-", f"client:{route}:{issuer}", sealed) if sealed else None
        try:
            return UpstreamClientRecord.model_validate_json(plain) if plain else None
        except ValidationError:
            return None


def _aad(user_id: str, slot: str) -> bytes:
    return f"mcpgw-vault {VERSION}\0{user_id}\0{slot}".encode()


async def rotate_stored_key(store: CredentialStore) -> str:
    """Put a new key first in the store-held key set (the old ones stay, for reading); its id."""
    fresh = new_key()
    await store.add_vault_key(fresh)
    return key_id(decode_key(fresh))
