"""`/token`, `/revoke`, `/introspect` and `/userinfo` over HTTP (RFC 6749 §3.2, §4.1.3, §5, §6; RFC 7009; RFC 7662;
RFC 8707 §2.2; RFC 9700 §4.14; OAuth 2.1 §4.1.3; MCP TOK-1..6, REV-1, CORS-1)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.accounts import add_user
from gateway.app_state import SETTINGS_KEY
from tests.conftest import route
from tests.support.oauth_client import REDIRECT, new_verifier, register
from tests.support.token_flow import (
    PASSWORD,
    Reply,
    basic,
    mcp_status,
    obtain_code,
    obtain_tokens,
    post_form,
    read,
    redeem,
    refresh,
    token_request,
)

INTROSPECTION = {"introspection": [{"name": "upstream", "secret": "s3cret-introspect"}]}


@pytest.fixture
async def alice(store, clock):
    await add_user(store, "alice", PASSWORD, email="alice@example.com", now=clock.now)


@pytest.fixture
async def scoped(start_gateway, upstream):
    """One route, `alpha`, with two scopes, to narrow and widen."""
    return await start_gateway([route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"])])


def assert_error(reply: Reply, status: int, error: str) -> None:
    """RFC 6749 §5.2 (TOK-2): JSON `error`, the right status, never cached, never HTML."""
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"].startswith("application/json"), reply.body
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.body["error"] == error, reply.body


def assert_tokens(reply: Reply, *, scope: str, refresh_token: bool = True) -> None:
    """RFC 6749 §5.1 and MCP TOK-1 (conformance): 200 JSON, no-store, Bearer token, expires_in, scope."""
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["Cache-Control"] == "no-store"
    body = reply.body
    assert body["token_type"] == "Bearer"
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert body["expires_in"] == 3600
    assert body["scope"] == scope
    assert ("refresh_token" in body) is refresh_token
    assert "error" not in body


# -- authorization_code grant ------------------------------------------------------------------------------


async def test_code_redeems_for_a_bearer_token_and_refresh_token_never_cached(gateway, aiohttp_client, alice):
    """TOK-1 (CONF authorization-code-grant.ts) and TOK-5: a client that registered refresh_token gets one."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    reply = await redeem(client, await obtain_code(gateway, registered["client_id"]))
    assert_tokens(reply, scope="alpha:read")
    assert reply.headers["Pragma"] == "no-cache"
    assert reply.body["refresh_token"] != reply.body["access_token"]


async def test_access_token_from_a_code_works_only_on_the_route_it_was_issued_for(gateway, aiohttp_client, alice):
    """RS-8 / RFC 8707: the token is bound to the code's resource (alpha) and refused on beta."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"])
    assert await mcp_status(client, "/alpha/mcp", tokens["access_token"]) == 200
    assert await mcp_status(client, "/beta/mcp", tokens["access_token"]) == 401


@pytest.mark.parametrize("verifier", ["wrong", "missing", "malformed"])
async def test_wrong_or_missing_code_verifier_is_invalid_grant(gateway, aiohttp_client, alice, verifier):
    """RFC 7636 §4.6 / OAuth 2.1 §4.1.3: the verifier must hash to the code's S256 challenge."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    code = await obtain_code(gateway, registered["client_id"])
    form = {
        "grant_type": "authorization_code",
        "code": code.code,
        "redirect_uri": REDIRECT,
        "client_id": code.client_id,
    }
    if verifier == "wrong":
        form["code_verifier"] = new_verifier()
    elif verifier == "malformed":
        form["code_verifier"] = "too-short"
    assert_error(await token_request(client, **form), 400, "invalid_grant")


async def test_redirect_uri_differing_from_the_authorization_request_is_invalid_grant(gateway, aiohttp_client, alice):
    """RFC 6749 §4.1.3 (TOK-1): equal to the authorization request's, even another loopback port that /authorize
    would have accepted."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    code = await obtain_code(gateway, registered["client_id"])
    reply = await redeem(client, code, redirect_uri="http://127.0.0.1:50999/callback")
    assert_error(reply, 400, "invalid_grant")


async def test_resource_of_another_route_is_invalid_target(gateway, aiohttp_client, alice):
    """RFC 8707 §2.2 (TOK-1): a resource outside the code's resources is invalid_target."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    code = await obtain_code(gateway, registered["client_id"])
    reply = await redeem(client, code, resource=str(gateway.make_url("/beta/mcp")))
    assert_error(reply, 400, "invalid_target")


