"""ID token validation (OpenID Connect Core 1.0 §3.1.3.7): signature against the provider's JWKS, then
iss, aud (and azp), exp/iat with a small leeway, and the nonce we sent. Pure: keys and clock are inputs."""

from __future__ import annotations

import secrets
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY_SECONDS = 60


class IdTokenError(Exception):
    """The id_token must not be trusted; the message says why (safe to log, never shown with the token)."""


class UnknownKeyError(IdTokenError):
    """Signed with a key id not in the JWKS we hold: refetch the JWKS (key rotation) and try once more."""


def header_kid(token: str) -> str | None:
    from joserfc import jws

    try:
        return jws.extract_compact(token.encode("ascii")).headers().get("kid")
    except (JoseError, ValueError, UnicodeEncodeError):
        raise IdTokenError("the id_token is not a compact JWS") from None


def validate_id_token(
    token: str, keys: KeySet, *, issuer: str | list[str], client_id: str, nonce: str, now: float
) -> dict[str, Any]:
    """The verified claims.

    `issuer` may list several acceptable values (Entra's multi-tenant issuer is resolved by the caller).

    Raises:
        UnknownKeyError: the `kid` is not in `keys`.
        IdTokenError: bad signature or algorithm, wrong iss/aud/azp/nonce, expired or issued in the future.
    """
    kid = header_kid(token)
    if kid is not None and all(k.kid != kid for k in keys.keys):
        raise UnknownKeyError(f"no key {kid!r} in the provider's JWKS")
    try:
        claims: dict[str, Any] = dict(jwt.decode(token, keys, algorithms=ALGORITHMS).claims)
    except JoseError as exc:
        raise IdTokenError(f"id_token signature rejected ({type(exc).__name__})") from None
    issuers = [issuer] if isinstance(issuer, str) else issuer
    if claims.get("iss") not in issuers:
        raise IdTokenError("id_token issuer does not match the provider")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise IdTokenError("id_token audience is not this gateway's client_id")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise IdTokenError("id_token has several audiences and azp is not this gateway")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, (int, float)) or now > exp + LEEWAY_SECONDS:
        raise IdTokenError("id_token expired")
    if isinstance(iat, (int, float)) and iat > now + LEEWAY_SECONDS:
        raise IdTokenError("id_token issued in the future")
    if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(claims["nonce"], nonce):
        raise IdTokenError("id_token nonce does not match this sign-in")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise IdTokenError("id_token has no subject")
    return claims
