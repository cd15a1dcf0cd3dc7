"""The keys that sign the identity JWTs sent upstream (gateway.signing): list their ids, rotate."""

from __future__ import annotations

import json
from typing import Any, Literal

from gateway.admin.errors import conflict
from gateway.admin.target import AdminTarget
from gateway.admin.views import MAX_LISTED, KeyList, KeyView
from gateway.signing import rotate


def _entries(raw: str | None) -> list[dict[str, Any]]:
    try:
        entries = json.loads(raw or "[]")
    except ValueError:
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


async def list_keys(target: AdminTarget) -> KeyList:
    """The key ids in signing order (the first signs), from identity_jwt.key_file or from the store; never the keys."""
    key_file = target.settings.identity_jwt.key_file
    source: Literal["store", "file"] = "store" if key_file is None else "file"
    if key_file is not None:
        document = json.loads(key_file.read_text(encoding="utf-8"))
        entries = [e for e in document.get("keys", []) if isinstance(e, dict)]
    else:
        entries = _entries(await target.store.load_signing_keys())
    views = [KeyView(str(e.get("kid", "")), e.get("alg"), i == 0, source) for i, e in enumerate(entries[:MAX_LISTED])]
    return KeyList(views, len(entries) > MAX_LISTED)


async def rotate_key(target: AdminTarget) -> KeyView:
    """A new signing key, first from now on (older ones stay published). The running gateway serving this request
    signs with it at once; other instances within 30 s. Raises: AdminError 409 (keys come from a file)."""
    if target.settings.identity_jwt.key_file is not None:
        raise conflict("identity_jwt.key_file is set: rotate by deploying a new key file")
    kid = await rotate(target.store)
    if target.public_app is not None:
        from gateway.app_state import SIGNER_KEY

        if SIGNER_KEY in target.public_app:
            target.public_app[SIGNER_KEY].forget()
    return KeyView(kid, "ES256", True, "store")