async def test_resource_equal_to_the_codes_is_accepted(gateway, aiohttp_client, alice):
    """RFC 8707 §2.2: repeating the authorized resource at /token is fine."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    code = await obtain_code(gateway, registered["client_id"])
    assert_tokens(await redeem(client, code, resource=str(gateway.make_url("/alpha/mcp"))), scope="alpha:read")


async def test_reused_code_is_invalid_grant_and_revokes_the_tokens_it_minted(gateway, aiohttp_client, alice):
    """OAuth 2.1 §4.1.3 / RFC 6749 §4.1.2 (TOK-1 REC): a replayed code revokes what the first redemption got."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    code = await obtain_code(gateway, registered["client_id"])
    first = await redeem(client, code)
    assert_tokens(first, scope="alpha:read")
    assert await mcp_status(client, "/alpha/mcp", first.body["access_token"]) == 200

    assert_error(await redeem(client, code), 400, "invalid_grant")
    assert await mcp_status(client, "/alpha/mcp", first.body["access_token"]) == 401
    assert_error(await refresh(client, code.client_id, first.body["refresh_token"]), 400, "invalid_grant")


async def test_code_of_another_client_is_invalid_grant(gateway, aiohttp_client, alice):
    """RFC 6749 §4.1.3: the code is bound to the client it was issued to; for anyone else it does not exist."""
    client = await aiohttp_client(gateway)
    owner, other = await register(client), await register(client)
    code = await obtain_code(gateway, owner["client_id"])
    assert_error(await redeem(client, code, client_id=other["client_id"]), 400, "invalid_grant")


async def test_expired_code_is_invalid_grant(gateway, aiohttp_client, alice, clock):
    """AUTHZ-8 (codes short-lived, code_ttl 600 s): past its expiry on the injected clock the code is dead."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    code = await obtain_code(gateway, registered["client_id"])
    clock.now += 601
    assert_error(await redeem(client, code), 400, "invalid_grant")


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"])
async def test_unknown_grant_type_is_unsupported_grant_type(gateway, aiohttp_client, grant_type):
    """RFC 6749 §5.2 (TOK-2; client_credentials exists since issue 13: tests/oauth/test_machine_grants.py)."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    reply = await token_request(client, grant_type=grant_type, client_id=registered["client_id"])
    assert_error(reply, 400, "unsupported_grant_type")


async def test_client_without_the_refresh_grant_gets_no_refresh_token_and_cannot_refresh(
    gateway, aiohttp_client, alice
):
    """TOK-5 (our choice: refresh tokens only for clients that registered the grant); RFC 6749 §5.2
    unauthorized_client for a grant the client may not use."""
    client = await aiohttp_client(gateway)
    registered = await register(client, grant_types=["authorization_code"])
    reply = await redeem(client, await obtain_code(gateway, registered["client_id"]))
    assert_tokens(reply, scope="alpha:read", refresh_token=False)
    attempt = await refresh(client, registered["client_id"], "mcpgw_rt_anything")
    assert_error(attempt, 400, "unauthorized_client")


async def test_json_body_is_invalid_request_not_a_server_error(gateway, aiohttp_client, alice):
    """RFC 6749 §3.2 (the token endpoint takes application/x-www-form-urlencoded); TOK-2: always JSON, never 500."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    code = await obtain_code(gateway, registered["client_id"])
    response = await client.post(
        "/token",
        json={
            "grant_type": "authorization_code",
            "code": code.code,
            "code_verifier": code.verifier,
            "redirect_uri": REDIRECT,
            "client_id": code.client_id,
        },
    )
    assert_error(await read(response), 400, "invalid_request")
    assert_tokens(await redeem(client, code), scope="alpha:read")  # the rejected request did not burn the code


async def test_repeated_code_parameter_is_invalid_request(gateway, aiohttp_client, alice):
    """RFC 6749 §3.2: request parameters MUST NOT be included more than once."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    code = await obtain_code(gateway, registered["client_id"])
    reply = await post_form(
        client,
        "/token",
        [
            ("grant_type", "authorization_code"),
            ("code", code.code),
            ("code", code.code),
            ("code_verifier", code.verifier),
            ("redirect_uri", REDIRECT),
            ("client_id", code.client_id),
        ],
    )
    assert_error(reply, 400, "invalid_request")


