"""Machine clients at /token: the client_credentials grant (OAuth 2.1 §4.2; MCP extension
io.modelcontextprotocol/oauth-client-credentials, SEP-1046) with a client secret (RFC 6749 §2.3.1) or a signed
assertion (`private_key_jwt`, RFC 7523 §2.2 and §3), end to end through the real gateway, a real store and the real
MCP SDK clients, plus every refusal with its RFC 6749 §5.2 error and status, the configuration rules for such
clients, `clients add` from the CLI and revocation (RFC 7009)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.streamable_http import streamable_http_client

from gateway.app_state import SETTINGS_KEY
from gateway.config import ConfigError, Settings
from gateway.oauth.grant_types import CLIENT_ASSERTION_JWT
from gateway.oauth.token_values import hash_token
from gateway.store.records import ClientRecord
from tests.conftest import route, write_config
from tests.support.headless_oauth import MemoryStorage
from tests.support.oauth_client import REDIRECT, register
from tests.support.processes import REPO
from tests.support.token_flow import Reply, basic, mcp_status, post_form

SECRET = "bot-secret-bot-secret-bot-secret"
ROUTE_SCOPES = ["alpha:read", "alpha:write"]
TIMES = ("iat", "exp", "nbf")  # claims given as seconds relative to now in the cases below


# -- keys and assertions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """A client's key pair: the public JWK set it publishes, the PEM the SDK signs with, joserfc signing."""

    key: RSAKey | ECKey
    alg: str

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    @property
    def pem(self) -> str:
        return self.key.as_pem(private=True).decode()

    def public(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public()]}

    def sign(self, claims: dict[str, Any], *, kid: str | None = "own") -> str:
        """A compact JWS; `kid` "own" names this key, None leaves it out (as PyJWT in the SDK does)."""
        header: dict[str, Any] = {"alg": self.alg, "typ": "JWT"}
        if kid is not None:
            header["kid"] = self.kid if kid == "own" else kid
        return jwt.encode(header, claims, self.key)


def rsa_signer(kid: str = "rsa-1") -> Signer:
    return Signer(RSAKey.generate_key(2048, parameters={"kid": kid}), "RS256")


def ec_signer(kid: str = "ec-1") -> Signer:
    return Signer(ECKey.generate_key("P-256", parameters={"kid": kid}), "ES256")


