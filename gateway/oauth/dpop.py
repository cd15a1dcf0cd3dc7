"""DPoP proofs (RFC 9449 §4.3) and server nonces (§8, §9). MCP's DPoP profile (SEP-1932) is RFC 9449 as it is:
no body digest; an earlier draft's `content_digest` claim (the request body's SHA-256, RFC 9530 syntax) is checked
when a proof carries it, and required only where configured (`oauth.dpop_require_content_digest`). Every `jti` is
single use on every instance (the caller records it in the shared store), so a proof cannot be replayed with
another body either way. Pure: clock, expectations and the nonce key are inputs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import import_key
from joserfc.jws import JWSRegistry

from gateway.oauth.errors import InvalidDpopProofError, UseDpopNonceError
from gateway.oauth.jwt_assertions import is_time

ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA")  # asymmetric only (RFC 9449 §11.6)
MAX_PROOF_LENGTH = 4096
MAX_JTI_LENGTH = 128
NONCE_STEP = 60  # a nonce is good for the step it was made in and the next
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 4096


class _ProofRegistry(JWSRegistry):
    max_header_length = 2048  # the header carries the key: an RSA-4096 JWK is some 750 characters


REGISTRY = _ProofRegistry(algorithms=list(ALGORITHMS))


@dataclass(frozen=True, slots=True)
class Proof:
    jkt: str  # RFC 7638 thumbprint of the proof's key: what a bound token's `cnf.jkt` holds
    jti: str
    iat: float
    content_digest: Any = None  # the claim as given (checked against the body by `check_digest`)


def thumbprint(jwk: dict[str, Any]) -> str:
    return import_key(jwk).thumbprint()


def ath_of(token_hash: str) -> str:
    """`ath` (§4.2): base64url SHA-256 of the access token, from the hex SHA-256 the gateway keeps instead."""
    return base64.urlsafe_b64encode(bytes.fromhex(token_hash)).rstrip(b"=").decode("ascii")


def content_digest(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def same_htu(htu: Any, url: str) -> bool:
    """§4.3 check 9: the URI without query and fragment, scheme and host case-insensitive (RFC 3986 §6.2.2)."""
    if not isinstance(htu, str) or len(htu) > 2048:
        return False
    try:
        given, expected = urlsplit(htu), urlsplit(url)
        return _bare(given) == _bare(expected)
    except ValueError:
        return False


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float,
    window: float,
    token_hash: str | None = None,
    nonces: NonceKey | None = None,
) -> Proof:
    """The checks of §4.3 on one `DPoP` header value: typ, an asymmetric alg, a public `jwk` that verifies the
    signature, `htm`, `htu`, `iat` within `window`, a `jti`; with `token_hash` the `ath` of that token; with `nonces`
    the current server nonce. The body, read later, is checked by `check_digest`.

    Raises:
        InvalidDpopProofError: any check fails (the description says which).
        UseDpopNonceError: the nonce is missing or stale (answer with a fresh `DPoP-Nonce`).
    """
    claims, jkt = _signed_claims(proof)
    jti, iat = claims.get("jti"), claims.get("iat")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise InvalidDpopProofError("the DPoP proof needs a jti")
    if claims.get("htm") != method:
        raise InvalidDpopProofError(f"the DPoP proof is for another HTTP method (htm must be {method})")
    if not same_htu(claims.get("htu"), url):
        raise InvalidDpopProofError(f"the DPoP proof is for another URL (htu must be {url})")
    if not is_time(iat) or abs(now - iat) > window:
        raise InvalidDpopProofError(f"the DPoP proof's iat is more than {window:g} seconds off")
    if token_hash is not None and not _equal(claims.get("ath"), ath_of(token_hash)):
        raise InvalidDpopProofError("the DPoP proof's ath does not match the access token")
    if nonces is not None and not nonces.valid(claims.get("nonce"), now):
        raise UseDpopNonceError("the DPoP proof must carry the nonce in the DPoP-Nonce header")
    return Proof(jkt, jti, float(iat), claims.get("content_digest"))


def check_digest(proof: Proof, body: bytes | None, *, required: bool) -> None:
    """A proof's `content_digest` against the request body it came with: checked when it has one, required with
    `required` on a request with a body.

    Raises:
        InvalidDpopProofError: a digest of another body, or none where one is required.
    """
    if proof.content_digest is None and not (required and body):
        return
    if not _equal(proof.content_digest, content_digest(body or b"")):
        raise InvalidDpopProofError("the DPoP proof's content_digest does not match the request body")


def _signed_claims(proof: str) -> tuple[dict[str, Any], str]:
    """The claims of a proof whose header is a DPoP one and whose own public `jwk` verifies it, and that key's
    thumbprint."""
    if not proof or len(proof) > MAX_PROOF_LENGTH:
        raise InvalidDpopProofError("the DPoP proof is missing or too long")
    header = _header(proof)
    if header.get("typ") != "dpop+jwt":
        raise InvalidDpopProofError("the DPoP proof's typ must be dpop+jwt")
    if header.get("alg") not in ALGORITHMS:
        raise InvalidDpopProofError(f"DPoP proofs are signed with one of {' '.join(ALGORITHMS)}")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or any(m in jwk for m in PRIVATE_MEMBERS):
        raise InvalidDpopProofError("the DPoP proof's jwk must be a public key")
    if jwk.get("kty") == "RSA" and not _sane_rsa(jwk):  # (a huge exponent costs 30x a normal verification)
        raise InvalidDpopProofError(f"an RSA DPoP key has {MIN_RSA_BITS} to {MAX_RSA_BITS} bits and exponent 65537")
    try:
        key = import_key(jwk)
        claims = dict(jwt.decode(proof, key, algorithms=list(ALGORITHMS), registry=REGISTRY).claims)
        jkt = key.thumbprint()
    except (JoseError, ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError):
        raise InvalidDpopProofError("the DPoP proof's signature does not verify with its jwk") from None
    return claims, jkt


class NonceKey:
    """Server nonces that need no storage: the time step and its HMAC under a secret every instance shares, good
    for the step it was made in and the next (60 to 120 s)."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(("dpop-nonce:" + secret).encode()).digest()

    def current(self, now: float) -> str:
        return self._make(int(now // NONCE_STEP))

    def valid(self, nonce: Any, now: float) -> bool:
        if not isinstance(nonce, str) or len(nonce) > 100:
            return False
        step = int(now // NONCE_STEP)
        return any(hmac.compare_digest(nonce, self._make(s)) for s in (step, step - 1))

    def _make(self, step: int) -> str:
        mac = hmac.new(self._key, str(step).encode(), hashlib.sha256).digest()[:18]
        return f"{step:x}." + base64.urlsafe_b64encode(mac).decode("ascii")


def _sane_rsa(jwk: dict[str, Any]) -> bool:
    """Read from the JWK itself, before any key is built: `n` of 2048 to 4096 bits, `e` 65537 (AQAB)."""
    n = jwk.get("n")
    if not isinstance(n, str) or jwk.get("e") != "AQAB" or len(n) > 1000:
        return False
    try:
        bits = int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big").bit_length()
    except ValueError:
        return False
    return MIN_RSA_BITS <= bits <= MAX_RSA_BITS


def _header(proof: str) -> dict[str, Any]:
    head = proof.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, RecursionError):
        raise InvalidDpopProofError("the DPoP proof is not a JWT") from None
    if not isinstance(header, dict) or proof.count(".") != 2:
        raise InvalidDpopProofError("the DPoP proof is not a JWT")
    return header


def _bare(parts: Any) -> tuple[str, str]:
    path = parts.path or "/"
    netloc = parts.netloc.lower()
    default = {"https": ":443", "http": ":80"}.get(parts.scheme.lower())
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return urlunsplit((parts.scheme.lower(), netloc, "", "", "")), path


def _equal(given: Any, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())