# -- client authentication -----------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["wrong-secret", None])
async def test_client_secret_post_client_authenticates_with_the_secret_in_the_form(
    gateway, aiohttp_client, alice, secret
):
    """RFC 6749 §2.3.1 / RFC 7591 client_secret_post: a wrong or missing secret is 401 invalid_client with a
    WWW-Authenticate challenge (§5.2), and does not burn the code."""
    client = await aiohttp_client(gateway)
    registered = await register(client, token_endpoint_auth_method="client_secret_post")
    assert registered["token_endpoint_auth_method"] == "client_secret_post"
    code = await obtain_code(gateway, registered["client_id"])
    refused = await redeem(client, code, **({} if secret is None else {"client_secret": secret}))
    assert_error(refused, 401, "invalid_client")
    assert refused.headers["WWW-Authenticate"].startswith("Basic ")
    assert_tokens(await redeem(client, code, client_secret=registered["client_secret"]), scope="alpha:read")


async def test_client_secret_basic_client_authenticates_with_http_basic(gateway, aiohttp_client, alice):
    """RFC 6749 §2.3.1 / RFC 7591 client_secret_basic: a wrong password is 401 invalid_client + WWW-Authenticate."""
    client = await aiohttp_client(gateway)
    registered = await register(client, token_endpoint_auth_method="client_secret_basic")
    client_id, secret = registered["client_id"], registered["client_secret"]
    code = await obtain_code(gateway, client_id)
    refused = await redeem(client, code, headers=basic(client_id, "wrong-secret"))
    assert_error(refused, 401, "invalid_client")
    assert refused.headers["WWW-Authenticate"].startswith("Basic ")
    assert_tokens(await redeem(client, code, headers=basic(client_id, secret)), scope="alpha:read")


@pytest.mark.parametrize("header", ["Basic \x80", "Basic é29tZQ==", "Basic !!!!", "Basic bm9jb2xvbg==", "Basic /w=="])
@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect"])
async def test_malformed_basic_credentials_are_invalid_client_not_a_500(
    start_gateway, upstream, aiohttp_client, header, path
):
    """Found by tests/fuzz: a Basic header with non-ASCII text (b64decode's ValueError) was a 500. Any Basic
    header that does not decode to `id:secret` in UTF-8 is 401 invalid_client (RFC 6749 §2.3.1, §5.2)."""
    server = await start_gateway(
        [route("alpha", upstream.url)], oauth={"introspection": [{"name": "rs", "secret": "introspection-secret-0123"}]}
    )
    client = await aiohttp_client(server)
    reply = await client.post(
        path,
        data={"grant_type": "refresh_token", "refresh_token": "x", "token": "x"},
        headers={"Authorization": header},
    )
    body = await reply.json()
    assert reply.status == 401 and body["error"] == "invalid_client" and "WWW-Authenticate" in reply.headers