def claims_for(client_id: str, audience: str, now: float, **changes: Any) -> dict[str, Any]:
    """RFC 7523 §3 client assertion claims; a change to None drops the claim, iat/exp/nbf are relative to now."""
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": 0,
        "exp": 300,
        "jti": str(uuid.uuid4()),
    }
    claims.update(changes)
    return {k: int(now + v) if k in TIMES else v for k, v in claims.items() if v is not None}  # ints, as libraries


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes] | None = None) -> str:
    """A JWS built by hand: `sign` of the signing input, or no signature at all (alg none)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode())) if sign else ''}"


def joserfc_assertions(signer: Signer, client_id: str) -> Callable[[str], Awaitable[str]]:
    """An SDK assertion_provider that signs with joserfc and names its key (`kid`), for key rotation."""

    async def provide(audience: str) -> str:
        return signer.sign(claims_for(client_id, audience, time.time()))

    return provide


# -- clients and the gateway -----------------------------------------------------------------------------------


def secret_client(client_id: str = "bot", **extra: Any) -> dict[str, Any]:
    return {"client_id": client_id, "client_secret": SECRET, "grant_types": ["client_credentials"], **extra}


def key_client(client_id: str = "signer", **extra: Any) -> dict[str, Any]:
    """A private_key_jwt machine client; pass `jwks` or `jwks_uri`."""
    return {
        "client_id": client_id,
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"],
        **extra,
    }


@dataclass
class Machine:
    """A running gateway with one route `alpha` (or the given routes) and a raw HTTP client for it."""

    server: TestServer
    http: TestClient
    now: float

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def resource(self) -> str:
        return f"{self.base}/alpha/mcp"

    async def token(self, *, headers: dict[str, str] | None = None, **form: str) -> Reply:
        """A client_credentials request for `alpha` unless the form says otherwise."""
        fields = {"grant_type": "client_credentials", "resource": self.resource, **form}
        return await post_form(self.http, "/token", {k: v for k, v in fields.items() if v is not None}, headers=headers)

    async def with_secret(self, client_id: str = "bot", secret: str = SECRET, **form: str) -> Reply:
        return await self.token(headers=basic(client_id, secret), **form)

    async def with_assertion(self, assertion: str, **form: str) -> Reply:
        return await self.token(client_assertion_type=CLIENT_ASSERTION_JWT, client_assertion=assertion, **form)

    def claims(self, client_id: str = "signer", **changes: Any) -> dict[str, Any]:
        return claims_for(client_id, self.base, self.now, **changes)

    async def mcp_status(self, access_token: str) -> int:
        return await mcp_status(self.http, "/alpha/mcp", access_token)


MachineFactory = Callable[..., Awaitable[Machine]]


@pytest.fixture
def machine(start_gateway, upstream, aiohttp_client, clock) -> MachineFactory:
    """`await machine(clients, allow=..., scopes=..., routes=...)`: a gateway with those `clients[]`."""

    async def start(clients: list[dict[str, Any]], *, routes: list[dict[str, Any]] | None = None, **alpha: Any):
        alpha.setdefault("scopes", ROUTE_SCOPES)
        server = await start_gateway(routes or [route("alpha", upstream.url, **alpha)], clients=clients)
        return Machine(server, await aiohttp_client(server), clock.now)

    return start


def assert_refused(reply: Reply, status: int, error: str) -> None:
    """An RFC 6749 §5.2 error answer: its status, its `error`, JSON, never cached."""
    assert (reply.status, reply.error) == (status, error), reply.body
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["Cache-Control"] == "no-store"


def assert_machine_token(reply: Reply, scope: str = "alpha:read alpha:write") -> str:
    """A client_credentials answer (OAuth 2.1 §4.2.3, §3.2.3): a Bearer access token, no refresh token."""
    assert reply.status == 200, reply.body
    assert reply.body["token_type"] == "Bearer"
    assert "refresh_token" not in reply.body
    assert reply.body["scope"] == scope
    assert isinstance(reply.body["expires_in"], int) and reply.body["expires_in"] > 0
    assert reply.headers["Cache-Control"] == "no-store"
    return str(reply.body["access_token"])


# -- the SDK's providers end to end ----------------------------------------------------------------------------


@dataclass
class SdkRun:
    headers: dict[str, str]  # what the upstream MCP server received
    token_replies: list[tuple[int, dict[str, Any]]]  # every /token answer the SDK got, as sent


async def call_through_sdk(mcp_url: str, provider: OAuthClientProvider, *, mode: str = "auto") -> SdkRun:
    """The SDK client, unmodified: discovery, its own token request, then `echo_headers` through the gateway."""
    replies: list[tuple[int, dict[str, Any]]] = []

    async def record(response: httpx2.Response) -> None:
        if response.request.url.path == "/token":
            await response.aread()
            replies.append((response.status_code, response.json()))

    http = httpx2.AsyncClient(auth=provider, timeout=30, event_hooks={"response": [record]})
    async with http, Client(streamable_http_client(mcp_url, http_client=http), mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        result = await client.call_tool("echo_headers", {})
    return SdkRun(json.loads(result.content[0].text), replies)


def assert_machine_identity(run: SdkRun, client_id: str, groups: str | None = None) -> None:
    """The upstream sees the client as its own principal (`client:<id>`), never the gateway's token."""
    assert run.headers["x-forwarded-user"] == f"client:{client_id}"
    assert run.headers["x-mcp-client-id"] == client_id
    assert run.headers.get("x-forwarded-groups") == groups
    assert "authorization" not in run.headers
    [(status, body)] = run.token_replies  # one token request, answered once
    assert status == 200, body
    assert body["token_type"] == "Bearer" and "refresh_token" not in body


async def test_metadata_announces_client_credentials_and_signed_client_authentication(machine):
    """SEP-1046 (oauth-client-credentials) Authorization Server Metadata; RFC 8414 §2: the grant, the auth methods
    private_key_jwt and client_secret_basic, and only asymmetric signing algorithms (never none nor HMAC)."""
    gw = await machine([secret_client()])
    response = await gw.http.get("/.well-known/oauth-authorization-server")
    metadata = await response.json()
    assert "client_credentials" in metadata["grant_types_supported"]
    assert {"private_key_jwt", "client_secret_basic", "client_secret_post"} <= set(
        metadata["token_endpoint_auth_methods_supported"]
    )
    algorithms = metadata["token_endpoint_auth_signing_alg_values_supported"]
    assert {"RS256", "ES256"} <= set(algorithms)
    assert not [a for a in algorithms if a == "none" or a.startswith("HS")]


