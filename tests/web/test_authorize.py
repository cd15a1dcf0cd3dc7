"""`/authorize` (RFC 6749 §4.1.1-4.1.2.1, RFC 7636, RFC 8252 §7.3, RFC 8707, RFC 9207; MCP AUTHZ-1..8)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from gateway.accounts import add_user
from tests.conftest import route
from tests.support.headless_oauth import Browser, parse_forms
from tests.support.oauth_client import REDIRECT, authorize_url, new_verifier, register, relative


@pytest.fixture
async def alice(store, clock):
    await add_user(store, "alice", "correct-horse-battery", email="alice@example.com", now=clock.now)


def query(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


async def test_code_redirect_carries_code_state_and_iss_once(gateway, aiohttp_client, alice):
    """AUTHZ-8 / RFC 9207: 302 to the registered URI with exactly one code, state and iss; never error."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    result = await Browser("alice", "correct-horse-battery").authorize(
        authorize_url(gateway, registered["client_id"], verifier=new_verifier()))
    assert set(result) == {"code", "state", "iss"}
    assert result["iss"] == f"http://127.0.0.1:{gateway.port}"


async def test_unknown_client_or_redirect_gets_an_error_page_not_a_redirect(gateway, aiohttp_client):
    """AUTHZ-3 (OAuth 2.1 §4.1.2.1): an untrusted redirect target is never redirected to."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    for url in (authorize_url(gateway, "no-such-client", verifier=new_verifier()),
                authorize_url(gateway, registered["client_id"], verifier=new_verifier(),
                              redirect_uri="https://evil.example/callback")):
        response = await client.get(relative(url), allow_redirects=False)
        assert response.status == 400
        assert response.content_type == "text/html"
        assert "Location" not in response.headers
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_loopback_redirect_may_use_another_port(gateway, aiohttp_client, alice):
    """AUTHZ-4 (RFC 8252 §7.3): http://127.0.0.1 with any port matches; path must still match."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    ok = await Browser("alice", "correct-horse-battery").authorize(authorize_url(
        gateway, registered["client_id"], verifier=new_verifier(), redirect_uri="http://127.0.0.1:50999/callback"))
    assert "code" in ok
    wrong_path = await client.get(relative(authorize_url(gateway, registered["client_id"], verifier=new_verifier(),
                                                         redirect_uri="http://127.0.0.1:50999/other")),
                                  allow_redirects=False)
    assert wrong_path.status == 400


@pytest.mark.parametrize("extra, error", [
    ({"code_challenge": ""}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"resource": "https://elsewhere.example/mcp"}, "invalid_target"),
    ({"resource": "http://127.0.0.1:1/alpha/mcp#frag"}, "invalid_target"),
])
async def test_bad_parameters_redirect_back_with_error_state_and_iss(gateway, aiohttp_client, extra, error):
    """AUTHZ-2/5/8: once the redirect is trusted, errors go back to the client with state and iss."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    response = await client.get(relative(authorize_url(gateway, registered["client_id"], verifier="v" * 43,
                                                       **extra)), allow_redirects=False)
    assert response.status == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    params = query(location)
    assert params["error"] == [error]
    assert params["state"] == ["st-vvvvvv"]
    assert params["iss"] == [f"http://127.0.0.1:{gateway.port}"]


async def test_wrong_password_keeps_the_login_form_and_says_so(gateway, aiohttp_client, alice):
    client = await aiohttp_client(gateway)
    registered = await register(client)
    page = await client.get(relative(authorize_url(gateway, registered["client_id"], verifier=new_verifier())))
    form = parse_forms(await page.text())[0]
    answer = await client.post(form["action"], data={**form["fields"], "username": "alice", "password": "nope"},
                               allow_redirects=False)
    assert answer.status == 401
    assert "Wrong username or password" in await answer.text()


async def test_forms_without_the_session_csrf_token_are_refused(gateway, aiohttp_client, alice):
    """CSRF on every form: a forged POST (no session cookie or wrong token) is refused with 403."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    page = await client.get(relative(authorize_url(gateway, registered["client_id"], verifier=new_verifier())))
    form = parse_forms(await page.text())[0]
    forged = await client.post(form["action"], data={**form["fields"], "csrf_token": "forged",
                                                     "username": "alice", "password": "correct-horse-battery"})
    assert forged.status == 403
    async with aiohttp.ClientSession() as stranger:  # right token, but not this browser's session
        other = await stranger.post(str(gateway.make_url(form["action"])), data={
            **form["fields"], "username": "alice", "password": "correct-horse-battery"})
        assert other.status == 403


async def test_session_cookie_is_httponly_and_samesite_lax(gateway, aiohttp_client):
    client = await aiohttp_client(gateway)
    registered = await register(client)
    page = await client.get(relative(authorize_url(gateway, registered["client_id"], verifier=new_verifier())))
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("mcpgw_session=")  # __Host- + Secure when public_url is https
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie


async def test_deny_redirects_access_denied(gateway, aiohttp_client, alice):
    client = await aiohttp_client(gateway)
    registered = await register(client)
    result = await Browser("alice", "correct-horse-battery", decision="deny").authorize(
        authorize_url(gateway, registered["client_id"], verifier=new_verifier()))
    assert result["error"] == "access_denied" and result["iss"] == f"http://127.0.0.1:{gateway.port}"


async def test_consent_is_remembered_and_asked_again_when_scopes_widen(start_gateway, upstream, aiohttp_client,
                                                                        alice):
    """AUTHZ-6 (our choice): remembered per (user, client, route, scopes); wider scopes ask again."""
    server = await start_gateway([route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"])])
    client = await aiohttp_client(server)
    registered = await register(client)
    browser = Browser("alice", "correct-horse-battery")
    first = await browser.authorize(authorize_url(server, registered["client_id"], verifier=new_verifier(),
                                                  scope="alpha:read"))
    assert "code" in first and len(browser.pages) == 2
    again = await browser.authorize(authorize_url(server, registered["client_id"], verifier=new_verifier(),
                                                  scope="alpha:read"))
    assert "code" in again and len(browser.pages) == 2  # no page at all
    wider = await browser.authorize(authorize_url(server, registered["client_id"], verifier=new_verifier(),
                                                  scope="alpha:read alpha:write"))
    assert "code" in wider and len(browser.pages) == 3
    assert "alpha:write" in browser.pages[2]


async def test_missing_resource_with_several_routes_lets_the_user_pick(gateway, aiohttp_client, alice):
    """Contract / spec §12(c): no resource and several routes -> the consent page offers each route."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    beta = str(gateway.make_url("/beta/mcp"))
    browser = Browser("alice", "correct-horse-battery", resource=beta)
    result = await browser.authorize(authorize_url(gateway, registered["client_id"], verifier=new_verifier(),
                                                   route=None))
    assert "code" in result
    consent = parse_forms(browser.pages[-1])[0]
    assert consent["options"]["resource"] == [str(gateway.make_url("/alpha/mcp")), beta]


async def test_consent_page_names_client_redirect_host_and_warns_for_loopback(gateway, aiohttp_client, alice):
    """CIMD-6 / S26: show the redirect URI host; warn when the client only returns to this computer."""
    client = await aiohttp_client(gateway)
    registered = await register(client, client_name="Loopback Tool")
    browser = Browser("alice", "correct-horse-battery")
    await browser.authorize(authorize_url(gateway, registered["client_id"], verifier=new_verifier()))
    consent = browser.pages[-1]
    assert "Loopback Tool" in consent and "127.0.0.1" in consent and "own computer" in consent
