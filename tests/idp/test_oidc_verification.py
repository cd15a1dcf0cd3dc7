"""ID token verification through the real OidcProvider against a provider whose answers the test controls
(OIDC Core §3.1.3.7): bad signature, wrong audience, wrong nonce, expired, wrong issuer, key rotation, Entra's
tenant-templated issuer. The happy path against a real provider process lives in tests/e2e/test_federation.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from gateway.config import ProviderSettings
from gateway.idp.base import ProviderError
from gateway.idp.oidc import OidcProvider

CLIENT_ID = "mcp-gateway"
REDIRECT = "https://gw.example.com/login/corp/callback"


@dataclass
class Hostile:
    """Discovery, JWKS and a token endpoint that returns whatever id_token the test prepared."""

    issuer: str = ""
    discovery_issuer: str | None = None
    published: list[RSAKey] = field(default_factory=list)
    id_token: str = ""
    jwks_fetches: int = 0


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    state = Hostile()

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": state.discovery_issuer or state.issuer,
                "authorization_endpoint": f"{state.issuer}/authorize",
                "token_endpoint": f"{state.issuer}/token",
                "jwks_uri": f"{state.issuer}/jwks",
            }
        )

    async def jwks(request: web.Request) -> web.Response:
        state.jwks_fetches += 1
        return web.json_response(KeySet(state.published).as_dict(private=False))

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "at", "token_type": "Bearer", "id_token": state.id_token})

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/jwks", jwks)
    app.router.add_post("/token", token)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.issuer = f"http://127.0.0.1:{server.port}"
    yield state
    await server.close()


def key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def sign(signer: RSAKey, claims: dict[str, Any], kid: str | None = None) -> str:
    return jwt.encode({"alg": "RS256", "kid": kid or signer.kid}, claims, signer)


async def finish(hostile: Hostile, claims_for: Any) -> Any:
    """Start a sign-in (to learn the nonce), let the test build the id_token for it, and finish."""
    provider = OidcProvider(
        ProviderSettings(
            name="corp",
            type="oidc",
            issuer=hostile.issuer,
            client_id=CLIENT_ID,
            client_secret="s",
            use_userinfo=False,
            groups_claim="groups",
        )
    )
    try:
        start = await provider.start(REDIRECT)
        hostile.id_token = claims_for(start.nonce)
        return await provider.finish("code", start.nonce, start.code_verifier, REDIRECT, now=time.time())
    finally:
        await provider.close()


def claims(hostile: Hostile, sent_nonce: str, **override: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": hostile.issuer,
        "sub": "s-1",
        "aud": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "nonce": sent_nonce,
        "email": "a@example.com",
        "email_verified": True,
        "groups": ["platform"],
        **override,
    }


async def test_valid_id_token_yields_the_provider_identity(hostile):
    good = key("k1")
    hostile.published = [good]
    principal = await finish(hostile, lambda nonce: sign(good, claims(hostile, nonce)))
    assert principal.user_id == "corp:s-1" and principal.email == "a@example.com"
    assert principal.groups == ("platform",)


@pytest.mark.parametrize(
    "case, message",
    [
        ("bad-signature", "signature"),
        ("wrong-audience", "audience"),
        ("wrong-nonce", "nonce"),
        ("expired", "expired"),
        ("wrong-issuer", "issuer"),
        ("several-audiences-without-azp", "azp"),
    ],
)
async def test_untrustworthy_id_tokens_are_refused(hostile, case, message):
    good, forger = key("k1"), key("k1")  # the forger reuses the published kid
    hostile.published = [good]

    def build(nonce: str) -> str:
        if case == "bad-signature":
            return sign(forger, claims(hostile, nonce))
        override = {
            "wrong-audience": {"aud": "someone-else"},
            "wrong-nonce": {"nonce": "replayed-nonce"},
            "expired": {"exp": int(time.time()) - 3600},
            "wrong-issuer": {"iss": "https://evil.example"},
            "several-audiences-without-azp": {"aud": [CLIENT_ID, "other"]},
        }[case]
        return sign(good, claims(hostile, nonce, **override))

    with pytest.raises(ProviderError, match=message):
        await finish(hostile, build)


async def test_rotated_signing_key_is_fetched_once(hostile):
    """Key rotation: a token signed with a kid we do not hold triggers one JWKS refetch."""
    old, new = key("old"), key("new")
    hostile.published = [old]
    provider = OidcProvider(
        ProviderSettings(name="corp", issuer=hostile.issuer, client_id=CLIENT_ID, client_secret="s", use_userinfo=False)
    )
    try:
        start = await provider.start(REDIRECT)
        hostile.id_token = sign(old, claims(hostile, start.nonce))
        await provider.finish("c", start.nonce, start.code_verifier, REDIRECT, now=time.time())
        hostile.published = [new]  # the provider rotates
        start = await provider.start(REDIRECT)
        hostile.id_token = sign(new, claims(hostile, start.nonce))
        principal = await provider.finish("c", start.nonce, start.code_verifier, REDIRECT, now=time.time())
        assert principal.user_id == "corp:s-1"
        assert hostile.jwks_fetches == 2
    finally:
        await provider.close()


async def test_tenant_templated_issuer_is_resolved_from_the_tid_claim(hostile):
    """Entra ID multi-tenant discovery publishes issuer https://login.microsoftonline.com/{tenantid}/v2.0."""
    good = key("k1")
    hostile.published = [good]
    hostile.discovery_issuer = hostile.issuer + "/{tenantid}/v2.0"
    principal = await finish(
        hostile,
        lambda nonce: sign(good, claims(hostile, nonce, iss=f"{hostile.issuer}/tenant-42/v2.0", tid="tenant-42")),
    )
    assert principal.user_id == "corp:s-1"
    with pytest.raises(ProviderError, match="issuer"):
        await finish(
            hostile,
            lambda nonce: sign(good, claims(hostile, nonce, iss=f"{hostile.issuer}/tenant-42/v2.0", tid="tenant-99")),
        )


async def test_unverified_email_is_dropped(hostile):
    good = key("k1")
    hostile.published = [good]
    principal = await finish(hostile, lambda nonce: sign(good, claims(hostile, nonce, email_verified=False)))
    assert principal.email is None