@pytest.mark.parametrize(
    ("method", "mode"),
    [
        pytest.param("client_secret_basic", "auto", id="basic-auto"),
        pytest.param("client_secret_post", "auto", id="post-auto"),
        pytest.param("client_secret_basic", "legacy", id="basic-legacy-2025-11-25"),
    ],
)
async def test_sdk_client_credentials_provider_reaches_a_tool_as_the_client(machine, method, mode):
    """SEP-1046 §client secrets and OAuth 2.1 §4.2: the SDK's ClientCredentialsOAuthProvider, unmodified, with
    client_secret_basic or client_secret_post (RFC 6749 §2.3.1), in both protocol generations; the token is the
    client's own (`client:<id>` with its configured groups), a Bearer token without a refresh token (§4.2.3)."""
    gw = await machine([secret_client(token_endpoint_auth_method=method, groups=["ops", "sre"])])
    provider = ClientCredentialsOAuthProvider(
        gw.resource, MemoryStorage(), "bot", SECRET, token_endpoint_auth_method=method, issuer=gw.base
    )
    run = await call_through_sdk(gw.resource, provider, mode=mode)
    assert_machine_identity(run, "bot", groups="ops,sre")
    assert run.headers["x-mcp-scopes"] == "alpha:read alpha:write"


async def test_token_response_is_bearer_without_refresh_token(machine):
    """OAuth 2.1 §4.2.3 / RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included"; §5.1: Bearer, no-store; with
    no `scope` asked, every scope the route offers (SEP-1046 leaves the default to the server)."""
    gw = await machine([secret_client()])
    token = assert_machine_token(await gw.with_secret())
    assert await gw.mcp_status(token) == 200


@pytest.mark.parametrize("signer_of", [rsa_signer, ec_signer], ids=["RS256", "ES256"])
async def test_sdk_private_key_jwt_provider_with_an_inline_jwks(machine, signer_of):
    """SEP-1046 §JWT client authentication (RECOMMENDED) and RFC 7523 §2.2: PrivateKeyJWTOAuthProvider with the
    SDK's own SignedJWTParameters (PyJWT, no `kid`), RSA and EC keys; the client's public keys inline in YAML."""
    signer = signer_of()
    gw = await machine([key_client(jwks=signer.jwks(), groups=["robots"])])
    params = SignedJWTParameters(
        issuer="signer", subject="signer", signing_key=signer.pem, signing_algorithm=signer.alg
    )
    provider = PrivateKeyJWTOAuthProvider(
        gw.resource, MemoryStorage(), "signer", params.create_assertion_provider(), issuer=gw.base
    )
    run = await call_through_sdk(gw.resource, provider)
    assert_machine_identity(run, "signer", groups="robots")


