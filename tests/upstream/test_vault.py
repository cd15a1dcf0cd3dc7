"""The vault: upstream credentials encrypted at rest (AES-GCM, bound to user and slot), keys rotated without
losing what was sealed with the old ones."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import SecretStr, ValidationError

from gateway.config import ConfigError, VaultSettings
from gateway.store.records import UpstreamCredentialRecord
from gateway.vault import Vault, new_key, rotate_stored_key
from tests.conftest import make_settings

RECORD = UpstreamCredentialRecord(
    access_token="at-" + "a" * 40,
    refresh_token="rt-" + "b" * 40,
    expires_at=2_000_000_000.0,
    token_endpoint="https://as.example/token",
    client_id="gw",
    issued_at=1_800_000_000.0,
)


def vault_of(store, *keys: str, **extra) -> Vault:
    return Vault(VaultSettings(keys=[SecretStr(k) for k in keys], **extra), store)


async def test_the_stored_value_is_sealed_and_a_new_first_key_keeps_old_values_readable(store):
    old, new = new_key(), new_key()
    await vault_of(store, old).save("local:alice", "route:remote", RECORD)
    sealed = await store.load_credential("local:alice", "route:remote")
    assert RECORD.access_token not in sealed and RECORD.refresh_token not in sealed and sealed.startswith("v1.")
    rotated = vault_of(store, new, old)  # the rotation: a new key first, the old one kept for reading
    assert (await rotated.load("local:alice", "route:remote"))[0] == RECORD
    assert await rotated.rekey() == (1, 0)  # everything sealed again with the new key
    assert (await vault_of(store, new).load("local:alice", "route:remote"))[0] == RECORD  # the old key may go
    assert await vault_of(store, old).load("local:alice", "route:remote") is None  # (and no longer opens it)


async def test_a_sealed_value_opens_only_for_its_user_and_slot_and_a_tampered_one_not_at_all(store):
    vault = vault_of(store, new_key())
    sealed = await vault.save("local:alice", "route:remote", RECORD)
    assert await vault.open("local:bob", "route:remote", sealed) is None
    assert await vault.open("local:alice", "route:other", sealed) is None
    head, _, body = sealed.rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[20] ^= 1  # one bit of the ciphertext
    flipped = f"{head}.{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    assert await vault.open("local:alice", "route:remote", flipped) is None
    assert await vault.open("local:alice", "route:remote", "v2." + sealed[3:]) is None
    assert await vault.open("local:alice", "route:remote", "garbage") is None
    assert await vault.seal("u", "s", "x") != await vault.seal("u", "s", "x")  # (a fresh nonce each time)


async def test_the_store_held_key_set_is_made_once_and_rotated_keeping_old_keys(store):
    first, second = Vault(VaultSettings(), store), Vault(VaultSettings(), store)
    await first.save("local:alice", "route:remote", RECORD)
    assert (await second.load("local:alice", "route:remote"))[0] == RECORD  # one key set for all instances
    await rotate_stored_key(store)
    third = Vault(VaultSettings(), store)
    await third.save("local:bob", "route:remote", RECORD)  # sealed with the new key
    assert (await first.load("local:bob", "route:remote"))[0] == RECORD  # an old reader learns the new key
    assert (await third.load("local:alice", "route:remote"))[0] == RECORD  # and the old key still opens


def test_keys_are_checked_when_the_configuration_is_loaded(tmp_path):
    with pytest.raises(ConfigError) as refused:
        make_settings(1, "redis://127.0.0.1:6379/0", "p", [], vault={"keys": ["c2hvcnQ"]})
    assert "32 bytes" in str(refused.value) and "c2hvcnQ" not in str(refused.value)


async def test_a_key_file_must_be_owner_only_and_hold_keys_when_the_configuration_is_loaded(store, tmp_path):
    path = tmp_path / "vault.keys"
    path.write_text(f"# vault keys, first seals\n{new_key()}\n")
    os.chmod(path, 0o644)
    with pytest.raises(ValidationError, match="readable by others"):
        VaultSettings(key_file=path)
    os.chmod(path, 0o600)
    assert len(await Vault(VaultSettings(key_file=path), store).keys()) == 1
    path.write_text("not a key\n")
    with pytest.raises(ValidationError, match="32 bytes"):
        VaultSettings(key_file=path)
