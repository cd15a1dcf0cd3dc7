from __future__ import annotations

import httpx2
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import route
from tests.support.headless_oauth import MemoryStorage


async def test_smoke(start_gateway, upstream):
    gw = await start_gateway(
        [route("alpha", upstream.url)],
        clients=[{"client_id": "bot", "client_secret": "s3cret-s3cret-s3cret", "grant_types": ["client_credentials"]}],
    )
    issuer = str(gw.make_url("")).rstrip("/")
    provider = ClientCredentialsOAuthProvider(
        str(gw.make_url("/alpha/mcp")), MemoryStorage(), "bot", "s3cret-s3cret-s3cret", issuer=issuer
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(str(gw.make_url("/alpha/mcp")), http_client=http)) as client,
    ):
        result = await client.call_tool("echo_headers", {})
        print(result)
        assert "client:bot" in str(result)


async def test_smoke_pkjwt_and_idjag(start_gateway, upstream):
    import time
    import uuid

    from joserfc import jwt as jjwt
    from joserfc.jwk import ECKey, RSAKey
    from mcp.client.auth.extensions.client_credentials import PrivateKeyJWTOAuthProvider, SignedJWTParameters
    from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider

    key = RSAKey.generate_key(2048)
    pem = key.as_pem(private=True).decode()
    idp_key = ECKey.generate_key("P-256")
    gw = await start_gateway(
        [route("alpha", upstream.url)],
        clients=[
            {
                "client_id": "signer",
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": {"keys": [key.as_dict(private=False)]},
                "grant_types": ["client_credentials"],
            },
            {
                "client_id": "ent",
                "client_secret": "ent-secret-ent-secret",
                "token_endpoint_auth_method": "client_secret_post",
                "grant_types": ["urn:ietf:params:oauth:grant-type:jwt-bearer"],
            },
        ],
        enterprise={
            "issuers": [
                {
                    "issuer": "https://idp.example.com",
                    "provider": "corp",
                    "jwks": {"keys": [idp_key.as_dict(private=False)]},
                    "clients": ["ent"],
                    "trust_email": True,
                }
            ]
        },
    )
    issuer = str(gw.make_url("")).rstrip("/")
    mcp_url = str(gw.make_url("/alpha/mcp"))
    params = SignedJWTParameters(issuer="signer", subject="signer", signing_key=pem)
    provider = PrivateKeyJWTOAuthProvider(
        mcp_url, MemoryStorage(), "signer", params.create_assertion_provider(), issuer=issuer
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(mcp_url, http_client=http)) as client,
    ):
        result = await client.call_tool("echo_headers", {})
        assert "client:signer" in str(result)

    async def id_jag(audience: str, resource: str) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://idp.example.com",
            "sub": "u123",
            "aud": audience,
            "resource": resource,
            "client_id": "ent",
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 300,
            "email": "pat@corp.example",
            "scope": "alpha:read",
        }
        return jjwt.encode({"alg": "ES256", "typ": "oauth-id-jag+jwt", "kid": idp_key.thumbprint()}, claims, idp_key)

    provider2 = IdentityAssertionOAuthProvider(mcp_url, MemoryStorage(), "ent", "ent-secret-ent-secret", issuer, id_jag)
    async with (
        httpx2.AsyncClient(auth=provider2, timeout=30) as http,
        Client(streamable_http_client(mcp_url, http_client=http)) as client,
    ):
        result = await client.call_tool("echo_headers", {})
        assert "corp:u123" in str(result) and "pat@corp.example" in str(result)


async def test_smoke_dpop(start_gateway, upstream):
    import base64
    import hashlib
    import time
    import uuid

    from joserfc import jwt as jjwt
    from joserfc.jwk import ECKey

    gw = await start_gateway(
        [route("alpha", upstream.url, require_dpop=True)],
        clients=[{"client_id": "bot", "client_secret": "s3cret-s3cret-s3cret", "grant_types": ["client_credentials"]}],
    )
    key = ECKey.generate_key("P-256")
    base = str(gw.make_url("")).rstrip("/")

    def proof(method, url, token=None, body=None):
        claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
        if token:
            claims["ath"] = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
        if body:
            claims["content_digest"] = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
        return jjwt.encode({"alg": "ES256", "typ": "dpop+jwt", "jwk": key.as_dict(private=False)}, claims, key)

    async with httpx2.AsyncClient(timeout=30) as raw:
        r = await raw.post(
            f"{base}/token",
            data={"grant_type": "client_credentials", "resource": f"{base}/alpha/mcp"},
            auth=("bot", "s3cret-s3cret-s3cret"),
            headers={"DPoP": proof("POST", f"{base}/token")},
        )
        assert r.status_code == 200, r.text
        tok = r.json()
        assert tok["token_type"] == "DPoP"
    token = tok["access_token"]

    class DpopAuth(httpx2.Auth):
        requires_request_body = True

        def auth_flow(self, request):
            request.headers["Authorization"] = f"DPoP {token}"
            request.headers["DPoP"] = proof(request.method, str(request.url), token, request.content or None)
            yield request

    mcp_url = f"{base}/alpha/mcp"
    async with (
        httpx2.AsyncClient(auth=DpopAuth(), timeout=30) as http,
        Client(streamable_http_client(mcp_url, http_client=http)) as client,
    ):
        result = await client.call_tool("echo_headers", {})
        assert "client:bot" in str(result)
    async with httpx2.AsyncClient(timeout=30) as raw:
        r = await raw.post(
            mcp_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Authorization": f"Bearer {token}"},
        )
        print(r.status_code, r.headers.get("www-authenticate"), r.text)
        assert r.status_code == 401
