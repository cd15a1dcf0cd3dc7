"""Signed JWTs presented at /token: client assertions (RFC 7523 §2.2, §3) and identity assertion grants (ID-JAG,
draft-ietf-oauth-identity-assertion-authz-grant §3, the MCP Enterprise-Managed Authorization profile §7.4).

Pure: keys, clock and the expectations are inputs; what was seen once (`jti`) is the caller's to record. Only
asymmetric algorithms from an explicit list are accepted (never `none`, never HMAC: a public JWK set cannot be an
HMAC key); the header is read before the signature only to pick the key."""

from __future__ import annotations

import base64
import json
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_SECONDS = 60  # clock skew allowed on exp, iat and nbf
MAX_KEYS_TRIED = 10  # a JWT without `kid` is tried against at most this many keys of the set
MAX_JTI_LENGTH = 256
MAX_TIME = 2**53  # NaN fails every comparison with it, and so does infinity


class AssertionRejectedError(Exception):
    """The JWT must not be trusted; the message says why (safe to log and to answer, never the JWT itself)."""


class UnknownKeyError(AssertionRejectedError):
    """Signed with a `kid` the key set does not hold: refetch it (key rotation) and try once more."""


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWS, not verified: to choose the key and the issuer's rules only.

    Raises:
        AssertionRejectedError: not a compact JWS of two JSON objects.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise AssertionRejectedError("the assertion is not a compact JWS")
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2])
    except (ValueError, RecursionError):
        raise AssertionRejectedError("the assertion is not a compact JWS") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AssertionRejectedError("the assertion is not a compact JWS")
    return header, claims


def verify_assertion(
    token: str,
    keys: KeySet,
    *,
    now: float,
    max_lifetime: float,
    typ: str | None = None,
    algorithms: tuple[str, ...] = ALGORITHMS,
) -> dict[str, Any]:
    """The claims of `token`, signed by a key of `keys`, valid now, with a numeric `exp` no further than
    `max_lifetime` seconds after its `iat` (or after now) and a string `jti`. `typ`, when given, must be the
    header's `typ` (case-insensitive, with or without `application/`: RFC 8725 §3.11). Issuer, audience and subject
    are the caller's to check (they differ per use).

    Raises:
        UnknownKeyError: its `kid` is not in `keys`.
        AssertionRejectedError: anything else, with the reason.
    """
    header, _ = unverified_parts(token)
    alg = header.get("alg")
    if alg not in algorithms:
        raise AssertionRejectedError(f"algorithm {str(alg)[:20]!r} is not accepted")
    if typ is not None and str(header.get("typ", "")).lower().removeprefix("application/") != typ:
        raise AssertionRejectedError(f"the JWT header typ must be {typ}")
    claims = _verified_claims(token, keys, header.get("kid"), list(algorithms))
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
    if not _number(exp):
        raise AssertionRejectedError("the assertion has no usable exp")
    if now > exp + LEEWAY_SECONDS:
        raise AssertionRejectedError("the assertion has expired")
    if iat is not None and (not _number(iat) or iat > now + LEEWAY_SECONDS):
        raise AssertionRejectedError("the assertion was issued in the future")
    if nbf is not None and (not _number(nbf) or nbf > now + LEEWAY_SECONDS):
        raise AssertionRejectedError("the assertion is not valid yet")
    if exp - (iat if _number(iat) else now) > max_lifetime:
        raise AssertionRejectedError(f"the assertion lives longer than {max_lifetime:g} seconds")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise AssertionRejectedError("the assertion needs a jti (single use)")
    return claims


def audience_matches(claims: dict[str, Any], accepted: tuple[str, ...]) -> bool:
    """`aud` (a string or an array) names one of `accepted`, byte for byte."""
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    return any(isinstance(a, str) and a in accepted for a in audiences)


def _verified_claims(token: str, keys: KeySet, kid: Any, algorithms: list[str]) -> dict[str, Any]:
    if kid is not None:
        if not isinstance(kid, str) or all(k.kid != kid for k in keys.keys):
            raise UnknownKeyError("the assertion is signed by a key the issuer does not publish")
        candidates = [k for k in keys.keys if k.kid == kid]
    else:  # no kid (PyJWT's default): the set's keys, a bounded few
        candidates = list(keys.keys)[:MAX_KEYS_TRIED]
    for key in candidates:
        try:
            return dict(jwt.decode(token, key, algorithms=algorithms).claims)
        except (JoseError, ValueError, TypeError, RecursionError, OverflowError):
            continue
    if kid is None:  # perhaps a key published since we last fetched the set
        raise UnknownKeyError("the assertion's signature does not verify with the published keys")
    raise AssertionRejectedError("the assertion's signature does not verify")


def _number(value: Any) -> bool:
    """A time a JWT may hold: a finite JSON number a float holds exactly (no NaN, no 400-digit integer)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < MAX_TIME


def is_time(value: Any) -> bool:
    return _number(value)
