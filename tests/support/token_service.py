"""An RFC 8693 token service on loopback, standing in for Keycloak / Okta / an STS: it trusts the gateway's
identity assertions (verified against the gateway's `/.well-known/jwks.json`) and issues one token per exchange."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.processes import free_port

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TYPE = "urn:ietf:params:oauth:token-type:access_token"
CLIENT, SECRET = "gateway", "sts-secret:with/odd&chars"


@dataclass
class TokenService:
    url: str
    gateway_origin: str = ""
    refuse: set[str] = field(default_factory=set)  # subjects it refuses (400 invalid_request)
    delay: float = 0.0  # seconds before answering (concurrent requests pile up meanwhile)
    expires_in: int | None = 3600
    exchanges: list[dict[str, str]] = field(default_factory=list)  # the forms it accepted
    issued: list[str] = field(default_factory=list)
    answer: bytes | None = None  # answer this body (200, application/json) instead of a token response
    chunked: bool = False  # send `answer` chunked, in pieces written apart
    fail: tuple[int, str | None] | None = None  # answer this status and error code instead
    calls: int = 0  # token requests that passed client authentication
    userinfo_url: str | None = None  # also trust access tokens of this IdP (checked at its userinfo endpoint)

    async def token(self, request: web.Request) -> web.StreamResponse:
        form = dict(await request.post())
        expected = "Basic " + base64.b64encode(b"gateway:sts-secret%3Awith%2Fodd%26chars").decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        claims = await self._subject(form)
        if isinstance(claims, web.Response):
            return claims
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            status, error = self.fail
            return web.json_response({"error": error} if error else {}, status=status)
        if self.answer is not None and self.chunked:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for i in range(0, len(self.answer), 7):
                await response.write(self.answer[i : i + 7])
                await asyncio.sleep(0)
            await response.write_eof()
            return response  # type: ignore[return-value]
        if self.answer is not None:
            return web.Response(body=self.answer, content_type="application/json")
        if claims["sub"] in self.refuse:
            return web.json_response({"error": "invalid_request", "error_description": "not for you"}, status=400)
        self.exchanges.append({k: str(v) for k, v in form.items() if k != "subject_token"} | {"sub": claims["sub"]})
        token = f"sts.{claims['sub']}.{len(self.exchanges)}"
        self.issued.append(token)
        body: dict[str, object] = {"access_token": token, "issued_token_type": ACCESS_TYPE, "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return web.json_response(body)

    async def _subject(self, form: dict[str, object]) -> dict[str, object] | web.Response:
        """The subject token's claims: a gateway assertion (its JWKS) or an access token of the trusted IdP."""
        if form.get("grant_type") != GRANT_TYPE:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if form.get("subject_token_type") == ACCESS_TYPE and self.userinfo_url is not None:
            claims = await self._idp_claims(str(form["subject_token"]))
            return claims if claims is not None else web.json_response({"error": "invalid_grant"}, status=400)
        if form.get("subject_token_type") != JWT_TYPE:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{self.gateway_origin}/.well-known/jwks.json") as answer:
                keys = KeySet.import_key_set(await answer.json())
        claims = jwt.decode(str(form["subject_token"]), keys, algorithms=["ES256"]).claims
        if claims["aud"] != self.url or claims["iss"] != self.gateway_origin or claims["exp"] < time.time():
            return web.json_response({"error": "invalid_grant"}, status=400)
        return claims

    async def _idp_claims(self, token: str) -> dict[str, object] | None:
        assert self.userinfo_url is not None
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as http, http.get(self.userinfo_url, headers=headers) as answer:
            return await answer.json() if answer.status == 200 else None


@asynccontextmanager
async def token_service() -> AsyncIterator[TokenService]:
    port = free_port()
    service = TokenService(f"http://127.0.0.1:{port}/token")
    app = web.Application()
    app.router.add_post("/token", service.token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield service
    finally:
        await runner.cleanup()