async def test_unknown_client_id_is_invalid_client(gateway, aiohttp_client, alice):
    """RFC 6749 §5.2: an unknown client fails authentication with 401 and a challenge."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    code = await obtain_code(gateway, registered["client_id"])
    refused = await redeem(client, code, client_id="mcpgw_c_no-such-client")
    assert_error(refused, 401, "invalid_client")
    assert "WWW-Authenticate" in refused.headers


@pytest.mark.parametrize(
    ("method", "presentation", "status"),
    [
        pytest.param("client_secret_basic", "basic", 200, id="basic-client-with-basic"),
        pytest.param("client_secret_basic", "post", 401, id="basic-client-with-form-secret"),
        pytest.param("client_secret_basic", "id-only", 401, id="basic-client-without-secret"),
        pytest.param("client_secret_basic", "basic-empty", 401, id="basic-client-with-empty-basic"),
        pytest.param("client_secret_post", "post", 200, id="post-client-with-form-secret"),
        pytest.param("client_secret_post", "basic", 401, id="post-client-with-basic"),
        pytest.param("client_secret_post", "post-empty", 401, id="post-client-with-empty-secret"),
        pytest.param("none", "id-only", 200, id="public-client-with-client-id"),
        pytest.param("none", "basic-empty", 200, id="public-client-with-empty-basic"),
        pytest.param("none", "post-empty", 200, id="public-client-with-empty-form-secret"),
        pytest.param("none", "post", 401, id="public-client-with-a-form-secret"),
        pytest.param("none", "basic", 401, id="public-client-with-a-basic-secret"),
    ],
)
async def test_a_client_authenticates_only_with_the_method_it_registered(
    gateway, aiohttp_client, alice, method, presentation, status
):
    """Issue 10 finding 20 / RFC 7591 §2 token_endpoint_auth_method (authlib does the same): client_secret_basic
    only with HTTP Basic, client_secret_post only with the form's secret, none with no secret. Tolerated for
    public clients: client_id in the form (the TS and PY SDKs) or Basic/a form field with an empty secret. Any other
    presentation is 401 invalid_client, and the code stays redeemable by the right one."""
    client = await aiohttp_client(gateway)
    registered = await register(client, token_endpoint_auth_method=method)
    client_id, secret = registered["client_id"], registered.get("client_secret", "a-secret-of-its-own-making")
    code = await obtain_code(gateway, client_id)
    form: dict[str, str] = {}
    headers: dict[str, str] = {}
    if presentation == "basic":
        headers = basic(client_id, secret)
    elif presentation == "basic-empty":
        headers = basic(client_id, "")
    elif presentation == "post":
        form = {"client_secret": secret}
    elif presentation == "post-empty":
        form = {"client_secret": ""}
    reply = await redeem(client, code, headers=headers, **form)
    if status == 401:
        assert_error(reply, 401, "invalid_client")
        assert reply.headers["WWW-Authenticate"].startswith("Basic ")
        right = basic(client_id, secret) if method == "client_secret_basic" else {}
        extra = {"client_secret": secret} if method == "client_secret_post" else {}
        reply = await redeem(client, code, headers=right, **extra)
    assert_tokens(reply, scope="alpha:read")


@pytest.mark.parametrize(("method", "wrong"), [("client_secret_basic", "post"), ("client_secret_post", "basic")])
async def test_revocation_also_requires_the_registered_method(gateway, aiohttp_client, alice, method, wrong):
    """RFC 7009 §2.1: /revoke authenticates clients as /token does; the wrong method revokes nothing."""
    client = await aiohttp_client(gateway)
    registered = await register(client, token_endpoint_auth_method=method)
    client_id, secret = registered["client_id"], registered["client_secret"]
    right_headers = basic(client_id, secret) if method == "client_secret_basic" else {}
    right_form = {"client_secret": secret} if method == "client_secret_post" else {}
    tokens = (await redeem(client, await obtain_code(gateway, client_id), headers=right_headers, **right_form)).body
    wrong_headers = basic(client_id, secret) if wrong == "basic" else {}
    wrong_form = {"client_secret": secret} if wrong == "post" else {}
    refused = await post_form(
        client,
        "/revoke",
        {"token": tokens["access_token"], "client_id": client_id, **wrong_form},
        headers=wrong_headers,
    )
    assert_error(refused, 401, "invalid_client")
    assert await mcp_status(client, "/alpha/mcp", tokens["access_token"]) == 200


# -- refresh_token grant -------------------------------------------------------------------------------------


async def test_refresh_rotates_to_a_new_refresh_token_that_works(gateway, aiohttp_client, alice):
    """TOK-3 (S26 "Token Theft", OAuth 2.1 §4.3.1): a new refresh token on every use; same scope and resource."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"])
    rotated = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert_tokens(rotated, scope="alpha:read")
    assert rotated.body["refresh_token"] != tokens["refresh_token"]
    assert rotated.body["access_token"] != tokens["access_token"]
    assert await mcp_status(client, "/alpha/mcp", rotated.body["access_token"]) == 200
    again = await refresh(client, registered["client_id"], rotated.body["refresh_token"])
    assert_tokens(again, scope="alpha:read")
    assert again.body["refresh_token"] not in (tokens["refresh_token"], rotated.body["refresh_token"])


async def test_rotated_out_refresh_token_within_the_grace_window_returns_the_same_successor(
    gateway, aiohttp_client, alice, clock
):
    """TOK-3 REC / RFC 9700 §4.14.2: racing or retrying clients get the same successor for `refresh_grace` (60 s);
    the family stays intact."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"])
    rotated = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert_tokens(rotated, scope="alpha:read")
    clock.now += 60
    retried = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert_tokens(retried, scope="alpha:read")
    assert retried.body["refresh_token"] == rotated.body["refresh_token"]
    assert await mcp_status(client, "/alpha/mcp", retried.body["access_token"]) == 200
    assert await mcp_status(client, "/alpha/mcp", rotated.body["access_token"]) == 200
    assert_tokens(await refresh(client, registered["client_id"], rotated.body["refresh_token"]), scope="alpha:read")


async def test_rotated_out_refresh_token_after_the_grace_window_revokes_the_whole_family(
    gateway, aiohttp_client, alice, clock
):
    """TOK-3 / RFC 9700 §4.14.2 (OAuth 2.1 §4.3.1): reuse of a rotated-out token revokes every token of the grant."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"])
    rotated = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert_tokens(rotated, scope="alpha:read")
    clock.now += 61
    assert_error(await refresh(client, registered["client_id"], tokens["refresh_token"]), 400, "invalid_grant")
    assert_error(await refresh(client, registered["client_id"], rotated.body["refresh_token"]), 400, "invalid_grant")
    assert await mcp_status(client, "/alpha/mcp", tokens["access_token"]) == 401
    assert await mcp_status(client, "/alpha/mcp", rotated.body["access_token"]) == 401


