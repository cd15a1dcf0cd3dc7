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
        authorize_url(gateway, registered["client_id"], verifier=new_verifier())
    )
    assert set(result) == {"code", "state", "iss"}
    assert result["iss"] == f"http://127.0.0.1:{gateway.port}"


async def test_unknown_client_or_redirect_gets_an_error_page_not_a_redirect(gateway, aiohttp_client):
    """AUTHZ-3 (OAuth 2.1 §4.1.2.1): an untrusted redirect target is never redirected to."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    for url in (
        authorize_url(gateway, "no-such-client", verifier=new_verifier()),
        authorize_url(
            gateway, registered["client_id"], verifier=new_verifier(), redirect_uri="https://evil.example/callback"
        ),
    ):
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
    ok = await Browser("alice", "correct-horse-battery").authorize(
        authorize_url(
            gateway, registered["client_id"], verifier=new_verifier(), redirect_uri="http://127.0.0.1:50999/callback"
        )
    )
    assert "code" in ok
    wrong_path = await client.get(
        relative(
            authorize_url(
                gateway, registered["client_id"], verifier=new_verifier(), redirect_uri="http://127.0.0.1:50999/other"
            )
        ),
        allow_redirects=False,
    )
    assert wrong_path.status == 400


BAD_PARAMETERS = [
    ({"code_challenge": ""}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"resource": "https://elsewhere.example/mcp"}, "invalid_target"),
    ({"resource": "http://127.0.0.1:1/alpha/mcp#frag"}, "invalid_target"),
]
PRE_REGISTERED = {"client_id": "desktop-app", "client_name": "Desktop App", "redirect_uris": [REDIRECT]}


@pytest.fixture
async def with_clients(start_gateway, upstream):
    """Route alpha, one pre-registered public client, and a CIMD-capable gateway."""
    return await start_gateway([route("alpha", upstream.url)], clients=[PRE_REGISTERED])


@pytest.mark.parametrize("extra, error", BAD_PARAMETERS)
async def test_bad_parameters_redirect_a_pre_registered_client_back_with_error_state_and_iss(
    with_clients, aiohttp_client, extra, error
):
    """AUTHZ-2/5/8: for a client whose redirect URIs the administrator configured, errors go back to the client
    with state and iss (RFC 6749 §4.1.2.1, RFC 9207)."""
    client = await aiohttp_client(with_clients)
    response = await client.get(
        relative(authorize_url(with_clients, "desktop-app", verifier="v" * 43, **extra)), allow_redirects=False
    )
    assert response.status == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    params = query(location)
    assert params["error"] == [error]
    assert params["state"] == ["st-vvvvvv"]
    assert params["iss"] == [f"http://127.0.0.1:{with_clients.port}"]


@pytest.mark.parametrize("extra, error", BAD_PARAMETERS)
async def test_bad_parameters_of_a_self_registered_client_get_an_error_page_not_a_redirect(
    with_clients, aiohttp_client, extra, error
):
    """Issue 10 #11 (RFC 9700 §4.11.2): anyone can register a DCR client with any redirect URI, so redirecting its
    request errors would make /authorize an open redirector; the person gets an error page naming the error."""
    client = await aiohttp_client(with_clients)
    registered = await register(client, redirect_uris=["https://attacker.example/landing"])
    response = await client.get(
        relative(
            authorize_url(
                with_clients,
                registered["client_id"],
                verifier="v" * 43,
                redirect_uri="https://attacker.example/landing",
                **extra,
            )
        ),
        allow_redirects=False,
    )
    assert response.status == 400 and response.content_type == "text/html"
    assert "Location" not in response.headers
    assert error in await response.text()


async def test_bad_parameters_of_a_cimd_client_get_an_error_page_not_a_redirect(
    start_gateway, upstream, aiohttp_client, tmp_path
):
    """Issue 10 #11: a CIMD document is published by whoever controls its host; same rule as DCR."""
    from tests.support.cimd_server import cimd_server

    async with cimd_server(tmp_path) as documents:
        server = await start_gateway(
            [route("alpha", upstream.url)], cimd={"allow_hosts": ["localhost"], "ca_file": str(documents.ca_file)}
        )
        client_id = documents.client_document("/client.json")
        client = await aiohttp_client(server)
        response = await client.get(
            relative(authorize_url(server, client_id, verifier="v" * 43, response_type="token")), allow_redirects=False
        )
        assert response.status == 400 and "Location" not in response.headers
        assert "unsupported_response_type" in await response.text()


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"state": "s" * 2049}, id="long-state"),
        pytest.param({"scope": " ".join(f"s{i}" for i in range(33))}, id="too-many-scopes"),
        pytest.param({"resource": "http://127.0.0.1/alpha/mcp?" + "a" * 2048}, id="long-resource"),
        pytest.param({"nonce": "n" * 2049}, id="long-extension-parameter"),
        pytest.param([("resource", "http://127.0.0.1/alpha/mcp")] * 9, id="too-many-resources"),
        pytest.param([("client_id", "desktop-app")], id="repeated-client-id"),
        pytest.param([("redirect_uri", REDIRECT)], id="repeated-redirect-uri"),
        pytest.param([("state", "one"), ("state", "two")], id="repeated-state"),
        pytest.param([(f"x{i}", "1") for i in range(40)], id="too-many-parameters"),
    ],
)
async def test_oversized_or_repeated_parameters_get_an_error_page(with_clients, aiohttp_client, params):
    """Issue 10 (bound client-controlled input; RFC 6749 §3.1: parameters at most once): refused with a page, for
    any client (even a pre-registered one: nothing in such a request is trusted), never stored."""
    from urllib.parse import urlencode

    client = await aiohttp_client(with_clients)
    base = {
        "response_type": "code",
        "client_id": "desktop-app",
        "redirect_uri": REDIRECT,
        "code_challenge": "c" * 43,
        "code_challenge_method": "S256",
    }
    pairs = list(base.items())
    if isinstance(params, dict):
        pairs = [(k, v) for k, v in pairs if k not in params] + list(params.items())
    else:
        pairs += params
    response = await client.get("/authorize?" + urlencode(pairs), allow_redirects=False)
    assert response.status == 400 and response.content_type == "text/html"
    assert "Location" not in response.headers and "Set-Cookie" not in response.headers