class JwksServer:
    """A client's key set published on loopback (http is allowed there); counts how often the gateway fetches."""

    def __init__(self, *signers: Signer) -> None:
        self.signers = list(signers)
        self.fetches = 0
        self.app = web.Application()
        self.app.router.add_get("/jwks.json", self._serve)

    async def _serve(self, request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response({"keys": [s.public() for s in self.signers]})


@pytest.fixture
def jwks_server(aiohttp_server) -> Callable[..., Awaitable[tuple[JwksServer, str]]]:
    async def start(*signers: Signer) -> tuple[JwksServer, str]:
        published = JwksServer(*signers)
        server = await aiohttp_server(published.app, host="127.0.0.1")
        return published, str(server.make_url("/jwks.json"))

    return start


async def test_sdk_private_key_jwt_provider_with_a_jwks_uri(machine, jwks_server):
    """RFC 7591 §2 `jwks_uri` and RFC 7523 §3: the key set is fetched from the client's URL (http only on
    loopback), once, and cached."""
    signer = ec_signer()
    published, url = await jwks_server(signer)
    gw = await machine([key_client(jwks_uri=url)])
    for _ in range(2):
        params = SignedJWTParameters(
            issuer="signer", subject="signer", signing_key=signer.pem, signing_algorithm=signer.alg
        )
        provider = PrivateKeyJWTOAuthProvider(
            gw.resource, MemoryStorage(), "signer", params.create_assertion_provider(), issuer=gw.base
        )
        assert_machine_identity(await call_through_sdk(gw.resource, provider), "signer")
    assert published.fetches == 1


async def test_key_rotation_refetches_the_jwks_uri_for_an_unknown_kid(machine, jwks_server):
    """RFC 7517 §4.5 `kid` and RFC 7523 §3: a client rotates to a key it has just started publishing; the assertion
    names it, the gateway refetches the set and accepts it. A forged `kid` right after that does not make the
    gateway fetch again (at most one forced refetch per 30 s) and is refused (RFC 6749 §5.2 invalid_client)."""
    old, new = rsa_signer("2025-key"), ec_signer("2026-key")
    published, url = await jwks_server(old)
    gw = await machine([key_client(jwks_uri=url)])

    async def tool_call_signed_by(signer: Signer) -> SdkRun:
        provider = PrivateKeyJWTOAuthProvider(
            gw.resource, MemoryStorage(), "signer", joserfc_assertions(signer, "signer"), issuer=gw.base
        )
        return await call_through_sdk(gw.resource, provider)

    assert_machine_identity(await tool_call_signed_by(old), "signer")
    assert published.fetches == 1
    published.signers.append(new)
    assert_machine_identity(await tool_call_signed_by(new), "signer")
    assert published.fetches == 2
    assert_refused(await gw.with_assertion(new.sign(gw.claims(), kid="no-such-key")), 401, "invalid_client")
    assert published.fetches == 2


# -- `clients add` -------------------------------------------------------------------------------------------


async def cli(config: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """`mcp-auth-gateway … -c config` as a subprocess (the event loop keeps serving meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        "-c",
        str(config),
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    return int(process.returncode or 0), out.decode(), err.decode()


async def test_cli_adds_machine_clients_the_token_endpoint_accepts(machine, store, tmp_path):
    """SEP-1046 (pre-registered confidential clients): `clients add --grant client_credentials` with a fixed secret
    (client_secret_basic), a generated one (client_secret_post, printed once) and a key set (private_key_jwt,
    --jwks-file); the running gateway, on the same store, then issues them tokens with their groups and scopes."""
    gw = await machine([])
    config = write_config(tmp_path / "gateway.yaml", gw.server.app[SETTINGS_KEY])
    signer = ec_signer()
    (tmp_path / "jwks.json").write_text(json.dumps(signer.jwks()))
    common = ("clients", "add", "--grant", "client_credentials")
    added = await asyncio.gather(
        cli(config, *common, "--client-id", "fixed", "--auth-method", "client_secret_basic", "--group", "ops",
            "--scope", "alpha:read", "--secret-stdin", stdin=SECRET + "\n"),
        cli(config, *common, "--client-id", "generated", "--auth-method", "client_secret_post"),
        cli(config, *common, "--client-id", "keyed", "--auth-method", "private_key_jwt",
            "--jwks-file", str(tmp_path / "jwks.json")),
    )  # fmt: skip
    assert [code for code, _, _ in added] == [0, 0, 0], added
    assert SECRET not in added[0][1]  # a secret read from stdin is never echoed
    [generated_secret] = [line.split()[1] for line in added[1][1].splitlines() if line.startswith("client_secret:")]

    fixed = await gw.with_secret("fixed")
    token = assert_machine_token(fixed, scope="alpha:read")
    assert await gw.mcp_status(token) == 200
    issued = await store.load_access_token(hash_token(token))
    assert issued is not None and (issued.user_id, issued.groups) == ("client:fixed", ("ops",))
    post = await gw.token(client_id="generated", client_secret=generated_secret)
    assert_machine_token(post)
    keyed = await gw.with_assertion(signer.sign(gw.claims("keyed")))
    assert_machine_token(keyed)
    assert_refused(await gw.with_secret("generated", generated_secret), 401, "invalid_client")  # not its method


async def test_cli_refuses_a_private_key_jwt_client_without_keys(machine, tmp_path):
    """RFC 7591 §2 (`jwks` / `jwks_uri`): the CLI applies the `clients[]` rules and stores nothing."""
    gw = await machine([])
    config = write_config(tmp_path / "gateway.yaml", gw.server.app[SETTINGS_KEY])
    code, _, err = await cli(
        config, "clients", "add", "--client-id", "nokeys", "--auth-method", "private_key_jwt", "--grant",
        "client_credentials",
    )  # fmt: skip
    assert code != 0
    assert "private_key_jwt needs exactly one of jwks and jwks_uri" in err
    assert_refused(await gw.token(client_id="nokeys"), 401, "invalid_client")


# -- refusals: client secrets, grants, rules, scopes, resources ------------------------------------------------


async def test_wrong_secret_is_invalid_client(machine):
    """RFC 6749 §5.2 invalid_client (401), with `WWW-Authenticate` since the client used the Authorization
    header; the same answer for an unknown client (no hint which one exists)."""
    gw = await machine([secret_client()])
    for reply in (await gw.with_secret(secret="wrong-" + SECRET), await gw.with_secret("nobody")):
        assert_refused(reply, 401, "invalid_client")
        assert reply.headers["WWW-Authenticate"].lower().startswith("basic")
    assert_refused(await gw.token(client_id="bot", client_secret="wrong-" + SECRET), 401, "invalid_client")


async def test_public_clients_may_not_use_client_credentials(machine, store):
    """OAuth 2.1 §4.2: "The client credentials grant type MUST only be used by confidential clients"; RFC 6749
    §5.2 unauthorized_client: a public client (PKCE only), and a stored public record that claims the grant."""
    gw = await machine([{"client_id": "pub", "redirect_uris": [REDIRECT]}])
    assert_refused(await gw.token(client_id="pub"), 400, "unauthorized_client")
    record = ClientRecord(client_id="pub-machine", kind="static", redirect_uris=(), grant_types=("client_credentials",))
    await store.save_client(record, None)
    assert_refused(await gw.token(client_id="pub-machine"), 400, "unauthorized_client")


async def test_a_dcr_client_never_gets_client_credentials(machine):
    """SEP-1046 (pre-registered clients) and RFC 7591 §3.2.1: /register does not grant client_credentials, even
    to a confidential client asking for it, so /token answers unauthorized_client (RFC 6749 §5.2)."""
    gw = await machine([])
    registered = await register(
        gw.http, token_endpoint_auth_method="client_secret_basic", grant_types=["client_credentials"]
    )
    assert "client_credentials" not in registered["grant_types"]
    reply = await gw.with_secret(registered["client_id"], registered["client_secret"])
    assert_refused(reply, 400, "unauthorized_client")


async def test_a_client_without_the_grant_is_unauthorized_client(machine):
    """RFC 6749 §5.2 unauthorized_client: "not authorized to use this authorization grant type" — a confidential
    client registered for authorization_code only."""
    gw = await machine([{"client_id": "web", "client_secret": SECRET, "redirect_uris": [REDIRECT]}])
    assert_refused(await gw.with_secret("web"), 400, "unauthorized_client")


@pytest.mark.parametrize(
    ("allow", "admitted"),
    [
        pytest.param({"users": ["local:alice"]}, False, id="users-without-the-client"),
        pytest.param({"groups": ["client:other"]}, False, id="another-client-group"),
        pytest.param({"providers": ["local"]}, False, id="local-accounts-only"),
        pytest.param({"users": ["client:bot"]}, True, id="users-client:bot"),
        pytest.param({"groups": ["client:ops"]}, True, id="groups-client:ops"),
        pytest.param({"providers": ["client"]}, True, id="providers-client"),
    ],
)
async def test_route_access_rules_apply_to_the_client_principal(machine, allow, admitted):
    """SEP-1046 leaves authorization to the server; here the route's `allow` rules see the client as
    `client:<id>`, its groups as `client:<group>`, its provider as `client`. Not admitted: RFC 6749 §5.2
    unauthorized_client (400); admitted: a token that also works on the route."""
    gw = await machine([secret_client(groups=["ops"])], allow=allow)
    reply = await gw.with_secret()
    if not admitted:
        assert_refused(reply, 400, "unauthorized_client")
        return
    assert await gw.mcp_status(assert_machine_token(reply)) == 200


@pytest.mark.parametrize(
    ("client_scopes", "asked", "granted"),
    [
        pytest.param(["alpha:read"], None, "alpha:read", id="default-is-the-client's"),
        pytest.param(["alpha:read"], "alpha:read", "alpha:read", id="asked-within"),
        pytest.param(None, None, "alpha:read alpha:write", id="no-limit-default-all-of-the-route's"),
        pytest.param(None, "alpha:write", "alpha:write", id="no-limit-asked-one"),
        pytest.param(["alpha:read"], "claudeai", "alpha:read", id="unknown-scope-ignored"),
        pytest.param(["alpha:read"], "alpha:write", None, id="beyond-the-client's"),
        pytest.param(["alpha:read"], "alpha:read alpha:write", None, id="partly-beyond"),
    ],
)
async def test_scopes_are_limited_to_the_clients_scopes(machine, client_scopes, asked, granted):
    """OAuth 2.1 §4.2.2 / RFC 6749 §3.3 and §5.2 invalid_scope: the scopes asked, within the route's and the
    client's configured `scopes`; without `scope`, all of those."""
    extra = {} if client_scopes is None else {"scopes": client_scopes}
    gw = await machine([secret_client(**extra)])
    reply = await gw.with_secret(scope=asked)
    if granted is None:
        assert_refused(reply, 400, "invalid_scope")
    else:
        assert_machine_token(reply, scope=granted)


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param("/nowhere/mcp", id="unknown-path"),
        pytest.param("https://elsewhere.example/alpha/mcp", id="another-origin"),
        pytest.param(None, id="none-with-two-routes"),
    ],
)
async def test_the_resource_must_name_one_route(machine, upstream, resource):
    """RFC 8707 §2 invalid_target: the token is bound to exactly one MCP server, named by `resource`."""
    gw = await machine([secret_client()], routes=[route("alpha", upstream.url), route("beta", upstream.url)])
    form_resource = None if resource is None else resource if resource.startswith("http") else gw.base + resource
    reply = await gw.token(headers=basic("bot", SECRET), resource=form_resource)
    assert_refused(reply, 400, "invalid_target")


