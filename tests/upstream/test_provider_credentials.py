"""Upstream credentials from an OAuth provider rather than from an MCP server's own authorization server.

- `upstream_auth: oauth` with a plain provider's endpoints configured (GitHub-shaped: the loopback stand-in of
  tests.support.identity_providers): after consent at the gateway the browser goes on to the provider, comes back
  to `/upstream/callback`, the gateway redeems the code (client_secret_basic, PKCE S256) and sends the provider's
  token upstream on every request of that route.
- `upstream_auth: provider_token`: the access token of the user's own sign-in at the gateway through an OpenID
  provider (oidc-provider-mock, a real process), refreshed there with its refresh token when it expires.

oidc-provider-mock issues a refresh token with every code (unless started with --no-refresh-token), no
`offline_access` needed; its access tokens last 3600 s (`expires_in`), by its own real clock, while the gateway's
injected clock decides when the gateway refreshes. On refresh it issues a new access token, drops the old one and
keeps the refresh token (authlib: no rotation)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gateway.accounts import add_user
from gateway.app_state import METRICS_KEY
from gateway.oauth.pkce import s256
from tests.conftest import route
from tests.proxy.test_upstream_auth import exchange_auth
from tests.support.headless_oauth import Browser, MemoryStorage, oauth_provider, parse_forms
from tests.support.identity_providers import GitHubStandIn, github_stand_in, oidc_provider
from tests.support.mcp_wire import modern_call
from tests.support.oauth_client import REDIRECT, authorize_url, new_verifier
from tests.support.token_service import token_service
from tests.upstream.flows import call_echo, innermost

PASSWORD = "correct-horse-battery"
FORBIDDEN = -31403  # gateway.mcp.jsonrpc.FORBIDDEN
LATER = 4000  # seconds: past the provider's access tokens (3600 s), within the gateway's own (a day, below)


async def tool_call(server, path: str, token: str) -> tuple[int, dict[str, Any]]:
    """A raw 2026-07-28 tools/call of echo_headers with the gateway token `token`: (status, JSON body)."""
    headers, body = modern_call(1, "echo_headers", {})
    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            server.make_url(path), json=body, headers={**headers, "Authorization": f"Bearer {token}"}
        )
        return answer.status, await answer.json(content_type=None)


def counted(server, route_name: str, outcome: str) -> float:
    child = server.app[METRICS_KEY].held_credentials.children.get((route_name, outcome))
    return child.value if child is not None else 0.0


def bearer(seen: dict[str, str]) -> str:
    scheme, _, token = seen["authorization"].partition(" ")
    assert scheme == "Bearer" and token, seen["authorization"]
    return token


# -- a plain OAuth provider (GitHub) ------------------------------------------------------------------------------


@pytest.fixture
async def github():
    async with github_stand_in("gh-client", "gh-secret") as stand_in:
        yield stand_in


def github_route(upstream, github: GitHubStandIn, **auth: Any) -> dict[str, Any]:
    upstream_auth = {
        "type": "oauth",
        "authorization_endpoint": f"{github.url}/login/oauth/authorize",
        "token_endpoint": f"{github.url}/login/oauth/access_token",
        "client_id": "gh-client",
        "client_secret": "gh-secret",
        "scopes": ["read:user", "repo"],
        **auth,
    }
    return route("repos", upstream.url, upstream_auth=upstream_auth)


def github_browser() -> Browser:
    # (no provider buttons at this gateway: the password form; `provider` lets the walk sign in at GitHub as octo)
    return Browser("alice", PASSWORD, provider="github", idp_subject="octo")


async def connected_through_github(start_gateway, upstream, github, store, clock, **auth: Any):
    """alice signs in at the gateway with the SDK client and is sent on to GitHub in the same flow."""
    server = await start_gateway([github_route(upstream, github, **auth)])
    await add_user(store, "alice", PASSWORD, now=clock.now)
    url = str(server.make_url("/repos/mcp"))
    browser, storage = github_browser(), MemoryStorage()
    seen = await call_echo(url, oauth_provider(url, browser, storage))
    assert len(github.tokens) == 1, github.tokens
    (token,) = github.tokens
    return server, seen, token, browser, storage


async def test_sign_in_goes_on_to_github_and_the_upstream_gets_the_token_github_issued(
    start_gateway, upstream, github, store, clock
):
    server, seen, token, browser, storage = await connected_through_github(
        start_gateway, upstream, github, store, clock
    )
    assert token.startswith("gho_") and github.tokens[token] == "octo"
    assert seen["authorization"] == f"Bearer {token}"  # exactly what GitHub issued
    assert storage.tokens is not None
    own = storage.tokens.access_token
    assert all(own not in value for value in seen.values())  # the gateway's own token never goes upstream
    assert seen["x-forwarded-user"] == "local:alice"
    (back,) = browser.provider_callbacks  # GitHub sent the browser back to the gateway's callback
    assert back.startswith(f"http://127.0.0.1:{server.port}/upstream/callback/repos?")
    sealed = await store.load_credential("local:alice", "route:repos")
    assert sealed is not None and token not in sealed  # kept sealed in the vault, not as the token
    assert list(await store.credentials_of("local:alice")) == ["route:repos"]


async def test_github_saw_client_secret_basic_pkce_s256_and_the_gateways_callback(
    start_gateway, upstream, github, store, clock
):
    server, *_ = await connected_through_github(start_gateway, upstream, github, store, clock)
    callback = f"http://127.0.0.1:{server.port}/upstream/callback/repos"
    (asked,) = github.authorizations
    assert asked["response_type"] == "code" and asked["client_id"] == "gh-client"
    assert asked["redirect_uri"] == callback
    assert asked["scope"] == "read:user repo"
    assert asked["code_challenge_method"] == "S256" and asked["state"]
    assert "resource" not in asked  # (a plain provider: no RFC 8707 resource unless configured)
    (redeemed,) = github.token_requests
    assert redeemed.client_auth == "client_secret_basic" and redeemed.client_id == "gh-client"
    assert "client_secret" not in redeemed.form  # (HTTP Basic only, never also in the body)
    assert redeemed.form["grant_type"] == "authorization_code"
    assert redeemed.form["redirect_uri"] == callback
    verifier = redeemed.form["code_verifier"]
    assert 43 <= len(verifier) <= 128 and s256(verifier) == asked["code_challenge"]
    assert "application/json" in redeemed.accept  # (GitHub answers form-encoded unless asked for JSON)


async def test_a_configured_header_and_format_carry_the_github_token(start_gateway, upstream, github, store, clock):
    _, seen, token, *_ = await connected_through_github(
        start_gateway, upstream, github, store, clock, header="X-GitHub-Token", format="token {token}"
    )
    assert seen["x-github-token"] == f"token {token}"
    assert "authorization" not in seen  # the gateway's own token is not passed on in its place


async def test_a_second_application_of_a_connected_user_is_not_sent_to_github_again(
    start_gateway, upstream, github, store, clock
):
    server, _, token, browser, _ = await connected_through_github(start_gateway, upstream, github, store, clock)
    url = str(server.make_url("/repos/mcp"))
    seen = await call_echo(url, oauth_provider(url, browser, MemoryStorage()))  # another client, same person
    assert seen["authorization"] == f"Bearer {token}"
    assert len(github.authorizations) == 1 and len(github.token_requests) == 1


async def test_a_refusal_github_style_200_with_error_ends_in_a_page_and_no_code(
    start_gateway, upstream, github, store, clock
):
    """GitHub answers a refused token request with 200 and an `error` field: no credential, no code for the
    client, a page naming the refusal (never the secret)."""
    server = await start_gateway([github_route(upstream, github, client_secret="not-the-secret")])
    await add_user(store, "alice", PASSWORD, now=clock.now)
    client_id = await registered_client(server)
    browser = github_browser()
    result = await browser.authorize(authorize_url(server, client_id, verifier=new_verifier(), route="repos"))
    assert result == {"status": "502"}
    assert "incorrect_client_credentials" in browser.pages[-1]
    assert "not-the-secret" not in browser.pages[-1]
    (redeemed,) = github.token_requests
    assert redeemed.client_auth == "client_secret_basic"
    assert github.tokens == {}
    assert await store.credentials_of("local:alice") == {}


async def registered_client(server) -> str:
    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            server.make_url("/register"),
            json={
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
                "client_name": "raw test client",
                "grant_types": ["authorization_code", "refresh_token"],
            },
        )
        assert answer.status == 201, await answer.text()
        return str((await answer.json())["client_id"])


# -- the user's own sign-in provider (provider_token) -------------------------------------------------------------


@pytest.fixture(scope="session")
def oidc(tmp_path_factory):
    with oidc_provider(tmp_path_factory.mktemp("oidc")) as provider:
        yield provider


def corp(oidc) -> dict[str, Any]:
    return {
        "name": "corp",
        "type": "oidc",
        "issuer": oidc.issuer,
        "client_id": "mcp-gateway",
        "client_secret": "gateway-secret",
    }


async def provider_token_gateway(start_gateway, upstream, oidc):
    """A route that sends the user's corp token upstream; local accounts stay on (the default)."""
    return await start_gateway(
        [route("files", upstream.url, upstream_auth={"type": "provider_token", "provider": "corp"})],
        login={"providers": [corp(oidc)]},
        oauth={"access_token_ttl": 86400},  # the client's own gateway token outlives the clock moves below
    )


