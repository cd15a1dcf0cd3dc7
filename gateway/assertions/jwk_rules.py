"""What a published JWK set for signature checks may hold (free of imports: the configuration uses it)."""

from __future__ import annotations

from typing import Any

MAX_KEYS = 20
PUBLIC_KEY_TYPES = ("RSA", "EC", "OKP")
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def key_set_problem(document: Any) -> str | None:
    """What makes `document` no public JWK set for signatures: not `{"keys": [...]}`, more than MAX_KEYS keys, a
    symmetric key or a private member (a JWK set that is published must hold public keys only)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list) or not document["keys"]:
        return 'a JWK set is a JSON object {"keys": [...]} with at least one key'
    keys = document["keys"]
    if len(keys) > MAX_KEYS:
        return f"a JWK set here holds at most {MAX_KEYS} keys"
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in PUBLIC_KEY_TYPES:
            return "every key must be an RSA, EC or OKP public key"
        if any(member in key for member in PRIVATE_MEMBERS):
            return "the JWK set holds private key material: publish public keys only"
        if key.get("use") not in (None, "sig"):
            return "a key for encryption (use: enc) cannot verify signatures"
    return None