# -- refusals: private_key_jwt -----------------------------------------------------------------------------------


@pytest.fixture
async def signed(machine) -> tuple[Machine, Signer]:
    """A gateway with `signer` (private_key_jwt, inline RSA key) and `bot` (client secret)."""
    signer = rsa_signer()
    return await machine([key_client(jwks=signer.jwks()), secret_client()]), signer


def with_base(value: Any, base: str) -> Any:
    """`{base}` in a claim value (or a list of them) as the gateway's issuer URL."""
    if isinstance(value, list):
        return [with_base(v, base) for v in value]
    return value.replace("{base}", base) if isinstance(value, str) else value


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="as-the-sdk-signs"),
        pytest.param({"aud": "{base}/token"}, id="aud-token-endpoint"),
        pytest.param({"aud": ["https://elsewhere.example", "{base}"]}, id="aud-array-naming-us"),
        pytest.param({"exp": 600}, id="lifetime-600"),
        pytest.param({"iat": None, "exp": 120}, id="no-iat"),
        pytest.param({"nbf": 0}, id="nbf-now"),
    ],
)
async def test_a_valid_client_assertion_is_accepted(signed, changes):
    """RFC 7523 §3: iss = sub = client_id, aud the authorization server (its issuer, RFC 7523bis, or its token
    endpoint URL), exp, a jti; the client identified by `sub` when the form has no client_id (§2.2)."""
    gw, signer = signed
    changes = {k: with_base(v, gw.base) for k, v in changes.items()}
    assert_machine_token(await gw.with_assertion(signer.sign(gw.claims(**changes))))


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"aud": "https://elsewhere.example"}, id="wrong-aud"),
        pytest.param({"aud": None}, id="no-aud"),
        pytest.param({"iat": -500, "exp": -100}, id="expired"),
        pytest.param({"exp": None}, id="no-exp"),
        pytest.param({"exp": 601}, id="lifetime-over-600"),
        pytest.param({"iat": -3600, "exp": 3600}, id="long-lived-though-valid-now"),
        pytest.param({"iat": 600, "exp": 900}, id="issued-in-the-future"),
        pytest.param({"nbf": 600, "exp": 900}, id="not-yet-valid"),
        pytest.param({"jti": None}, id="no-jti"),
        pytest.param({"jti": ""}, id="empty-jti"),
        pytest.param({"iss": "bot"}, id="iss-not-sub"),
        pytest.param({"iss": "someone"}, id="iss-unknown"),
    ],
)
async def test_client_assertion_claims_are_checked(signed, changes):
    """RFC 7523 §3 (iss, sub, aud, exp, nbf, iat, jti) and §3.2: a failed client assertion is invalid_client (RFC
    6749 §5.2, 401); assertions live at most 600 s here (RFC 7523 §3 item 4 lets the server limit it)."""
    gw, signer = signed
    assert_refused(await gw.with_assertion(signer.sign(gw.claims(**changes))), 401, "invalid_client")