async def test_refresh_may_narrow_the_scope(scoped, aiohttp_client, alice):
    """RFC 6749 §6 (TOK-3): a refresh may ask for a subset of the granted scope."""
    client = await aiohttp_client(scoped)
    registered = await register(client)
    tokens = await obtain_tokens(client, scoped, registered["client_id"], scope="alpha:read alpha:write")
    assert tokens["scope"] == "alpha:read alpha:write"
    narrowed = await refresh(client, registered["client_id"], tokens["refresh_token"], scope="alpha:read")
    assert_tokens(narrowed, scope="alpha:read")
    assert await mcp_status(client, "/alpha/mcp", narrowed.body["access_token"]) == 200


async def test_refresh_may_not_widen_the_scope(scoped, aiohttp_client, alice):
    """RFC 6749 §6 (TOK-3): a scope not originally granted is invalid_scope; the refused refresh burns nothing."""
    client = await aiohttp_client(scoped)
    registered = await register(client)
    tokens = await obtain_tokens(client, scoped, registered["client_id"], scope="alpha:read")
    assert tokens["scope"] == "alpha:read"
    wider = await refresh(client, registered["client_id"], tokens["refresh_token"], scope="alpha:read alpha:write")
    assert_error(wider, 400, "invalid_scope")
    assert_tokens(await refresh(client, registered["client_id"], tokens["refresh_token"]), scope="alpha:read")


async def test_refresh_ignores_offline_access_and_scopes_no_route_knows(scoped, aiohttp_client, alice):
    """SCP-4 / SEP-2207 (our choice): `offline_access` and unknown scopes (claude.ai's `claudeai`) repeated on a
    refresh are ignored, as at /authorize; only a known scope beyond the grant counts as wider."""
    client = await aiohttp_client(scoped)
    registered = await register(client)
    tokens = await obtain_tokens(client, scoped, registered["client_id"], scope="alpha:read")
    lenient = await refresh(
        client, registered["client_id"], tokens["refresh_token"], scope="alpha:read offline_access claudeai"
    )
    assert_tokens(lenient, scope="alpha:read")


async def test_refresh_for_another_route_is_invalid_target(gateway, aiohttp_client, alice):
    """RFC 8707 §2.2 (TOK-3): a refresh keeps the grant's resource; another route is invalid_target."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"])
    reply = await refresh(
        client, registered["client_id"], tokens["refresh_token"], resource=str(gateway.make_url("/beta/mcp"))
    )
    assert_error(reply, 400, "invalid_target")


async def test_refresh_token_of_another_client_is_invalid_grant_and_stays_usable_by_its_owner(
    gateway, aiohttp_client, alice
):
    """RFC 6749 §6: the refresh token is bound to its client; for another client it does not exist."""
    client = await aiohttp_client(gateway)
    owner, other = await register(client), await register(client)
    tokens = await obtain_tokens(client, gateway, owner["client_id"])
    assert_error(await refresh(client, other["client_id"], tokens["refresh_token"]), 400, "invalid_grant")
    assert_tokens(await refresh(client, owner["client_id"], tokens["refresh_token"]), scope="alpha:read")


async def test_expired_refresh_token_is_invalid_grant(gateway, aiohttp_client, alice, clock):
    """TOK-4: the refresh family's idle lifetime (`refresh_token_ttl`) ends on the injected clock."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"])
    clock.now += gateway.app[SETTINGS_KEY].oauth.refresh_token_ttl
    assert_error(await refresh(client, registered["client_id"], tokens["refresh_token"]), 400, "invalid_grant")


# -- concurrency (real Redis) ------------------------------------------------------------------------------------


