"""DPoP at the gateway's doors (RFC 9449): the proof of a /token request and of each request with a DPoP-bound
token on an MCP route, replay-checked across instances (the store), with server nonces when `oauth.dpop_nonce`
is on (stateless: gateway.oauth.dpop.NonceKey under a secret every instance shares)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from gateway.config import Settings
from gateway.oauth.dpop import ALGORITHMS, NonceKey, Proof, check_digest, verify_proof
from gateway.oauth.errors import InvalidDpopProofError, OAuthError, UseDpopNonceError
from gateway.store.base import KeyStore

DPOP_ALGS = " ".join(ALGORITHMS)


class DpopChecker:
    def __init__(self, settings: Settings, store: KeyStore) -> None:
        self._store = store
        self._window = settings.oauth.dpop_iat_window
        self._nonce_on = settings.oauth.dpop_nonce
        self._require_digest = settings.oauth.dpop_require_content_digest
        self._nonces: NonceKey | None = None

    async def nonce_headers(self, now: float) -> dict[str, str]:
        """`DPoP-Nonce` to send (§8.2: a fresh one on every answer) when nonces are on; else nothing."""
        nonces = await self._nonce_key()
        return {"DPoP-Nonce": nonces.current(now)} if nonces is not None else {}

    async def check(
        self,
        headers: Mapping[str, str] | Any,
        *,
        method: str,
        url: str,
        now: float,
        token_hash: str | None = None,
        required: bool = False,
    ) -> Proof | None:
        """The request's proof (None without a `DPoP` header unless `required`), checked and recorded once.

        Raises:
            InvalidDpopProofError: two headers, a failed check, or a proof seen before.
            UseDpopNonceError: a nonce is required and this one is missing or stale (with a fresh one attached).
        """
        values = headers.getall("DPoP", [])
        if not values:
            if required:
                raise InvalidDpopProofError("a DPoP proof is required (the DPoP request header)")
            return None
        if len(values) > 1:
            raise InvalidDpopProofError("send exactly one DPoP header")
        nonces = await self._nonce_key()
        try:
            proof = verify_proof(
                values[0],
                method=method,
                url=url,
                now=now,
                window=self._window,
                token_hash=token_hash,
                nonces=nonces,
            )
        except UseDpopNonceError as error:
            raise await self._with_nonce(error, now) from None
        seen = hashlib.sha256(f"{proof.jkt}:{proof.jti}".encode()).hexdigest()
        if not await self._store.claim_once("dpop", seen, int(proof.iat + self._window - now) + 2):
            raise InvalidDpopProofError("this DPoP proof was already used (a fresh jti per request)")
        return proof

    def check_body(self, proof: Proof, body: bytes | None) -> None:
        """The proof's `content_digest` against the body (gateway.oauth.dpop.check_digest)."""
        check_digest(proof, body, required=self._require_digest)

    async def _with_nonce(self, error: OAuthError, now: float) -> OAuthError:
        error.headers.update(await self.nonce_headers(now))
        return error

    async def _nonce_key(self) -> NonceKey | None:
        if not self._nonce_on:
            return None
        if self._nonces is None:
            self._nonces = NonceKey(await self._store.load_or_create_secret("dpop-nonce"))
        return self._nonces