async def test_a_client_assertion_names_the_client_that_sends_it(signed):
    """RFC 7523 §3 items 2 and 1: `sub` (and `iss`) must be the client_id the form names, and a `sub` naming
    another client (here a secret client) does not authenticate as it."""
    gw, signer = signed
    reply = await gw.with_assertion(signer.sign(gw.claims()), client_id="bot")
    assert_refused(reply, 401, "invalid_client")
    assert_refused(await gw.with_assertion(signer.sign(gw.claims("bot"))), 401, "invalid_client")
    assert_refused(await gw.with_assertion(signer.sign(gw.claims("nobody"))), 401, "invalid_client")
    reply = await gw.with_assertion(signer.sign(gw.claims("bot")), client_id="signer")  # its key, another's name
    assert_refused(reply, 401, "invalid_client")
    assert_machine_token(await gw.with_assertion(signer.sign(gw.claims()), client_id="signer"))


async def test_a_replayed_client_assertion_is_refused(signed):
    """RFC 7523 §3 item 7: "The authorization server MAY ensure that JWTs are not replayed by maintaining the
    set of used jti values" — the second use of an assertion is invalid_client (401)."""
    gw, signer = signed
    assertion = signer.sign(gw.claims())
    assert_machine_token(await gw.with_assertion(assertion))
    assert_refused(await gw.with_assertion(assertion), 401, "invalid_client")