async def test_concurrent_redemptions_of_one_code_yield_at_most_one_token_response_and_no_working_token(
    gateway, aiohttp_client, alice
):
    """OAuth 2.1 §4.1.3 (single use, atomically): of 100 racing redemptions at most one gets tokens, the others
    invalid_grant. Those are replays, so the grant is revoked: a winner's tokens end up revoked too, and when the
    revocation lands before the winner has stored its tokens, the winner is refused as well (intended: a replayed
    code means a stolen code). Which of the two happens is timing; exactly one redemption is pinned in
    tests/store (consume_code)."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    code = await obtain_code(gateway, registered["client_id"])
    async with asyncio.timeout(30):
        replies = await asyncio.gather(*(redeem(client, code) for _ in range(100)))
    winners = [r for r in replies if r.status == 200]
    assert len(winners) <= 1, [r.body for r in winners]
    losers = [r for r in replies if r.status != 200]
    assert len(losers) == 100 - len(winners)
    for reply in losers:
        assert_error(reply, 400, "invalid_grant")
    for winner in winners:
        assert_tokens(winner, scope="alpha:read")
        assert await mcp_status(client, "/alpha/mcp", winner.body["access_token"]) == 401
        assert_error(await refresh(client, code.client_id, winner.body["refresh_token"]), 400, "invalid_grant")


async def test_concurrent_refreshes_of_one_token_rotate_once_and_share_the_successor(gateway, aiohttp_client, alice):
    """TOK-3 REC (grace window; Codex/Claude refresh races): 100 racing refreshes all succeed with one successor,
    and the family is intact afterwards."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"])
    async with asyncio.timeout(30):
        replies = await asyncio.gather(
            *(refresh(client, registered["client_id"], tokens["refresh_token"]) for _ in range(100))
        )
    for reply in replies:
        assert_tokens(reply, scope="alpha:read")
    successors = {r.body["refresh_token"] for r in replies}
    assert len(successors) == 1
    (successor,) = successors
    assert successor != tokens["refresh_token"]
    assert len({r.body["access_token"] for r in replies}) == 100
    assert await mcp_status(client, "/alpha/mcp", tokens["access_token"]) == 200
    assert await mcp_status(client, "/alpha/mcp", replies[-1].body["access_token"]) == 200
    after = await refresh(client, registered["client_id"], successor)
    assert_tokens(after, scope="alpha:read")
    assert await mcp_status(client, "/alpha/mcp", after.body["access_token"]) == 200


# -- /revoke (RFC 7009) -----------------------------------------------------------------------------------------


async def test_revoking_an_unknown_token_answers_200(gateway, aiohttp_client):
    """RFC 7009 §2.2 (REV-1): invalid tokens do not cause an error response."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    reply = await post_form(
        client, "/revoke", {"token": "mcpgw_at_no-such-token", "client_id": registered["client_id"]}
    )
    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Access-Control-Allow-Origin"] == "*"


async def test_revoked_access_token_is_refused_on_the_mcp_route(gateway, aiohttp_client, alice):
    """RFC 7009 §2.1 (REV-1)."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"])
    assert await mcp_status(client, "/alpha/mcp", tokens["access_token"]) == 200
    reply = await post_form(
        client,
        "/revoke",
        {"token": tokens["access_token"], "token_type_hint": "access_token", "client_id": registered["client_id"]},
    )
    assert reply.status == 200
    assert await mcp_status(client, "/alpha/mcp", tokens["access_token"]) == 401


