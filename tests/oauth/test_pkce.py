"""PKCE, S256 only (RFC 7636 §4; OAuth 2.1 §4.1.1; MCP AUTHZ-2)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gateway.oauth.errors import InvalidGrantError, InvalidRequestError
from gateway.oauth.pkce import parse_challenge, s256, verify

RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 Appendix B, as printed there


def own_hash(verifier: str) -> str:
    """The S256 challenge of any string (UTF-8), so a refusal can only come from the verifier's shape."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("utf-8")).digest()).rstrip(b"=").decode("ascii")


def test_s256_matches_the_rfc_7636_appendix_b_vector() -> None:
    """RFC 7636 Appendix B: BASE64URL(SHA256(verifier)) without padding."""
    assert s256(RFC_VERIFIER) == RFC_CHALLENGE


def test_parse_challenge_accepts_an_s256_challenge() -> None:
    """RFC 7636 §4.3: code_challenge with code_challenge_method=S256."""
    assert parse_challenge(RFC_CHALLENGE, "S256") == RFC_CHALLENGE


@pytest.mark.parametrize(
    ("challenge", "method"),
    [
        pytest.param(None, "S256", id="missing-challenge"),
        pytest.param("", "S256", id="empty-challenge"),
        pytest.param(RFC_CHALLENGE, None, id="missing-method"),  # RFC 7636 default is plain: refused too
        pytest.param(RFC_CHALLENGE, "plain", id="plain"),
        pytest.param(RFC_CHALLENGE, "s256", id="method-lowercase"),
        pytest.param(RFC_VERIFIER, "plain", id="plain-with-verifier-as-challenge"),
        pytest.param(RFC_CHALLENGE[:-1], "S256", id="too-short"),
        pytest.param(RFC_CHALLENGE + "A", "S256", id="too-long"),
        pytest.param(RFC_CHALLENGE + "=", "S256", id="padded"),
        pytest.param(RFC_CHALLENGE[:-1] + "+", "S256", id="base64-not-base64url"),
        pytest.param(RFC_CHALLENGE[:-1] + ".", "S256", id="verifier-charset-not-base64url"),
        pytest.param(RFC_CHALLENGE + "\n", "S256", id="trailing-newline"),
    ],
)
def test_parse_challenge_refuses_missing_plain_and_malformed_challenges(
    challenge: str | None, method: str | None
) -> None:
    """MCP AUTHZ-2 (our choice, per OAuth 2.1 §4.1.1): a challenge is required and only S256 is accepted;
    an S256 challenge is exactly 43 base64url characters."""
    with pytest.raises(InvalidRequestError) as caught:
        parse_challenge(challenge, method)
    assert caught.value.error == "invalid_request"
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param(RFC_VERIFIER, id="rfc-vector"),
        pytest.param("a" * 43, id="shortest"),
        pytest.param("Z" * 128, id="longest"),
        pytest.param("AZaz09-._~" * 5, id="every-unreserved-class"),
    ],
)
def test_verify_accepts_a_verifier_that_hashes_to_the_challenge(verifier: str) -> None:
    """RFC 7636 §4.1 (43..128 unreserved characters) and §4.6 (S256 comparison)."""
    verify(verifier, s256(verifier))


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("a" * 42, id="42-chars"),
        pytest.param("a" * 129, id="129-chars"),
        pytest.param("a" * 42 + "+", id="plus"),
        pytest.param("a" * 42 + "/", id="slash"),
        pytest.param("a" * 42 + "=", id="padding"),
        pytest.param("a" * 42 + " ", id="space"),
        pytest.param("a" * 42 + "é", id="non-ascii"),
        pytest.param("a" * 43 + "\n", id="trailing-newline"),
    ],
)
def test_verify_refuses_short_long_and_bad_charset_verifiers(verifier: str | None) -> None:
    """RFC 7636 §4.1: code_verifier = 43*128unreserved; anything else is invalid_grant at the token endpoint,
    even when it hashes to the challenge."""
    challenge = own_hash(verifier) if verifier else RFC_CHALLENGE
    with pytest.raises(InvalidGrantError) as caught:
        verify(verifier, challenge)
    assert caught.value.error == "invalid_grant"


@pytest.mark.parametrize(
    ("verifier", "challenge"),
    [
        pytest.param(RFC_VERIFIER, RFC_CHALLENGE[:-1] + "5", id="last-char-differs"),
        pytest.param(RFC_VERIFIER[:-1] + "j", RFC_CHALLENGE, id="verifier-differs"),
        pytest.param(RFC_VERIFIER, RFC_VERIFIER, id="plain-comparison-refused"),
        pytest.param("b" * 43, s256("a" * 43), id="another-verifier"),
    ],
)
def test_verify_refuses_a_verifier_that_does_not_hash_to_the_challenge(verifier: str, challenge: str) -> None:
    """RFC 7636 §4.6: the server compares BASE64URL(SHA256(code_verifier)) with the stored challenge."""
    with pytest.raises(InvalidGrantError):
        verify(verifier, challenge)
