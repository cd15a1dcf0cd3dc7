"""Which keys may sign a DPoP proof (gateway.oauth.dpop): RSA of 2048 to 4096 bits with exponent 65537 (a huge
exponent costs some 30 times a normal verification, and anyone with a public client id can send one to /token)."""

from __future__ import annotations

import time
import warnings

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from gateway.oauth.dpop import verify_proof
from gateway.oauth.errors import InvalidDpopProofError

URL = "https://gw.example.com/token"


def proof_by(key: RSAKey) -> str:
    claims = {"jti": "j1", "htm": "POST", "htu": URL, "iat": int(time.time())}
    return jwt.encode({"alg": "RS256", "typ": "dpop+jwt", "jwk": key.as_dict(private=False)}, claims, key)


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_rsa_keys_of_usual_sizes_sign_proofs(bits):
    key = RSAKey.import_key(rsa.generate_private_key(65537, bits))
    assert verify_proof(proof_by(key), method="POST", url=URL, now=time.time(), window=300).jkt == key.thumbprint()


@pytest.mark.parametrize(("exponent", "bits"), [(3, 2048), (65537, 1024), (65537, 6144)])
def test_other_rsa_keys_are_refused(exponent, bits):
    with warnings.catch_warnings():  # (the client side: joserfc warns when it builds a small key)
        warnings.simplefilter("ignore")
        proof = proof_by(RSAKey.import_key(rsa.generate_private_key(exponent, bits)))
    with pytest.raises(InvalidDpopProofError, match="65537"):  # refused before the gateway builds the key
        verify_proof(proof, method="POST", url=URL, now=time.time(), window=300)
