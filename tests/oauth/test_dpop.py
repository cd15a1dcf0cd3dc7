"""DPoP (RFC 9449) end to end, real parts only: the gateway on a real socket and store, the SDK's MCP server behind
it, proofs signed by an ES256 key (tests.support.dpop_client). /token binds what it issues to the proving key (§5),
MCP routes check a proof per request (§4.3, §7.1), server nonces (§8) and the jti replay record (§11.1) are shared by
every instance on one store, and metadata says who needs DPoP (§5.1, RFC 9728 §2)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from aiohttp.test_utils import TestClient, TestServer
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from multidict import CIMultiDict

from gateway.accounts import add_user
from gateway.app_state import SETTINGS_KEY
from tests.conftest import route
from tests.support.dpop_client import OMIT, DpopAuth, DpopKey, b64url, parse_challenge
from tests.support.mcp_wire import modern_call
from tests.support.oauth_client import REDIRECT, register, relative
from tests.support.token_flow import PASSWORD, Reply, basic, obtain_code, post_form, read, redeem, token_request

ALPHA, BETA = "/alpha/mcp", "/beta/mcp"  # alpha: require_dpop; beta: Bearer or DPoP
BOT, BOT_SECRET = "bot", "s3cret-s3cret-s3cret"  # a confidential client_credentials client
WEB, WEB_SECRET = "web", "w3b-s3cret-w3b-s3cret"  # a confidential authorization_code client
CLIENTS = [
    {"client_id": BOT, "client_secret": BOT_SECRET, "grant_types": ["client_credentials"]},
    {"client_id": WEB, "client_secret": WEB_SECRET, "redirect_uris": [REDIRECT]},
]
INTROSPECTION = [{"name": "upstream", "secret": "s3cret-introspect"}]
NONCES = {"dpop_nonce": True}
ALGS = ["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"]
APP = "http://app.example"  # a browser client's origin
UNAUTHORIZED = -31401  # the JSON-RPC error code of a 401 on an MCP route
ADD_HEADERS, ADD_CALL = modern_call(1, "add", {"a": 2, "b": 3})
ADD_BODY = json.dumps(ADD_CALL).encode()


# -- fixtures and helpers -----------------------------------------------------------------------------------


@pytest.fixture
async def alice(store, clock):
    await add_user(store, "alice", PASSWORD, email="alice@example.com", now=clock.now)


async def dpop_gateway(start_gateway, upstream, **settings: Any) -> TestServer:
    """alpha requires DPoP, beta takes either; `bot` and `web` are pre-registered confidential clients."""
    oauth = {"introspection": INTROSPECTION, **settings.pop("oauth", {})}
    routes = [route("alpha", upstream.url, require_dpop=True), route("beta", upstream.url)]
    return await start_gateway(routes, clients=CLIENTS, oauth=oauth, **settings)


@pytest.fixture
async def gw(start_gateway, upstream):
    return await dpop_gateway(start_gateway, upstream)


@pytest.fixture
async def http(aiohttp_client, gw):
    return await aiohttp_client(gw)


@pytest.fixture
def key(clock):
    """The client's key; its proofs take `iat` from the gateway's clock."""
    return DpopKey(clock)


async def two_instances(start_gateway, upstream, **settings: Any) -> tuple[TestServer, TestServer]:
    """Two gateways on one store behind one public URL (a load balancer's view): B answers for A's URLs."""
    a = await dpop_gateway(start_gateway, upstream, **settings)
    b = await dpop_gateway(start_gateway, upstream, public_url=public(a, ""), **settings)
    return a, b


def public(server: TestServer, path: str) -> str:
    """A URL as the gateway names it (its public_url): what `htu` must be."""
    return server.app[SETTINGS_KEY].public_url + path


def dpop_headers(*proofs: str, **headers: str) -> CIMultiDict[str]:
    """Request headers with one `DPoP` header per proof (none, one, or too many)."""
    multi = CIMultiDict(headers)
    for proof in proofs:
        multi.add("DPoP", proof)
    return multi


async def post_token(http: TestClient, server: TestServer, *proofs: str, path: str = ALPHA) -> Reply:
    """client_credentials for `bot`, authenticated with its secret, for `path`'s route, with these proofs."""
    form = {"grant_type": "client_credentials", "resource": public(server, path)}
    headers = dpop_headers(*proofs, **basic(BOT, BOT_SECRET))
    return await read(await http.post("/token", data=form, headers=headers))


async def machine_token(
    http: TestClient, server: TestServer, key: DpopKey | None = None, *, path: str = ALPHA, nonce: str | None = None
) -> str:
    """`bot`'s access token: DPoP-bound to `key` when given (RFC 9449 §5), a Bearer token without."""
    proofs = [key.proof("POST", public(server, "/token"), nonce=nonce)] if key else []
    reply = await post_token(http, server, *proofs, path=path)
    assert reply.status == 200, reply.body
    assert reply.body["token_type"] == ("DPoP" if key else "Bearer")
    return str(reply.body["access_token"])


def token_proof(server: TestServer, key: DpopKey, **claims: Any) -> dict[str, str]:
    return {"DPoP": key.proof("POST", public(server, "/token"), **claims)}


async def refresh_with(
    http: TestClient, client_id: str, refresh_token: str, headers: dict[str, str] | None = None
) -> Reply:
    return await token_request(
        http, headers=headers, grant_type="refresh_token", refresh_token=refresh_token, client_id=client_id
    )


async def post_mcp(
    http: TestClient, path: str, token: str | None, *proofs: str, scheme: str = "DPoP", body: bytes = ADD_BODY
) -> Reply:
    """The `add` tools/call on an MCP route with `Authorization: <scheme> <token>` and these DPoP headers."""
    headers = dpop_headers(*proofs, **ADD_HEADERS, **{"Content-Type": "application/json"})
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    return await read(await http.post(path, data=body, headers=headers))


async def signed_call(http: TestClient, server: TestServer, key: DpopKey, token: str, **claims: Any) -> Reply:
    """`post_mcp` on alpha with a proof by `key` as a client makes it (ath, content_digest)."""
    return await post_mcp(http, ALPHA, token, key.proof("POST", public(server, ALPHA), token, ADD_BODY, **claims))


def result_text(reply: Reply) -> str:
    """The first text content of the tools/call result, from a JSON or an SSE answer."""
    if isinstance(reply.body, dict):
        event = reply.body
    else:
        events = [json.loads(line[5:]) for line in str(reply.body).splitlines() if line.startswith("data:")]
        event = next(e for e in events if "result" in e or "error" in e)
    assert "result" in event, event
    return str(event["result"]["content"][0]["text"])


def assert_added(reply: Reply) -> None:
    assert reply.status == 200, (reply.status, reply.headers.get("WWW-Authenticate"), reply.body)
    assert result_text(reply) == "5"


def assert_challenge(reply: Reply, error: str, reason: str = "", *, path: str = ALPHA) -> dict[str, str]:
    """RFC 9449 §7.1: 401 with `WWW-Authenticate: DPoP`, the route's resource_metadata (RFC 9728 §5.1), the accepted
    algs and the error; a JSON-RPC error body saying why (`reason`)."""
    assert reply.status == 401, (reply.status, reply.headers.get("WWW-Authenticate"), reply.body)
    scheme, params = parse_challenge(reply.headers["WWW-Authenticate"])
    assert scheme == "DPoP", reply.headers["WWW-Authenticate"]
    assert params["resource_metadata"].endswith("/.well-known/oauth-protected-resource" + path), params
    assert params["algs"].split() == ALGS
    assert params["error"] == error, params
    assert reply.body["error"]["code"] == UNAUTHORIZED, reply.body
    assert reason in reply.body["error"]["message"], reply.body
    return params


def assert_token_error(reply: Reply, error: str, reason: str = "") -> None:
    """RFC 9449 §5 (via RFC 6749 §5.2): 400 with the error code, never cached."""
    assert reply.status == 400, reply.body
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.body["error"] == error, reply.body
    assert reason in reply.body.get("error_description", ""), reply.body


def rfc7638(jwk: dict[str, Any]) -> str:
    """The JWK SHA-256 thumbprint of an EC key, computed here (not by the library the gateway uses)."""
    required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    return b64url(hashlib.sha256(json.dumps(required, separators=(",", ":"), sort_keys=True).encode()).digest())


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


# -- 1. the SDK client end to end ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_sdk_client_calls_tools_with_a_proof_per_request(gw, http, key, mode):
    """RFC 9449 §7.1: the SDK `Client` on a require_dpop route, each request with `Authorization: DPoP` and its own
    proof. auto (2026-07-28): stateless POSTs. legacy (2025-11-25): initialize, the session id, a GET SSE stream and
    the DELETE at the end, each GET and DELETE proved without a content_digest (no body)."""
    auth = DpopAuth(key, await machine_token(http, gw, key))
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as client_http,
        Client(streamable_http_client(public(gw, ALPHA), http_client=client_http), mode=mode) as client,
    ):
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        assert (await client.call_tool("add", {"a": 40, "b": 2})).content[0].text == "42"
        seen = json.loads((await client.call_tool("echo_headers", {})).content[0].text)
        if mode == "legacy":
            await until(lambda: ("GET", 200) in auth.exchanges)  # the GET stream is open
    assert all(200 <= status < 300 for _, status in auth.exchanges), auth.exchanges
    assert {method for method, _ in auth.exchanges} == ({"POST", "GET", "DELETE"} if mode == "legacy" else {"POST"})
    assert auth.nonce is None  # (no nonce asked for)
    assert seen["x-forwarded-user"] == "client:bot"
    assert "authorization" not in seen and "dpop" not in seen  # the token and the proof stay at the gateway