async def test_wrong_password_keeps_the_login_form_and_says_so(gateway, aiohttp_client, alice):
    client = await aiohttp_client(gateway)
    registered = await register(client)
    page = await client.get(relative(authorize_url(gateway, registered["client_id"], verifier=new_verifier())))
    form = parse_forms(await page.text())[0]
    answer = await client.post(
        form["action"], data={**form["fields"], "username": "alice", "password": "nope"}, allow_redirects=False
    )
    assert answer.status == 401
    assert "Wrong username or password" in await answer.text()


async def test_forms_without_the_session_csrf_token_are_refused(gateway, aiohttp_client, alice):
    """CSRF on every form: a forged POST (no session cookie or wrong token) is refused with 403."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    page = await client.get(relative(authorize_url(gateway, registered["client_id"], verifier=new_verifier())))
    form = parse_forms(await page.text())[0]
    forged = await client.post(
        form["action"],
        data={**form["fields"], "csrf_token": "forged", "username": "alice", "password": "correct-horse-battery"},
    )
    assert forged.status == 403
    async with aiohttp.ClientSession() as stranger:  # right token, but not this browser's session
        other = await stranger.post(
            str(gateway.make_url(form["action"])),
            data={**form["fields"], "username": "alice", "password": "correct-horse-battery"},
        )
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
        authorize_url(gateway, registered["client_id"], verifier=new_verifier())
    )
    assert result["error"] == "access_denied" and result["iss"] == f"http://127.0.0.1:{gateway.port}"


async def test_consent_is_remembered_and_asked_again_when_scopes_widen(start_gateway, upstream, aiohttp_client, alice):
    """AUTHZ-6 (our choice): remembered per (user, client, route, scopes); wider scopes ask again."""
    server = await start_gateway([route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"])])
    client = await aiohttp_client(server)
    registered = await register(client)
    browser = Browser("alice", "correct-horse-battery")
    first = await browser.authorize(
        authorize_url(server, registered["client_id"], verifier=new_verifier(), scope="alpha:read")
    )
    assert "code" in first and len(browser.pages) == 2
    again = await browser.authorize(
        authorize_url(server, registered["client_id"], verifier=new_verifier(), scope="alpha:read")
    )
    assert "code" in again and len(browser.pages) == 2  # no page at all
    wider = await browser.authorize(
        authorize_url(server, registered["client_id"], verifier=new_verifier(), scope="alpha:read alpha:write")
    )
    assert "code" in wider and len(browser.pages) == 3
    assert "alpha:write" in browser.pages[2]


async def test_missing_resource_with_several_routes_lets_the_user_pick(gateway, aiohttp_client, alice):
    """Contract / spec §12(c): no resource and several routes -> the consent page offers each route."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    beta = str(gateway.make_url("/beta/mcp"))
    browser = Browser("alice", "correct-horse-battery", resource=beta)
    result = await browser.authorize(
        authorize_url(gateway, registered["client_id"], verifier=new_verifier(), route=None)
    )
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