def hs256_with(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda gw, signer: rsa_signer("intruder").sign(gw.claims(), kid=None), id="unknown-key-no-kid"),
        pytest.param(lambda gw, signer: rsa_signer("intruder").sign(gw.claims()), id="unknown-kid"),
        pytest.param(lambda gw, signer: rsa_signer(signer.kid).sign(gw.claims()), id="another-key-with-its-kid"),
        pytest.param(lambda gw, signer: forged({"alg": "none", "typ": "JWT"}, gw.claims()), id="alg-none"),
        pytest.param(
            lambda gw, signer: forged(
                {"alg": "HS256", "kid": signer.kid}, gw.claims(), hs256_with(signer.pem.encode())
            ),
            id="HS256-keyed-with-its-pem",
        ),
        pytest.param(
            lambda gw, signer: forged({"alg": "HS256"}, gw.claims(), hs256_with(json.dumps(signer.public()).encode())),
            id="HS256-keyed-with-its-jwk",
        ),
        pytest.param(lambda gw, signer: signer.sign(gw.claims())[:-4] + "AAAA", id="tampered-signature"),
        pytest.param(lambda gw, signer: "not.a.jwt", id="not-a-jws"),
    ],
)
async def test_a_client_assertion_must_be_signed_by_a_published_key(signed, forge):
    """RFC 7523 §3 item 9 (digitally signed, verified against the client's key) and RFC 8725 §3.1/§3.2: no `none`,
    no HMAC with a public key as the secret; any such assertion is invalid_client (RFC 6749 §5.2, 401)."""
    gw, signer = signed
    assert_refused(await gw.with_assertion(forge(gw, signer)), 401, "invalid_client")


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        pytest.param("wrong-assertion-type", 400, "invalid_request", id="wrong-assertion-type"),
        pytest.param("assertion-without-type", 400, "invalid_request", id="assertion-without-type"),
        pytest.param("basic-and-assertion", 400, "invalid_request", id="secret-and-assertion"),
        pytest.param("post-secret-and-assertion", 400, "invalid_request", id="form-secret-and-assertion"),
        pytest.param("key-client-with-basic-secret", 401, "invalid_client", id="key-client-basic-secret"),
        pytest.param("key-client-with-post-secret", 401, "invalid_client", id="key-client-post-secret"),
        pytest.param("key-client-with-nothing", 401, "invalid_client", id="key-client-id-only"),
        pytest.param("secret-client-with-assertion", 401, "invalid_client", id="secret-client-assertion"),
    ],
)
async def test_client_authentication_methods_are_not_mixed(signed, kind, status, error):
    """RFC 7523 §2.2 (client_assertion_type is the jwt-bearer URN; anything else invalid_request), RFC 6749 §2.3
    ("MUST NOT use more than one authentication method in each request": invalid_request) and RFC 7591 §2
    `token_endpoint_auth_method`: a client authenticates only the way it registered (invalid_client, 401)."""
    gw, signer = signed
    assertion = signer.sign(gw.claims())
    requests: dict[str, Callable[[], Awaitable[Reply]]] = {
        "wrong-assertion-type": lambda: gw.token(
            client_assertion_type="urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            client_assertion=assertion,
        ),
        "assertion-without-type": lambda: gw.token(client_assertion=assertion),
        "basic-and-assertion": lambda: gw.token(
            headers=basic("bot", SECRET), client_assertion_type=CLIENT_ASSERTION_JWT, client_assertion=assertion
        ),
        "post-secret-and-assertion": lambda: gw.with_assertion(assertion, client_id="signer", client_secret=SECRET),
        "key-client-with-basic-secret": lambda: gw.with_secret("signer", SECRET),
        "key-client-with-post-secret": lambda: gw.token(client_id="signer", client_secret=SECRET),
        "key-client-with-nothing": lambda: gw.token(client_id="signer"),
        "secret-client-with-assertion": lambda: gw.with_assertion(signer.sign(gw.claims("bot"))),
    }
    assert_refused(await requests[kind](), status, error)


# -- configuration -------------------------------------------------------------------------------------------


def settings_with(*clients: dict[str, Any]) -> Settings:
    return Settings(
        public_url="https://gw.example.com",
        routes=[route("alpha", "http://127.0.0.1:9/mcp")],
        store={"url": "redis://127.0.0.1:6379/0"},
        clients=list(clients),
    )


_CONFIG_KEY = ECKey.generate_key("P-256")
PUBLIC_JWK = dict(_CONFIG_KEY.as_dict(private=False))
PRIVATE_JWK = dict(_CONFIG_KEY.as_dict(private=True))  # with "d"