# -- 2. the token endpoint -----------------------------------------------------------------------------------


async def test_code_flow_binds_a_public_clients_tokens_and_refresh_token(gw, http, alice, key, clock):
    """RFC 9449 §5: a proof at /token makes the access token DPoP-bound (token_type DPoP) and, the client being
    public, the refresh token too: refreshed only with a proof by the same key (no proof, another key:
    invalid_dpop_proof, and the refresh token survives), and its successor is still bound."""
    client_id = (await register(http))["client_id"]
    issued = await redeem(http, await obtain_code(gw, client_id), headers=token_proof(gw, key))
    assert issued.status == 200, issued.body
    assert issued.body["token_type"] == "DPoP"
    assert_added(await signed_call(http, gw, key, issued.body["access_token"]))
    refresh_token = issued.body["refresh_token"]
    assert_token_error(await refresh_with(http, client_id, refresh_token), "invalid_dpop_proof", "bound")
    other = token_proof(gw, DpopKey(clock))
    assert_token_error(await refresh_with(http, client_id, refresh_token, other), "invalid_dpop_proof", "bound")
    renewed = await refresh_with(http, client_id, refresh_token, token_proof(gw, key))
    assert renewed.status == 200, renewed.body
    assert renewed.body["token_type"] == "DPoP"
    assert renewed.body["access_token"] != issued.body["access_token"]
    assert_added(await signed_call(http, gw, key, renewed.body["access_token"]))
    successor = renewed.body["refresh_token"]
    assert_token_error(await refresh_with(http, client_id, successor), "invalid_dpop_proof", "bound")
    assert (await refresh_with(http, client_id, successor, token_proof(gw, key))).status == 200