async def test_revoking_a_refresh_token_revokes_its_access_tokens(gateway, aiohttp_client, alice):
    """RFC 7009 §2.1 SHOULD (REV-1): the refresh token and every access token of its grant die together."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"])
    rotated = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert_tokens(rotated, scope="alpha:read")
    reply = await post_form(
        client,
        "/revoke",
        {
            "token": rotated.body["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": registered["client_id"],
        },
    )
    assert reply.status == 200
    assert await mcp_status(client, "/alpha/mcp", tokens["access_token"]) == 401
    assert await mcp_status(client, "/alpha/mcp", rotated.body["access_token"]) == 401
    assert_error(await refresh(client, registered["client_id"], rotated.body["refresh_token"]), 400, "invalid_grant")


async def test_revoking_another_clients_token_answers_200_but_revokes_nothing(gateway, aiohttp_client, alice):
    """RFC 7009 §2.1: the server verifies the token was issued to the requesting client; 200 either way (§2.2),
    so the answer tells a stranger nothing."""
    client = await aiohttp_client(gateway)
    owner, other = await register(client), await register(client)
    tokens = await obtain_tokens(client, gateway, owner["client_id"])
    for token in (tokens["access_token"], tokens["refresh_token"]):
        reply = await post_form(client, "/revoke", {"token": token, "client_id": other["client_id"]})
        assert reply.status == 200
    assert await mcp_status(client, "/alpha/mcp", tokens["access_token"]) == 200
    assert_tokens(await refresh(client, owner["client_id"], tokens["refresh_token"]), scope="alpha:read")


async def test_revoke_preflight_allows_any_origin(gateway, aiohttp_client):
    """CORS-1: OPTIONS /revoke answers `*` and allows the Authorization, Content-Type and MCP-Protocol-Version
    headers."""
    client = await aiohttp_client(gateway)
    response = await client.options(
        "/revoke",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "mcp-protocol-version"} <= allowed
    assert "Access-Control-Allow-Credentials" not in response.headers


# -- /introspect (RFC 7662) -----------------------------------------------------------------------------------------


@pytest.fixture
async def introspecting(start_gateway, upstream):
    return await start_gateway([route("alpha", upstream.url), route("beta", upstream.url)], oauth=INTROSPECTION)


@pytest.mark.parametrize(
    "credentials",
    [
        None,
        ("upstream", "wrong-secret"),
        ("stranger", "s3cret-introspect"),
        ("upstream", ""),
        ("stranger", "\0" * 32),
        ("", "\0" * 32),
        ("upstream", "\0" * 32),
    ],
)
async def test_introspection_without_valid_credentials_is_401(introspecting, aiohttp_client, alice, credentials):
    """RFC 7662 §2.1: the endpoint requires authorization (ours: HTTP Basic from `oauth.introspection`)."""
    client = await aiohttp_client(introspecting)
    registered = await register(client)
    tokens = await obtain_tokens(client, introspecting, registered["client_id"])
    headers = basic(*credentials) if credentials else None
    reply = await post_form(client, "/introspect", {"token": tokens["access_token"]}, headers=headers)
    assert_error(reply, 401, "invalid_client")
    assert reply.headers["WWW-Authenticate"].startswith("Basic ")
    assert "active" not in reply.body


async def test_introspection_describes_an_active_access_token(introspecting, aiohttp_client, alice, clock):
    """RFC 7662 §2.2: active, client_id, scope, sub, aud (the canonical resource, RFC 8707) and exp."""
    client = await aiohttp_client(introspecting)
    registered = await register(client)
    issued_at = clock.now
    tokens = await obtain_tokens(client, introspecting, registered["client_id"])
    reply = await post_form(
        client, "/introspect", {"token": tokens["access_token"]}, headers=basic("upstream", "s3cret-introspect")
    )
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.body["active"] is True
    assert reply.body["client_id"] == registered["client_id"]
    assert reply.body["scope"] == "alpha:read"
    assert reply.body["sub"] == "local:alice"
    assert reply.body["aud"] == f"http://127.0.0.1:{introspecting.port}/alpha/mcp"
    assert reply.body["exp"] == int(issued_at + 3600)


async def test_introspection_says_inactive_for_revoked_or_unknown_tokens(introspecting, aiohttp_client, alice):
    """RFC 7662 §2.2: anything not currently usable is just {"active": false}, nothing else."""
    client = await aiohttp_client(introspecting)
    registered = await register(client)
    tokens = await obtain_tokens(client, introspecting, registered["client_id"])
    revoked = await post_form(
        client, "/revoke", {"token": tokens["access_token"], "client_id": registered["client_id"]}
    )
    assert revoked.status == 200
    for token in (tokens["access_token"], "mcpgw_at_no-such-token"):
        reply = await post_form(client, "/introspect", {"token": token}, headers=basic("upstream", "s3cret-introspect"))
        assert reply.status == 200
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.body == {"active": False}


@pytest.mark.parametrize("credentials", [("x", "\0" * 32), ("upstream", "s3cret-introspect"), None])
async def test_introspection_without_configured_callers_does_not_exist(gateway, aiohttp_client, alice, credentials):
    """Issue 10, finding 4: unknown names were compared with 32 NUL bytes, so `x` + "\\0"*32 introspected tokens
    with `oauth.introspection: []`. An empty list closes the endpoint: 404 whatever is presented."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"])
    headers = basic(*credentials) if credentials else None
    reply = await post_form(client, "/introspect", {"token": tokens["access_token"]}, headers=headers)
    assert reply.status == 404, reply.body
    assert "active" not in reply.body