async def test_remembered_consent_of_a_public_loopback_client_holds_only_for_the_approved_port(
    gateway, aiohttp_client, alice
):
    """Issue 10 #6 (RFC 8252 §8.6): a public client's id is no secret and loopback redirects match on any port, so
    another local process could start /authorize on its own port and get a code silently; the remembered approval
    stands in for the page only for the exact redirect URI, port included, that was approved."""
    client = await aiohttp_client(gateway)
    registered = await register(client)
    browser = Browser("alice", "correct-horse-battery")

    async def authorize(port: int) -> dict[str, str]:
        return await browser.authorize(
            authorize_url(
                gateway,
                registered["client_id"],
                verifier=new_verifier(),
                redirect_uri=f"http://127.0.0.1:{port}/callback",
            )
        )

    assert "code" in await authorize(33418) and len(browser.pages) == 2  # login, consent
    assert "code" in await authorize(33418) and len(browser.pages) == 2  # remembered: no page
    assert "code" in await authorize(50999) and len(browser.pages) == 3  # another port: asked again
    assert 'name="decision"' in browser.pages[2] and "127.0.0.1:50999" in browser.pages[2]
    assert "code" in await authorize(50999) and len(browser.pages) == 3  # now approved too
    assert "code" in await authorize(33418) and len(browser.pages) == 3  # and the first one still is


async def test_consent_page_says_how_each_kind_of_client_is_known(with_clients, aiohttp_client, alice):
    """Issue 10 #19 (MCP security best practices, confused deputy): a DCR client's name is whatever its registrant
    typed, so it appears in quotes and marked unverified; a pre-registered client by its configured name."""
    client = await aiohttp_client(with_clients)
    registered = await register(client, client_name="Acme Notes Desktop")
    browser = Browser("alice", "correct-horse-battery")
    await browser.authorize(authorize_url(with_clients, registered["client_id"], verifier=new_verifier()))
    dcr_page = browser.pages[-1]
    assert "<h1>Allow <bdi>&#34;Acme Notes Desktop&#34;</bdi> to use" in dcr_page and "(unverified)" in dcr_page
    await browser.authorize(authorize_url(with_clients, "desktop-app", verifier=new_verifier()))
    configured = browser.pages[-1]
    assert "<h1>Allow <bdi>Desktop App</bdi> to use" in configured and "(pre-registered)" in configured
    assert "unverified" not in configured


async def test_client_names_are_isolated_and_stored_hidden_characters_never_reach_a_page(
    with_clients, aiohttp_client, alice, store
):
    """Security review 2, R11: every client-chosen name sits in <bdi> (a right-to-left name cannot reorder the
    sentence around it); a DCR client stored before names were checked, with an override in its name, is shown
    as an unnamed application."""
    from gateway.store.records import ClientRecord

    client = await aiohttp_client(with_clients)
    registered = await register(client, client_name="Acme Notes Desktop")
    browser = Browser("alice", "correct-horse-battery")
    await browser.authorize(authorize_url(with_clients, registered["client_id"], verifier=new_verifier()))
    assert "<h1>Allow <bdi>&#34;Acme Notes Desktop&#34;</bdi> to use" in browser.pages[-1]
    legacy = ClientRecord(
        client_id="mcpgw_c_legacy_name",
        kind="dcr",
        token_endpoint_auth_method="none",
        redirect_uris=(REDIRECT,),
        client_name="Acme \u202eexe.setoN",
    )
    await store.save_client(legacy, 3600)
    await browser.authorize(authorize_url(with_clients, legacy.client_id, verifier=new_verifier()))
    page = browser.pages[-1]
    assert "<h1>Allow <bdi>An unnamed application</bdi> to use" in page
    assert "\u202e" not in page and "setoN" not in page


async def test_consent_page_names_a_cimd_client_by_the_host_of_its_document(
    start_gateway, upstream, aiohttp_client, alice, tmp_path
):
    """Issue 10 #19: the host that serves the metadata document is what the gateway verified (over https); the
    name inside it is only what the document says."""
    from tests.support.cimd_server import cimd_server

    async with cimd_server(tmp_path) as documents:
        server = await start_gateway(
            [route("alpha", upstream.url)], cimd={"allow_hosts": ["localhost"], "ca_file": str(documents.ca_file)}
        )
        client_id = documents.client_document("/client.json", client_name="Totally Official App")
        browser = Browser("alice", "correct-horse-battery")
        await browser.authorize(authorize_url(server, client_id, verifier=new_verifier()))
        page = browser.pages[-1]
        assert "<h1>Allow <bdi>localhost</bdi> to use" in page and "(verified)" in page
        assert "&ldquo;<bdi>Totally Official App</bdi>&rdquo;" in page and client_id in page


async def test_consent_page_shows_the_configured_scope_descriptions(start_gateway, upstream, aiohttp_client, alice):
    """Issue 10 #19: `routes[].scope_descriptions` says in words what each scope allows."""
    server = await start_gateway(
        [
            route(
                "alpha",
                upstream.url,
                scopes=["alpha:read", "alpha:write"],
                scope_descriptions={"alpha:read": "Read your notes"},
            )
        ]
    )
    client = await aiohttp_client(server)
    registered = await register(client)
    browser = Browser("alice", "correct-horse-battery")
    await browser.authorize(
        authorize_url(server, registered["client_id"], verifier=new_verifier(), scope="alpha:read alpha:write")
    )
    page = browser.pages[-1]
    assert "<li>Read your notes <small>(alpha:read)</small></li>" in page
    assert "<li>alpha:write</li>" in page  # no description configured: the scope itself