async def test_without_a_proof_tokens_stay_bearer_tokens(gw, http, alice):
    """RFC 9449 §5, §7.2: DPoP is the client's choice; without a proof /token issues Bearer tokens as before, and they
    work as Bearer tokens on a route that does not require DPoP, refreshed without a proof."""
    client_id = (await register(http))["client_id"]
    issued = await redeem(http, await obtain_code(gw, client_id, route="beta"))
    assert issued.status == 200, issued.body
    assert issued.body["token_type"] == "Bearer"
    assert_added(await post_mcp(http, BETA, issued.body["access_token"], scheme="Bearer"))
    renewed = await refresh_with(http, client_id, issued.body["refresh_token"])
    assert renewed.status == 200, renewed.body
    assert renewed.body["token_type"] == "Bearer"
    assert_added(await post_mcp(http, BETA, renewed.body["access_token"], scheme="Bearer"))


async def test_client_credentials_of_a_confidential_client(gw, http, key):
    """RFC 9449 §5: a confidential client (client_secret_basic) proving a key gets a DPoP token, no refresh token
    (client_credentials); introspection says it is bound to that key's RFC 7638 thumbprint (§6.2). Without a proof
    the same client gets a Bearer token."""
    reply = await post_token(http, gw, key.proof("POST", public(gw, "/token")))
    assert reply.status == 200, reply.body
    assert reply.body["token_type"] == "DPoP" and "refresh_token" not in reply.body
    token = reply.body["access_token"]
    assert_added(await signed_call(http, gw, key, token))
    described = await post_form(http, "/introspect", {"token": token}, headers=basic("upstream", "s3cret-introspect"))
    assert described.body["active"] is True, described.body
    assert described.body["token_type"] == "DPoP"
    assert described.body["cnf"] == {"jkt": rfc7638(key.public_jwk)}
    bearer = await machine_token(http, gw, path=BETA)
    assert_added(await post_mcp(http, BETA, bearer, scheme="Bearer"))


async def test_a_confidential_clients_refresh_token_is_not_bound(gw, http, alice, key, clock):
    """RFC 9449 §5: a confidential client's refresh token is bound by its client authentication, not to a key; each
    access token a refresh issues is bound to whatever key proved at that refresh (none: Bearer)."""
    auth = basic(WEB, WEB_SECRET)
    issued = await redeem(http, await obtain_code(gw, WEB), headers={**auth, **token_proof(gw, key)})
    assert issued.status == 200, issued.body
    assert issued.body["token_type"] == "DPoP"
    plain = await refresh_with(http, WEB, issued.body["refresh_token"], auth)
    assert plain.status == 200, plain.body
    assert plain.body["token_type"] == "Bearer"
    other = DpopKey(clock)
    moved = await refresh_with(http, WEB, plain.body["refresh_token"], {**auth, **token_proof(gw, other)})
    assert moved.status == 200, moved.body
    assert moved.body["token_type"] == "DPoP"
    assert_added(await signed_call(http, gw, other, moved.body["access_token"]))
    refused = await signed_call(http, gw, key, moved.body["access_token"])
    assert_challenge(refused, "invalid_dpop_proof", "not signed by the key")