async def userinfo(oidc, token: str) -> tuple[int, Any]:
    """The provider's own opinion of an access token: its userinfo endpoint."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.get(f"{oidc.issuer}/userinfo", headers=headers) as answer:
        return answer.status, await answer.json(content_type=None) if answer.status == 200 else None


async def signed_in_through_corp(start_gateway, upstream, oidc, subject: str):
    await oidc.add_user(subject, email=f"{subject}@example.com", email_verified=True, name=subject.title())
    server = await provider_token_gateway(start_gateway, upstream, oidc)
    url = str(server.make_url("/files/mcp"))
    browser, storage = Browser(subject, "", provider="corp", idp_subject=subject), MemoryStorage()
    seen = await call_echo(url, oauth_provider(url, browser, storage))
    assert seen["x-forwarded-user"] == f"corp:{subject}"
    assert len(browser.provider_callbacks) == 1
    return server, url, browser, storage, seen


async def test_the_upstream_gets_the_access_token_of_the_users_sign_in_at_the_provider(
    start_gateway, upstream, oidc, store
):
    server, _, _, storage, seen = await signed_in_through_corp(start_gateway, upstream, oidc, "carol")
    token = bearer(seen)
    assert storage.tokens is not None and token != storage.tokens.access_token  # not the gateway's own
    status, claims = await userinfo(oidc, token)
    assert status == 200 and claims["sub"] == "carol"  # the provider's access token, for this person
    sealed = await store.load_credential("corp:carol", "provider:corp")
    assert sealed is not None and token not in sealed
    assert counted(server, "files", "held") >= 1


async def test_an_expired_provider_token_is_refreshed_at_the_provider_with_its_refresh_token(
    start_gateway, upstream, oidc, store, clock
):
    server, url, browser, storage, seen = await signed_in_through_corp(start_gateway, upstream, oidc, "dave")
    first = bearer(seen)
    sealed = await store.load_credential("corp:dave", "provider:corp")
    clock.now += LATER  # (the gateway's clock: past expires_in; the provider's own clock has not moved)
    second = bearer(await call_echo(url, oauth_provider(url, browser, storage)))
    assert second != first
    assert counted(server, "files", "refreshed") == 1
    assert (await userinfo(oidc, second))[0] == 200
    assert (await userinfo(oidc, first))[0] != 200  # the provider replaced it (the mock: 400 access_denied)
    assert await store.load_credential("corp:dave", "provider:corp") != sealed
    assert len(browser.provider_callbacks) == 1  # refreshed without the person
    third = bearer(await call_echo(url, oauth_provider(url, browser, storage)))
    assert third == second and counted(server, "files", "refreshed") == 1  # fresh now: used as it is


async def test_a_refresh_the_provider_refuses_drops_the_token_and_asks_to_sign_in_again(
    start_gateway, upstream, oidc, store, clock
):
    server, _, _, storage, _ = await signed_in_through_corp(start_gateway, upstream, oidc, "erin")
    async with aiohttp.ClientSession() as http:  # the provider ends erin's tokens (refresh token included)
        ended = await http.post(f"{oidc.issuer}/users/erin/revoke-tokens")
        assert ended.status == 204
    clock.now += LATER
    assert storage.tokens is not None
    status, reply = await tool_call(server, "/files/mcp", storage.tokens.access_token)
    assert status == 403 and reply["error"]["code"] == FORBIDDEN, reply
    assert "Sign in again with corp" in reply["error"]["message"]
    assert counted(server, "files", "revoked") == 1
    assert await store.load_credential("corp:erin", "provider:corp") is None


async def test_after_the_provider_token_is_dropped_signing_in_again_goes_through_the_provider(
    start_gateway, upstream, oidc, store
):
    """The refusal says: sign in again with corp (reconnect the MCP server in the application). When the person
    does (a new authorization in the same browser, whose gateway session is still alive), the walk must pass
    through the provider again, so the gateway holds a provider token again and the call works; a code straight
    from the session would only meet the same refusal again.

    The held token is ended in the store here, standing for every way it ends (a refresh the provider refused,
    as above; one that expired without a refresh token; the upstream's 401): moving the gateway's clock would
    make the provider's next id_token look expired to it (oidc-provider-mock stamps `exp` by the real clock)."""
    _, url, browser, storage, _ = await signed_in_through_corp(start_gateway, upstream, oidc, "frank")
    assert await store.delete_credential("corp:frank", "provider:corp")
    with pytest.raises(BaseException) as refused:  # the client as it is
        await call_echo(url, oauth_provider(url, browser, storage))
    assert "Sign in again with corp" in innermost(refused.value).error.message
    seen = await call_echo(url, oauth_provider(url, browser, MemoryStorage()))  # reconnected: a new authorization
    assert len(browser.provider_callbacks) == 2  # through the provider again
    assert seen["x-forwarded-user"] == "corp:frank"
    assert (await userinfo(oidc, bearer(seen)))[0] == 200


async def password_session(server, username: str, password: str) -> aiohttp.CookieJar:
    """A browser signed in at the gateway with a password (Browser itself would press the provider's button,
    which this gateway's login page offers first)."""
    jar = aiohttp.CookieJar(unsafe=True)
    client_id = await registered_client(server)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        page = await http.get(authorize_url(server, client_id, verifier=new_verifier(), route="files"))
        assert page.status == 200
        form = next(f for f in parse_forms(await page.text()) if f["action"] == "/authorize/login")
        data = {**form["fields"], "username": username, "password": password}
        signed = await http.post(server.make_url(form["action"]), data=data, allow_redirects=False)
        assert signed.status == 200 and "Signed in as" in await signed.text()  # (this client's consent page)
    return jar


async def test_a_user_signed_in_with_a_password_gets_a_403_naming_the_provider(
    start_gateway, upstream, oidc, store, clock
):
    server = await provider_token_gateway(start_gateway, upstream, oidc)
    await add_user(store, "alice", PASSWORD, now=clock.now)
    browser = Browser("alice", PASSWORD, jar=await password_session(server, "alice", PASSWORD))
    url, storage = str(server.make_url("/files/mcp")), MemoryStorage()
    with pytest.raises(BaseException) as refused:  # the SDK client signs in, then its first request is refused
        await call_echo(url, oauth_provider(url, browser, storage))
    error = innermost(refused.value).error
    assert error.code == FORBIDDEN and "corp" in error.message
    assert browser.provider_callbacks == []
    assert storage.tokens is not None
    status, reply = await tool_call(server, "/files/mcp", storage.tokens.access_token)
    assert status == 403 and reply["error"]["code"] == FORBIDDEN
    assert "Sign in again with corp to use files" in reply["error"]["message"]
    assert await store.credentials_of("local:alice") == {}


async def test_a_token_exchange_of_the_users_provider_token_gives_the_upstream_the_services_token(
    start_gateway, upstream, oidc, store, clock
):
    """`token_exchange` with `subject_provider`: the subject token is the user's own access token from their sign-in
    provider (an STS that trusts that IdP: Entra on-behalf-of, Keycloak), not the gateway's assertion; a new
    provider token (refreshed) is exchanged again, however long the service's token would last."""
    await oidc.add_user("erin", email="erin@example.com", email_verified=True)
    async with token_service() as sts:
        sts.userinfo_url, sts.expires_in = f"{oidc.issuer}/userinfo", 10**6
        auth = {**exchange_auth(sts.url), "subject_provider": "corp", "max_cache_seconds": 10**6}
        server = await start_gateway(
            [route("files", upstream.url, upstream_auth=auth)],
            login={"providers": [corp(oidc)]},
            oauth={"access_token_ttl": 86400},
        )
        url = str(server.make_url("/files/mcp"))
        browser, storage = Browser("erin", "", provider="corp", idp_subject="erin"), MemoryStorage()
        seen = await call_echo(url, oauth_provider(url, browser, storage))
        assert seen["authorization"] == "Bearer sts.erin.1"  # the service's token, for the provider's erin
        (exchange,) = sts.exchanges
        assert exchange["subject_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
        assert exchange["sub"] == "erin"
        assert (await call_echo(url, oauth_provider(url, browser, storage)))["authorization"] == "Bearer sts.erin.1"
        clock.now += 4000  # the provider's token is refreshed (a new one): exchanged again
        seen = await call_echo(url, oauth_provider(url, browser, storage))
    assert seen["authorization"] == "Bearer sts.erin.2" and len(sts.exchanges) == 2
