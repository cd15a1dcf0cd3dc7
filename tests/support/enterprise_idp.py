"""An enterprise identity provider on loopback for the Enterprise-Managed Authorization tests (SEP-990): its own
signing keys, an OpenID discovery document naming its own http://127.0.0.1:<port> issuer and `/jwks`, key
rotation, a count of every document fetched, and ID-JAGs minted with whatever claims and header a test needs
(signed by a published key, by a stray one, or forged: `alg: none`, HMAC with the public key as secret)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from gateway.oauth.grant_types import ID_JAG_TYP

DISCOVERY_PATH = "/.well-known/openid-configuration"
RFC8414_PATH = "/.well-known/oauth-authorization-server"
JWKS_PATH = "/jwks"
LIFETIME = 300  # seconds from iat to exp of a default ID-JAG
KeyKind = Literal["EC", "RSA"]


@dataclass(frozen=True)
class SigningKey:
    jwk: ECKey | RSAKey
    alg: str

    @property
    def kid(self) -> str:
        return str(self.jwk.kid)

    def public(self) -> dict[str, Any]:
        return {**self.jwk.as_dict(private=False), "use": "sig", "alg": self.alg}


def new_key(kind: KeyKind = "EC") -> SigningKey:
    """A fresh key with a random kid: P-256 for ES256, or RSA-2048 for RS256."""
    kid = {"kid": uuid.uuid4().hex}
    if kind == "EC":
        return SigningKey(ECKey.generate_key("P-256", parameters=kid), "ES256")
    return SigningKey(RSAKey.generate_key(2048, parameters=kid), "RS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())


def tampered(token: str, **claims: Any) -> str:
    """`token` with claims changed after signing: its signature no longer covers them."""
    header, body, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return f"{header}.{_b64(json.dumps({**decoded, **claims}).encode())}.{signature}"


@dataclass
class EnterpriseIdp:
    """The IdP's state: `published` is what /jwks serves, `signing` signs new ID-JAGs, `fetches` counts GETs by
    path. `clock` stamps iat/exp (the gateway's injected clock, so expiry is tested without sleeping). Its metadata
    is served at `metadata_path` only (OpenID discovery, or RFC 8414's well-known), with `metadata_overrides`."""

    url: str
    clock: Callable[[], float]
    signing: SigningKey
    published: list[SigningKey]
    client_id: str
    subject: str = "u123"
    fetches: Counter[str] = field(default_factory=Counter)
    metadata_path: str = DISCOVERY_PATH
    metadata_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def jwks_uri(self) -> str:
        return self.url + JWKS_PATH

    @property
    def jwks_fetches(self) -> int:
        return self.fetches[JWKS_PATH]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public() for k in self.published]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": sorted({k.alg for k in self.published}),
            **self.metadata_overrides,
        }

    def rotate(self, kind: KeyKind = "RSA", *, retire: bool = True) -> SigningKey:
        """Publish a new key and sign with it from now on; `retire` drops the older keys from the set."""
        key = new_key(kind)
        self.published = [key] if retire else [*self.published, key]
        self.signing = key
        return key

    def claims(self, audience: str, resource: str, /, **overrides: Any) -> dict[str, Any]:
        """An ID-JAG's claims (profile §5.1) for `client_id` at `audience`; an override of None leaves a claim out."""
        now = int(self.clock())
        claims = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": audience,
            "resource": resource,
            "client_id": self.client_id,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + LIFETIME,
            **overrides,
        }
        return {k: v for k, v in claims.items() if v is not None}

    def mint(
        self,
        audience: str,
        resource: str,
        /,
        *,
        key: SigningKey | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A signed ID-JAG (`typ: oauth-id-jag+jwt`, the key's `kid`); a header entry of None leaves it out."""
        key = key or self.signing
        fields = {"alg": key.alg, "typ": ID_JAG_TYP, "kid": key.kid, **(header or {})}
        fields = {k: v for k, v in fields.items() if v is not None}
        return jwt.encode(fields, self.claims(audience, resource, **claims), key.jwk)

    def forge(self, alg: Literal["none", "HS256"], audience: str, resource: str, /, **claims: Any) -> str:
        """An ID-JAG with a valid body but no real signature: `alg: none`, or HS256 keyed with the signing key's
        public PEM (the algorithm-confusion attack against verifiers that let the token choose the algorithm)."""
        header = {"alg": alg, "typ": ID_JAG_TYP, "kid": self.signing.kid}
        signing_input = _segments(header, self.claims(audience, resource, **claims))
        if alg == "none":
            return signing_input + "."
        secret = self.signing.jwk.as_pem(private=False)
        return signing_input + "." + _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())

    def assertion_provider(self, **claims: Any) -> Callable[[str, str], Awaitable[str]]:
        """The SDK's `assertion_provider` callback: a fresh ID-JAG for (audience, resource) on every call."""

        async def provide(audience: str, resource: str) -> str:
            return self.mint(audience, resource, **claims)

        return provide


@asynccontextmanager
async def enterprise_idp(
    *, client_id: str, clock: Callable[[], float] = time.time, kind: KeyKind = "EC"
) -> AsyncIterator[EnterpriseIdp]:
    """The IdP on 127.0.0.1 (a free port) serving its discovery document and JWK set."""
    state: list[EnterpriseIdp] = []

    async def metadata(request: web.Request) -> web.Response:
        state[0].fetches[request.path] += 1
        if request.path != state[0].metadata_path:
            return web.json_response({"error": "not_found"}, status=404)
        return web.json_response(state[0].discovery())

    async def jwks(request: web.Request) -> web.Response:
        state[0].fetches[request.path] += 1
        return web.json_response(state[0].jwks())

    app = web.Application()
    app.router.add_get(DISCOVERY_PATH, metadata)
    app.router.add_get(RFC8414_PATH, metadata)
    app.router.add_get(JWKS_PATH, jwks)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    key = new_key(kind)
    state.append(EnterpriseIdp(f"http://127.0.0.1:{server.port}", clock, key, [key], client_id))
    try:
        yield state[0]
    finally:
        await server.close()