async def test_userinfo_takes_a_bound_token_only_with_its_proof(gw, http, alice, key):
    """RFC 9449 §7.2: /userinfo is a protected resource too: a DPoP-bound token sent as a Bearer token is refused;
    with the DPoP scheme and a proof by its key (htm GET, htu /userinfo, ath) it is accepted."""
    client_id = (await register(http))["client_id"]
    code = await obtain_code(gw, client_id, scope="openid alpha:read")
    token = (await redeem(http, code, headers=token_proof(gw, key))).body["access_token"]
    as_bearer = await http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert as_bearer.status == 401
    proof = key.proof("GET", public(gw, "/userinfo"), token)
    with_proof = await read(await http.get("/userinfo", headers={"Authorization": f"DPoP {token}", "DPoP": proof}))
    assert with_proof.status == 200, with_proof.body
    assert with_proof.body["sub"] == "local:alice"


# -- 3. refusals ---------------------------------------------------------------------------------------------


@dataclass
class Scene:
    """A DPoP token for alpha and its key; `proof()` is a good proof for the `add` call, changed as asked."""

    server: TestServer
    key: DpopKey
    token: str

    def proof(
        self,
        *,
        method: str = "POST",
        path: str = ALPHA,
        token: Any = ...,
        body: bytes | None = ADD_BODY,
        key: DpopKey | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        token = self.token if token is ... else token
        return (key or self.key).proof(method, public(self.server, path), token, body, header=header, **claims)

    def forged(self, alg: str) -> str:
        return self.key.forged(alg, "POST", public(self.server, ALPHA), self.token, ADD_BODY)


@pytest.fixture
async def scene(gw, http, key) -> Scene:
    return Scene(gw, key, await machine_token(http, gw, key))


BAD_PROOFS = [
    pytest.param(lambda s: [s.proof(path=BETA)], "another URL", id="htu-of-another-route"),
    pytest.param(lambda s: [s.proof(path="/ALPHA/mcp")], "another URL", id="htu-path-in-another-case"),
    pytest.param(lambda s: [s.proof(method="GET")], "another HTTP method", id="htm-get-for-a-post"),
    pytest.param(lambda s: [s.proof(iat=int(s.key.now()) + 400)], "iat", id="iat-in-the-future"),
    pytest.param(lambda s: [s.proof(token=None)], "ath", id="no-ath"),
    pytest.param(lambda s: [s.proof(token="another-access-token")], "ath", id="ath-of-another-token"),
    pytest.param(
        lambda s: [s.proof(body=b'{"jsonrpc": "2.0"}')], "content_digest", id="content-digest-of-another-body"
    ),
    pytest.param(lambda s: [s.proof(key=DpopKey(s.key.now))], "not signed by the key", id="another-key"),
    pytest.param(lambda s: [s.proof(header={"jwk": DpopKey().public_jwk})], "signature", id="jwk-of-another-key"),
    pytest.param(lambda s: [s.proof(), s.proof()], "exactly one", id="two-dpop-headers"),
    pytest.param(lambda s: [], "required", id="no-dpop-header"),
    pytest.param(lambda s: [s.forged("none")], "signed with one of", id="alg-none"),
    pytest.param(lambda s: [s.forged("HS256")], "signed with one of", id="alg-hs256-keyed-with-the-jwk"),
    pytest.param(lambda s: [s.proof(header={"jwk": s.key.key.as_dict(private=True)})], "public key", id="jwk-with-d"),
    pytest.param(lambda s: [s.proof(header={"typ": "JWT"})], "typ", id="typ-jwt"),
    pytest.param(lambda s: [s.proof(jti=OMIT)], "jti", id="no-jti"),
    pytest.param(lambda s: ["not.a-jwt"], "not a JWT", id="not-a-jwt"),
]


@pytest.mark.parametrize(("build", "reason"), BAD_PROOFS)
async def test_mcp_route_refuses_a_bad_proof(scene, http, build, reason):
    """RFC 9449 §4.3 (checks 1-12) and §7.1: a DPoP-bound token with a proof that fails one check (or with none, or
    two) is answered 401 with a DPoP challenge naming invalid_dpop_proof; the token itself stays good."""
    assert_challenge(await post_mcp(http, ALPHA, scene.token, *build(scene)), "invalid_dpop_proof", reason)
    assert_added(await post_mcp(http, ALPHA, scene.token, scene.proof()))


async def test_a_proof_is_good_for_one_request(scene, http):
    """RFC 9449 §11.1 and §4.3 check 12: the same proof (same jti) a second time is a replay."""
    proof = scene.proof()
    assert_added(await post_mcp(http, ALPHA, scene.token, proof))
    assert_challenge(await post_mcp(http, ALPHA, scene.token, proof), "invalid_dpop_proof", "already used")


async def test_a_proof_older_than_the_iat_window_is_refused(scene, http, clock):
    """RFC 9449 §4.3 check 11, §11.1: `iat` within 300 s of the gateway's clock. The clock moves 400 s (the token,
    issued on the same clock for an hour, stays valid): a proof made before is refused, one 290 s old is not."""
    stale = scene.proof()
    clock.now += 400
    assert_challenge(await post_mcp(http, ALPHA, scene.token, stale), "invalid_dpop_proof", "iat")
    assert_added(await post_mcp(http, ALPHA, scene.token, scene.proof(iat=int(clock.now) - 290)))
    assert_added(await post_mcp(http, ALPHA, scene.token, scene.proof()))


async def test_htu_compares_scheme_and_host_case_insensitively(scene, http):
    """RFC 9449 §4.3 check 9 with RFC 3986 §6.2.2.1: `HTTP://…` names the same URL; the query is not part of htu."""
    url = public(scene.server, ALPHA).replace("http://", "HTTP://", 1)
    proof = scene.key.proof("POST", url + "?ignored=1", scene.token, ADD_BODY)
    assert_added(await post_mcp(http, ALPHA, scene.token, proof))


async def test_content_digest_is_optional_but_checked(scene, http):
    """MCP's DPoP profile (SEP-1932) is RFC 9449 as it is: a proof without `content_digest` is accepted; one with it
    must match the body (the bad-proof cases)."""
    assert_added(await post_mcp(http, ALPHA, scene.token, scene.proof(body=None)))


async def test_content_digest_required_where_configured(start_gateway, upstream, aiohttp_client, key):
    """`oauth.dpop_require_content_digest` (the ext-auth DPoP draft): a POST proof without `content_digest` is
    refused; a GET (no body) needs none."""
    gw = await dpop_gateway(start_gateway, upstream, oauth={"dpop_require_content_digest": True})
    http = await aiohttp_client(gw)
    scene = Scene(gw, key, await machine_token(http, gw, key))
    missing = await post_mcp(http, ALPHA, scene.token, scene.proof(body=None))
    assert_challenge(missing, "invalid_dpop_proof", "content_digest")
    assert_added(await post_mcp(http, ALPHA, scene.token, scene.proof()))


async def test_a_bound_token_is_never_a_bearer_token(scene, http, key):
    """RFC 9449 §7.2: a DPoP-bound token presented with the Bearer scheme is refused (invalid_token), with a valid
    proof alongside or not, on a DPoP route and on a route that takes Bearer tokens."""
    refused = await post_mcp(http, ALPHA, scene.token, scene.proof(), scheme="Bearer")
    assert_challenge(refused, "invalid_token", "DPoP-bound")
    beta = await machine_token(http, scene.server, key, path=BETA)
    on_beta = await post_mcp(http, BETA, beta, scheme="Bearer")
    assert on_beta.status == 401, on_beta.body
    assert parse_challenge(on_beta.headers["WWW-Authenticate"])[1]["error"] == "invalid_token"


async def test_an_unbound_token_is_refused_with_the_dpop_scheme(gw, http, key):
    """RFC 9449 §7.1: the DPoP scheme is for DPoP-bound tokens; a Bearer token sent as `DPoP`, with a proof, is
    invalid_token."""
    bearer = await machine_token(http, gw, path=BETA)
    proof = key.proof("POST", public(gw, BETA), bearer, ADD_BODY)
    refused = await post_mcp(http, BETA, bearer, proof)
    assert_challenge(refused, "invalid_token", "not DPoP-bound", path=BETA)


async def test_a_dpop_route_refuses_bearer_tokens(gw, http):
    """RFC 9449 §7.1, RFC 9728 `dpop_bound_access_tokens_required`: alpha takes DPoP-bound tokens only."""
    bearer = await machine_token(http, gw)
    refused = await post_mcp(http, ALPHA, bearer, scheme="Bearer")
    assert_challenge(refused, "invalid_token", "DPoP-bound access tokens only")


BAD_TOKEN_PROOFS = [
    pytest.param(lambda s, k: [k.proof("POST", public(s, ALPHA))], "another URL", id="htu-of-an-mcp-route"),
    pytest.param(lambda s, k: [k.proof("GET", public(s, "/token"))], "another HTTP method", id="htm-get"),
    pytest.param(lambda s, k: [k.proof("POST", public(s, "/token"), iat=int(k.now()) - 400)], "iat", id="iat-old"),
    pytest.param(lambda s, k: [k.forged("none", "POST", public(s, "/token"))], "signed with one of", id="alg-none"),
    pytest.param(lambda s, k: [k.proof("POST", public(s, "/token"), header={"typ": "JWT"})], "typ", id="typ-jwt"),
    pytest.param(lambda s, k: [k.proof("POST", public(s, "/token"))] * 2, "exactly one", id="two-dpop-headers"),
]


@pytest.mark.parametrize(("build", "reason"), BAD_TOKEN_PROOFS)
async def test_token_endpoint_refuses_a_bad_proof(gw, http, key, build, reason):
    """RFC 9449 §5 (§4.3 checks at /token): 400 invalid_dpop_proof, no token issued."""
    assert_token_error(await post_token(http, gw, *build(gw, key)), "invalid_dpop_proof", reason)


async def test_token_endpoint_refuses_a_replayed_proof(gw, http, key):
    """RFC 9449 §11.1: a proof that got a token once gets none again."""
    proof = key.proof("POST", public(gw, "/token"))
    assert (await post_token(http, gw, proof)).status == 200
    assert_token_error(await post_token(http, gw, proof), "invalid_dpop_proof", "already used")


# -- 4. server nonces ----------------------------------------------------------------------------------------


@pytest.fixture
async def nonce_gw(start_gateway, upstream):
    return await dpop_gateway(start_gateway, upstream, oauth=NONCES)


@pytest.fixture
async def nonce_http(aiohttp_client, nonce_gw):
    return await aiohttp_client(nonce_gw)


async def first_nonce(http: TestClient, server: TestServer, key: DpopKey) -> str:
    """RFC 9449 §8: a proof without a nonce is refused with use_dpop_nonce and the nonce to use."""
    refused = await post_token(http, server, key.proof("POST", public(server, "/token")))
    assert_token_error(refused, "use_dpop_nonce")
    return refused.headers["DPoP-Nonce"]


async def test_token_endpoint_demands_the_server_nonce(nonce_gw, nonce_http, key):
    """RFC 9449 §8: without the nonce 400 use_dpop_nonce with `DPoP-Nonce`; the retry carrying it gets a DPoP token;
    every answer carries a nonce (§8.2), a Bearer request's too (it needs none)."""
    nonce = await first_nonce(nonce_http, nonce_gw, key)
    issued = await post_token(nonce_http, nonce_gw, key.proof("POST", public(nonce_gw, "/token"), nonce=nonce))
    assert issued.status == 200, issued.body
    assert issued.body["token_type"] == "DPoP"
    assert issued.headers["DPoP-Nonce"]
    bearer = await post_token(nonce_http, nonce_gw)
    assert bearer.status == 200 and bearer.body["token_type"] == "Bearer"
    assert bearer.headers["DPoP-Nonce"]


async def test_mcp_route_demands_the_server_nonce(nonce_gw, nonce_http, key):
    """RFC 9449 §9: a resource server's nonce: 401 with a DPoP challenge naming use_dpop_nonce and `DPoP-Nonce`;
    the retry with it is served."""
    token = await machine_token(nonce_http, nonce_gw, key, nonce=await first_nonce(nonce_http, nonce_gw, key))
    refused = await signed_call(nonce_http, nonce_gw, key, token)
    assert_challenge(refused, "use_dpop_nonce")
    assert_added(await signed_call(nonce_http, nonce_gw, key, token, nonce=refused.headers["DPoP-Nonce"]))


async def test_sdk_client_follows_the_nonce(nonce_gw, nonce_http, key):
    """RFC 9449 §9: a client that retries a use_dpop_nonce answer once with the nonce it carried works throughout."""
    auth = DpopAuth(
        key, await machine_token(nonce_http, nonce_gw, key, nonce=await first_nonce(nonce_http, nonce_gw, key))
    )
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as client_http,
        Client(streamable_http_client(public(nonce_gw, ALPHA), http_client=client_http)) as client,
    ):
        assert (await client.call_tool("add", {"a": 40, "b": 2})).content[0].text == "42"
    assert auth.nonce is not None
    assert all(200 <= status < 300 for _, status in auth.exchanges), auth.exchanges