# -- /userinfo ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route_name", ["alpha", "beta"])
async def test_userinfo_refuses_a_token_bound_to_an_mcp_route(gateway, aiohttp_client, alice, route_name):
    """RFC 8707 / RFC 6750 §3.1 (issue 10, finding 20): /userinfo checks the audience like every MCP route does; a
    token bound to one MCP route is a token for that route only, so /userinfo answers 401 invalid_token with a
    challenge, and the claims of the user are not disclosed."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"], route=route_name)
    assert await mcp_status(client, f"/{route_name}/mcp", tokens["access_token"]) == 200  # a good token
    reply = await read(await client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}))
    assert reply.status == 401, reply.body
    assert reply.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.body["error"] == "invalid_token"
    assert "sub" not in reply.body and "email" not in reply.body


async def test_userinfo_answers_tokens_of_a_grant_that_asked_for_openid(gateway, aiohttp_client, alice):
    """OIDC Core §5.3 / RFC 8707 (issue 10, finding 20): `openid` makes /userinfo a second audience of the grant's
    tokens, refreshed ones included; the route stays the other audience and no other route accepts them."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"], scope="alpha:read openid")
    assert tokens["scope"] == "alpha:read openid"
    assert await mcp_status(client, "/alpha/mcp", tokens["access_token"]) == 200
    assert await mcp_status(client, "/beta/mcp", tokens["access_token"]) == 401
    refreshed = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert refreshed.status == 200 and refreshed.body["scope"] == "alpha:read openid"
    for access in (tokens["access_token"], refreshed.body["access_token"]):
        reply = await read(await client.get("/userinfo", headers={"Authorization": f"Bearer {access}"}))
        assert reply.status == 200, reply.body
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.body["sub"] == "local:alice" and reply.body["preferred_username"] == "alice"


async def test_userinfo_without_token_is_401_with_a_bearer_challenge(gateway, aiohttp_client):
    """RFC 6750 §3.1: no credentials -> a challenge without an error code."""
    client = await aiohttp_client(gateway)
    reply = await read(await client.get("/userinfo"))
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"] == "Bearer"
    assert reply.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("authorization", ["Bearer mcpgw_at_not-a-real-token", "Bearer ###"])
async def test_userinfo_with_a_bad_token_is_401_invalid_token(gateway, aiohttp_client, authorization):
    """RFC 6750 §3.1: a presented but unusable (unknown or malformed) token -> 401 with error="invalid_token" in
    the WWW-Authenticate challenge (§3: the header is a MUST on every 401)."""
    client = await aiohttp_client(gateway)
    reply = await read(await client.get("/userinfo", headers={"Authorization": authorization}))
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.body["error"] == "invalid_token"


async def test_revoked_access_token_is_refused_by_userinfo(gateway, aiohttp_client, alice):
    """RFC 6750 §3.1: revoked is as good as unknown."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"])
    await post_form(client, "/revoke", {"token": tokens["access_token"], "client_id": registered["client_id"]})
    reply = await read(await client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}))
    assert reply.status == 401
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]


# -- CORS-1 ---------------------------------------------------------------------------------------------------------


async def test_token_answers_carry_cors_for_any_origin_on_success_and_error(gateway, aiohttp_client, alice):
    """CORS-1: browser clients (MCP Inspector) must read /token answers, errors included; no credentials."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    origin = {"Origin": "https://inspector.example"}
    code = await obtain_code(gateway, registered["client_id"])
    answers = [
        await redeem(client, code, headers=origin),  # 200
        await redeem(client, code, headers=origin),  # replay: 400 invalid_grant
        await redeem(client, code, headers=origin, client_id="mcpgw_c_no-such-client"),  # 401 invalid_client
        await read(await client.post("/token", json={"grant_type": "authorization_code"}, headers=origin)),  # 400
    ]
    assert [a.status for a in answers] == [200, 400, 401, 400]
    for answer in answers:
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in answer.headers


async def test_token_preflight_allows_any_origin(gateway, aiohttp_client):
    """CORS-1: OPTIONS /token with the headers browser SDKs send."""
    client = await aiohttp_client(gateway)
    response = await client.options(
        "/token",
        headers={
            "Origin": "https://inspector.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "mcp-protocol-version"} <= allowed