@pytest.mark.parametrize(
    ("client", "problem"),
    [
        pytest.param(
            key_client(),
            "clients[0]: private_key_jwt needs exactly one of jwks and jwks_uri",
            id="private_key_jwt-without-keys",
        ),
        pytest.param(
            key_client(jwks={"keys": [PUBLIC_JWK]}, jwks_uri="https://bot.example/jwks.json"),
            "clients[0]: private_key_jwt needs exactly one of jwks and jwks_uri",
            id="both-jwks-and-jwks_uri",
        ),
        pytest.param(
            key_client(jwks={"keys": [PRIVATE_JWK]}),
            "clients[0].jwks: the JWK set holds private key material: publish public keys only",
            id="jwks-with-a-private-key",
        ),
        pytest.param(
            key_client(jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            "clients[0].jwks: every key must be an RSA, EC or OKP public key",
            id="jwks-with-a-symmetric-key",
        ),
        pytest.param(
            key_client(jwks_uri="http://keys.example/jwks.json"),
            "clients[0].jwks_uri: https is required (http only on loopback)",
            id="jwks_uri-over-http",
        ),
        pytest.param(
            key_client(jwks={"keys": [PUBLIC_JWK]}, client_secret=SECRET),
            "clients[0].client_secret: a private_key_jwt client authenticates with its key, not a secret",
            id="private_key_jwt-with-a-secret",
        ),
        pytest.param(
            secret_client(jwks={"keys": [PUBLIC_JWK]}),
            "clients[0]: jwks and jwks_uri are for token_endpoint_auth_method private_key_jwt",
            id="jwks-on-a-secret-client",
        ),
        pytest.param(
            {"client_id": "bot", "grant_types": ["client_credentials"]},
            "clients[0]: client_credentials and jwt-bearer are for confidential clients (a secret or a key)",
            id="client_credentials-without-secret-or-key",
        ),
        pytest.param(
            {"client_id": "web", "redirect_uris": [REDIRECT], "groups": ["ops"]},
            "clients[0]: groups and scopes describe a client_credentials client's own principal",
            id="groups-without-client_credentials",
        ),
        pytest.param(
            {"client_id": "web", "client_secret": SECRET, "grant_types": ["authorization_code"]},
            "clients[0].redirect_uris: required for the authorization_code grant",
            id="authorization_code-without-redirect_uris",
        ),
    ],
)
def test_machine_client_configuration_is_checked(client, problem):
    """RFC 7591 §2 (jwks XOR jwks_uri; a JWK set of public keys, RFC 7517 §4/§5), OAuth 2.1 §4.2 (confidential
    clients only), RFC 6749 §3.1.2.2 (redirect URIs registered for the code grant): refused at startup."""
    with pytest.raises(ConfigError) as refused:
        settings_with(client)
    assert problem in refused.value.problems


def test_valid_machine_clients_are_accepted():
    """The counterpart: a secret client, keys inline or on a loopback URL, redirect URIs only for the code grant."""
    settings = settings_with(
        secret_client(groups=["ops"], scopes=["alpha:read"]),
        key_client(jwks={"keys": [PUBLIC_JWK]}),
        key_client("remote", jwks_uri="http://127.0.0.1:8000/jwks.json"),
        key_client("ranged", jwks_uri="https://keys.example/jwks.json?tenant=a"),
    )
    assert [c.client_id for c in settings.clients] == ["bot", "signer", "remote", "ranged"]


# -- revocation --------------------------------------------------------------------------------------------


def credentials(gw: Machine, signer: Signer, client_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """(form fields, headers) authenticating `bot` (client_secret_basic) or `signer` (a fresh assertion)."""
    if client_id == "bot":
        return {}, basic("bot", SECRET)
    return {"client_assertion_type": CLIENT_ASSERTION_JWT, "client_assertion": signer.sign(gw.claims())}, {}


@pytest.mark.parametrize(("owner", "other"), [("bot", "signer"), ("signer", "bot")], ids=["secret", "private_key_jwt"])
async def test_the_client_revokes_its_token(signed, owner, other):
    """RFC 7009 §2.1 (the client authenticates as at /token, here with a secret or an assertion, RFC 7523 §2.2)
    and §2.2 (200): the revoked token is refused on the MCP route at once (RFC 6750 §3.1, 401); another client
    cannot revoke it (the answer is 200 all the same)."""
    gw, signer = signed
    form, headers = credentials(gw, signer, owner)
    token = assert_machine_token(await gw.token(headers=headers, **form))
    assert await gw.mcp_status(token) == 200

    for client_id, status_after in ((other, 200), (owner, 401)):
        form, headers = credentials(gw, signer, client_id)
        revoked = await post_form(gw.http, "/revoke", {"token": token, **form}, headers=headers)
        assert revoked.status == 200, revoked.body
        assert await gw.mcp_status(token) == status_after