async def test_a_nonce_from_three_minutes_ago_is_refused(nonce_gw, nonce_http, key, clock):
    """RFC 9449 §8, §9: a nonce is good for its minute and the next; three minutes on, it is use_dpop_nonce again
    (with a new one), at the MCP route and at /token."""
    nonce = await first_nonce(nonce_http, nonce_gw, key)
    token = await machine_token(nonce_http, nonce_gw, key, nonce=nonce)
    clock.now += 60
    assert_added(await signed_call(nonce_http, nonce_gw, key, token, nonce=nonce))
    clock.now += 120
    refused = await signed_call(nonce_http, nonce_gw, key, token, nonce=nonce)
    assert_challenge(refused, "use_dpop_nonce")
    assert refused.headers["DPoP-Nonce"] != nonce
    assert_added(await signed_call(nonce_http, nonce_gw, key, token, nonce=refused.headers["DPoP-Nonce"]))
    at_token = await post_token(nonce_http, nonce_gw, key.proof("POST", public(nonce_gw, "/token"), nonce=nonce))
    assert_token_error(at_token, "use_dpop_nonce")


async def test_a_nonce_from_another_instance_is_accepted(start_gateway, upstream, aiohttp_client, key):
    """RFC 9449 §8: the nonce secret is in the shared store: B's nonce is good at A's /token, and the nonce A's answer
    carries is good at B's MCP route."""
    a, b = await two_instances(start_gateway, upstream, oauth=NONCES)
    http_a, http_b = await aiohttp_client(a), await aiohttp_client(b)
    from_b = await first_nonce(http_b, b, key)
    issued = await post_token(http_a, a, key.proof("POST", public(a, "/token"), nonce=from_b))
    assert issued.status == 200, issued.body
    token = issued.body["access_token"]
    assert_added(await signed_call(http_b, b, key, token, nonce=issued.headers["DPoP-Nonce"]))


async def test_userinfo_hands_out_the_nonce_it_demands(nonce_gw, nonce_http, alice, key):
    """RFC 9449 §9 (signalled as in §7.1): a resource that requires a nonce answers a proof without one 401 with
    `WWW-Authenticate: DPoP error="use_dpop_nonce"` and a `DPoP-Nonce` to use; the retry with it is served."""
    client_id = (await register(nonce_http))["client_id"]
    code = await obtain_code(nonce_gw, client_id, scope="openid alpha:read")
    nonce = await first_nonce(nonce_http, nonce_gw, key)
    issued = await redeem(nonce_http, code, headers=token_proof(nonce_gw, key, nonce=nonce))
    assert issued.status == 200, issued.body
    token, url = issued.body["access_token"], public(nonce_gw, "/userinfo")
    headers = {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", url, token)}
    refused = await read(await nonce_http.get("/userinfo", headers=headers))
    assert refused.status == 401, refused.body
    scheme, params = parse_challenge(refused.headers["WWW-Authenticate"])
    assert (scheme, params.get("error")) == ("DPoP", "use_dpop_nonce"), refused.headers["WWW-Authenticate"]
    headers["DPoP"] = key.proof("GET", url, token, nonce=refused.headers["DPoP-Nonce"])
    served = await read(await nonce_http.get("/userinfo", headers=headers))
    assert served.status == 200, served.body


# -- 5. replay across instances ------------------------------------------------------------------------------


async def test_a_proof_accepted_by_one_instance_is_refused_by_another(start_gateway, upstream, aiohttp_client, key):
    """RFC 9449 §11.1: the jti record is in the shared store, so a proof gateway A accepted (on an MCP route or at
    /token) is a replay at gateway B."""
    a, b = await two_instances(start_gateway, upstream)
    http_a, http_b = await aiohttp_client(a), await aiohttp_client(b)
    token = await machine_token(http_a, a, key)
    proof = key.proof("POST", public(a, ALPHA), token, ADD_BODY)
    assert_added(await post_mcp(http_a, ALPHA, token, proof))
    assert_challenge(await post_mcp(http_b, ALPHA, token, proof), "invalid_dpop_proof", "already used")
    at_token = key.proof("POST", public(a, "/token"))
    assert (await post_token(http_a, a, at_token)).status == 200
    assert_token_error(await post_token(http_b, b, at_token), "invalid_dpop_proof", "already used")


# -- 6. metadata and challenges ------------------------------------------------------------------------------


async def test_metadata_says_which_routes_require_dpop(gw, http):
    """RFC 9449 §5.1 and §7.1, RFC 9728 §2 and §5.1: without a token alpha answers `WWW-Authenticate: DPoP` with its
    resource_metadata and algs (no error: RFC 6750 §3.1); that document says dpop_bound_access_tokens_required;
    beta's challenge is Bearer and its document says false; the AS metadata lists the proof algorithms."""
    challenged = await post_mcp(http, ALPHA, None)
    assert challenged.status == 401
    scheme, params = parse_challenge(challenged.headers["WWW-Authenticate"])
    assert scheme == "DPoP" and "error" not in params
    assert params["algs"].split() == ALGS
    document = await read(await http.get(relative(params["resource_metadata"])))
    assert document.body["resource"] == public(gw, ALPHA)
    assert document.body["dpop_bound_access_tokens_required"] is True
    assert document.body["dpop_signing_alg_values_supported"] == ALGS
    beta = await post_mcp(http, BETA, None)
    scheme, params = parse_challenge(beta.headers["WWW-Authenticate"])
    assert scheme == "Bearer"
    assert (await read(await http.get(relative(params["resource_metadata"])))).body[
        "dpop_bound_access_tokens_required"
    ] is False
    issuer = await read(await http.get("/.well-known/oauth-authorization-server"))
    assert issuer.body["dpop_signing_alg_values_supported"] == ALGS


def header_names(value: str | None) -> set[str]:
    return {name.strip().lower() for name in (value or "").split(",") if name.strip()}


async def test_browser_clients_can_send_proofs_and_read_nonces(start_gateway, upstream, aiohttp_client, key):
    """RFC 9449 §1 names browser-based clients first; the gateway answers CORS for them (Inspector). A browser sends
    the `DPoP` request header only when the preflight allows it (Fetch: Access-Control-Allow-Headers), and lets the
    page read `DPoP-Nonce` (not a safelisted response header) only when the answer exposes it: at /token and on MCP
    routes. Every gap is listed at once."""
    gw = await dpop_gateway(start_gateway, upstream, oauth=NONCES, allowed_origins=[APP])
    http = await aiohttp_client(gw)
    gaps: list[str] = []
    asked = {"Origin": APP, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "dpop"}
    for path in ("/token", ALPHA):
        preflight = await http.options(path, headers=asked)
        assert preflight.status == 204, path
        allowed = preflight.headers.get("Access-Control-Allow-Headers")
        if "dpop" not in header_names(allowed):
            gaps.append(f"OPTIONS {path}: Access-Control-Allow-Headers {allowed!r}")
    refused = await post_token(http, gw, key.proof("POST", public(gw, "/token")))  # (use_dpop_nonce)
    token = await machine_token(http, gw, key, nonce=refused.headers["DPoP-Nonce"])
    headers = {**ADD_HEADERS, "Content-Type": "application/json", "Origin": APP, "Authorization": f"DPoP {token}"}
    headers["DPoP"] = key.proof("POST", public(gw, ALPHA), token, ADD_BODY)
    answers = {
        "POST /token": await http.post(
            "/token", data={"grant_type": "client_credentials"}, headers={**basic(BOT, BOT_SECRET), "Origin": APP}
        ),
        f"POST {ALPHA}": await http.post(ALPHA, data=ADD_BODY, headers=headers),
    }
    for name, answer in answers.items():
        assert "DPoP-Nonce" in answer.headers, name
        if "dpop-nonce" not in header_names(answer.headers.get("Access-Control-Expose-Headers")):
            gaps.append(
                f"{name}: Access-Control-Expose-Headers {answer.headers.get('Access-Control-Expose-Headers')!r}"
            )
    assert not gaps, "\n".join(gaps)


async def test_a_code_bound_with_dpop_jkt_is_redeemed_only_with_that_key(gw, http, alice, key, clock):
    """RFC 9449 §10: `dpop_jkt` at /authorize binds the code to a key: redeemed without a proof or with another
    key's is invalid_grant (and the code is spent), with that key's it gives a DPoP token."""
    client_id = (await register(http))["client_id"]
    for headers in ({}, token_proof(gw, DpopKey(clock))):
        code = await obtain_code(gw, client_id, dpop_jkt=key.thumbprint)
        refused = await redeem(http, code, headers=headers)
        assert refused.status == 400 and refused.body["error"] == "invalid_grant", refused.body
        assert "dpop_jkt" in refused.body["error_description"]
    issued = await redeem(http, await obtain_code(gw, client_id, dpop_jkt=key.thumbprint), headers=token_proof(gw, key))
    assert issued.status == 200, issued.body
    assert issued.body["token_type"] == "DPoP"
    assert_added(await signed_call(http, gw, key, issued.body["access_token"]))


async def test_a_malformed_dpop_jkt_is_refused_at_authorize(start_gateway, upstream, alice, key):
    """RFC 9449 §10: `dpop_jkt` is a JWK SHA-256 thumbprint (43 base64url characters); anything else is
    invalid_request, by redirect for a pre-registered client (its redirect URI is the administrator's)."""
    from tests.support.headless_oauth import Browser
    from tests.support.oauth_client import authorize_url, new_verifier

    gw = await dpop_gateway(start_gateway, upstream)
    url = authorize_url(gw, WEB, verifier=new_verifier(), dpop_jkt="not-a-thumbprint")
    result = await Browser("alice", PASSWORD).authorize(url)
    assert result.get("error") == "invalid_request", result
    assert "dpop_jkt" in result.get("error_description", "")


async def test_a_client_registered_dpop_bound_must_prove_every_token_request(gw, http, alice, key):
    """RFC 9449 §5.2: a client registered with `dpop_bound_access_tokens: true` (echoed in the registration
    response) gets no token without a proof (invalid_dpop_proof), one with; the value must be a boolean."""
    registered = await register(http, dpop_bound_access_tokens=True)
    assert registered["dpop_bound_access_tokens"] is True
    code = await obtain_code(gw, registered["client_id"])
    assert_token_error(await redeem(http, code), "invalid_dpop_proof", "required")
    code = await obtain_code(gw, registered["client_id"])
    issued = await redeem(http, code, headers=token_proof(gw, key))
    assert issued.status == 200 and issued.body["token_type"] == "DPoP", issued.body
    refused = await http.post("/register", json={"redirect_uris": [REDIRECT], "dpop_bound_access_tokens": "yes"})
    assert refused.status == 400
    assert (await refused.json())["error"] == "invalid_client_metadata"
