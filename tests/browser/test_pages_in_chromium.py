"""The pages as a person meets them, in a real headless Chromium with JavaScript off: sign in and consent through the
gateway's /authorize, see the grant on the user's own /account page, revoke it, see it gone and the token dead; the
admin console signs in with the admin token, finds the user, revokes from their page, removes a client, rotates a
key. Every page carries the configured branding, screenshotted in the light and the dark scheme."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from gateway.accounts import add_user
from gateway.admin.listener import create_admin_app
from gateway.app_state import SETTINGS_KEY
from tests.browser.conftest import new_page, snap
from tests.conftest import route
from tests.support.oauth_client import REDIRECT, authorize_url, new_verifier
from tests.support.token_flow import PASSWORD

ADMIN_TOKEN = "admin-token-for-the-browser-test-0123456789"
BRANDING = {
    "product_name": "Acme MCP",
    "accent_color": "#c2410c",
    "accent_color_dark": "#fb923c",
    "logo_url": "data:image/svg+xml;base64,PHN2ZyB4bWxucz0naHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmcnIHdpZHRoPSczMicgaGVpZ2h0"
    "PSczMic+PGNpcmNsZSBjeD0nMTYnIGN5PScxNicgcj0nMTQnIGZpbGw9JyNjMjQxMGMnLz48L3N2Zz4=",
    "support_url": "https://support.acme.example/mcp",
    "terms_url": "https://acme.example/terms",
}
ACCENT = {"light": "rgb(194, 65, 12)", "dark": "rgb(251, 146, 60)"}


@pytest.fixture
async def branded(start_gateway, upstream, store):
    server = await start_gateway([route("notes", upstream.url)], branding=BRANDING, admin={"token": ADMIN_TOKEN})
    await add_user(store, "alice", PASSWORD, email="alice@example.com", groups=("eng",), now=0)
    return server


async def register(server: TestServer, name: str) -> str:
    async with aiohttp.ClientSession() as http:
        body = {
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "client_name": name,
            "grant_types": ["authorization_code", "refresh_token"],
        }
        async with http.post(str(server.make_url("/register")), json=body) as response:
            assert response.status == 201
            return str((await response.json())["client_id"])


async def redeem(server: TestServer, client_id: str, code: str, verifier: str) -> dict[str, str]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT,
        "client_id": client_id,
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(str(server.make_url("/token")), data=form) as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())


async def sign_in_and_consent(page: Page, server: TestServer, client_id: str, folder: Path, scheme: str) -> dict:
    """The authorization code flow in the browser; the redirect back to the client is answered by the test."""
    arrived: list[str] = []

    async def client_callback(route_, request) -> None:  # (the client's loopback redirect URI)
        arrived.append(request.url)
        await route_.fulfill(status=200, content_type="text/plain", body="back at the client")

    await page.route(re.compile("^" + re.escape(REDIRECT)), client_callback)
    verifier = new_verifier()
    await page.goto(authorize_url(server, client_id, verifier=verifier, route="notes"))
    assert not arrived, arrived
    await expect(page).to_have_title(re.compile("Acme MCP"))
    await branded_everywhere(page, scheme)
    await snap(page, folder, f"login-{scheme}")
    await page.fill("input[name=username]", "alice")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]:has-text('Sign in')")
    await expect(page.locator("button[value=approve]")).to_be_visible()
    await branded_everywhere(page, scheme)
    await snap(page, folder, f"consent-{scheme}")
    await page.click("button[value=approve]")
    await expect(page.locator("body")).to_have_text("back at the client")
    code = parse_qs(urlsplit(arrived[-1]).query)["code"][0]
    return await redeem(server, client_id, code, verifier)


async def branded_everywhere(page: Page, scheme: str) -> None:
    """The product name in the header, the logo, the footer links, the accent colour of the scheme."""
    await expect(page.locator("header.brand")).to_contain_text("Acme MCP")
    await expect(page.locator("header.brand img")).to_have_attribute("src", BRANDING["logo_url"])
    await expect(page.locator("footer.brand a", has_text="Help")).to_have_attribute("href", BRANDING["support_url"])
    await expect(page.locator("footer.brand a", has_text="Terms")).to_have_attribute("href", BRANDING["terms_url"])
    buttons = page.locator("button:not(.secondary)")
    if await buttons.count():
        await expect(buttons.first).to_have_css("background-color", ACCENT[scheme])


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_a_user_revokes_an_app_on_their_own_page_and_its_tokens_stop_working(
    chromium: Browser, branded: TestServer, screenshots: Path, scheme: str
):
    client_id = await register(branded, "Acme Notes App")
    context, page = await new_page(chromium, scheme)
    tokens = await sign_in_and_consent(page, branded, client_id, screenshots, scheme)
    async with aiohttp.ClientSession(base_url=str(branded.make_url(""))) as http:
        assert await _mcp(http, tokens["access_token"]) == 200

    await page.goto(str(branded.make_url("/account")))
    await branded_everywhere(page, scheme)
    row = page.locator("tr", has_text="Acme Notes App")
    await expect(row).to_contain_text("notes")
    await snap(page, screenshots, f"account-{scheme}")
    await row.locator("button", has_text="Revoke").click()
    await expect(page.locator("p.notice")).to_contain_text("Access revoked")
    await expect(page.locator("body")).to_contain_text("No application has access")
    await expect(page.locator("tr", has_text="Acme Notes App")).to_have_count(0)
    await snap(page, screenshots, f"account-revoked-{scheme}")

    async with aiohttp.ClientSession(base_url=str(branded.make_url(""))) as http:
        assert await _mcp(http, tokens["access_token"]) == 401
        form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id}
        async with http.post("/token", data=form) as response:
            assert response.status == 400 and (await response.json())["error"] == "invalid_grant"

    await page.goto(str(branded.make_url("/authorize?client_id=nobody")))  # an error page, branded too
    await branded_everywhere(page, scheme)
    await snap(page, screenshots, f"error-{scheme}")
    await context.close()


async def _mcp(http: aiohttp.ClientSession, token: str) -> int:
    from tests.support.mcp_wire import modern_call

    headers, body = modern_call(1, "add", {"a": 2, "b": 3})
    async with http.post("/notes/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"}) as r:
        await r.read()
        return r.status


async def test_the_user_page_refuses_a_form_without_its_csrf_token_and_another_users_grant(
    chromium: Browser, branded: TestServer, screenshots: Path, store
):
    client_id = await register(branded, "Bob's App")
    await add_user(store, "bob", PASSWORD, email="bob@example.com", groups=(), now=0)
    context, page = await new_page(chromium)
    tokens = await sign_in_and_consent(page, branded, client_id, screenshots, "light")
    await page.goto(str(branded.make_url("/account")))
    grant = await page.locator("input[name=grant]").first.get_attribute("value")
    forged = await page.request.post(str(branded.make_url("/account/revoke")), form={"grant": grant or ""})
    assert forged.status == 403
    other = await page.request.post(
        str(branded.make_url("/account/revoke")),
        form={
            "grant": "0" * 32,
            "csrf_token": await page.locator("input[name=csrf_token]").first.get_attribute("value") or "",
        },
    )
    assert other.status == 404
    async with aiohttp.ClientSession(base_url=str(branded.make_url(""))) as http:
        assert await _mcp(http, tokens["access_token"]) == 200  # nothing was revoked
    await context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_admin_console_finds_a_user_revokes_their_grant_and_manages_clients_and_keys(
    chromium: Browser, branded: TestServer, screenshots: Path, store, scheme: str
):
    client_id = await register(branded, "Console Test App")
    user_context, user_page = await new_page(chromium, scheme)
    tokens = await sign_in_and_consent(user_page, branded, client_id, screenshots, scheme)
    await user_context.close()

    settings = branded.app[SETTINGS_KEY]
    console = TestServer(create_admin_app(settings, store, branded.app), host="localhost")
    await console.start_server()
    try:
        context, page = await new_page(chromium, scheme)
        base = str(console.make_url("")).rstrip("/")
        await page.goto(base + "/")
        await expect(page).to_have_url(base + "/login")
        await branded_everywhere(page, scheme)
        await snap(page, screenshots, f"console-login-{scheme}")
        await page.fill("input[name=token]", "not-the-token")
        await page.click("button[type=submit]")
        await expect(page.locator(".error")).to_contain_text("not the admin token")
        await page.fill("input[name=token]", ADMIN_TOKEN)
        await page.click("button[type=submit]")
        await expect(page.locator("h1")).to_have_text("Overview")
        await branded_everywhere(page, scheme)
        await snap(page, screenshots, f"console-overview-{scheme}")

        await page.fill("input[name=q]", "alice")
        await page.click("form.search button")
        await expect(page.locator("td a", has_text="alice")).to_be_visible()
        await snap(page, screenshots, f"console-users-{scheme}")
        await page.click("td a:has-text('alice')")
        grant_row = page.locator("tr", has_text=client_id)
        await expect(grant_row).to_contain_text("active")
        await snap(page, screenshots, f"console-user-{scheme}")
        await grant_row.locator("button", has_text="Revoke").click()
        await expect(page.locator("p.notice")).to_have_text("Revoked.")
        await expect(page.locator("tr", has_text=client_id)).to_contain_text("revoked")
        async with aiohttp.ClientSession(base_url=str(branded.make_url(""))) as http:
            assert await _mcp(http, tokens["access_token"]) == 401

        await page.click("button:has-text('Revoke all of alice')")
        await expect(page.locator("p.notice")).to_contain_text("Every grant")

        await page.click("nav >> text=Clients")
        await page.fill("input[name=q]", "Console Test")
        await page.click("form.search button")
        row = page.locator("tr", has_text="Console Test App")
        await expect(row).to_have_count(1)
        await snap(page, screenshots, f"console-clients-{scheme}")
        await row.locator("button", has_text="Remove").click()
        await expect(page.locator("p.notice")).to_have_text("Removed.")
        await expect(page.locator("tr", has_text="Console Test App")).to_have_count(0)

        await page.click("nav >> text=Routes")
        await expect(page.locator("tr", has_text="notes")).to_contain_text("reachable")
        await snap(page, screenshots, f"console-routes-{scheme}")
        await page.click("nav >> text=Signing keys")
        await page.click("button:has-text('Rotate')")
        await expect(page.locator("p.notice")).to_contain_text("new signing key")
        await expect(page.locator("td", has_text="yes")).to_have_count(1)
        await snap(page, screenshots, f"console-keys-{scheme}")

        # a form posted without the session's CSRF token changes nothing
        forged = await page.request.post(base + "/users/alice/remove", form={})
        assert forged.status == 403
        await page.click("button:has-text('Sign out')")
        await expect(page).to_have_url(base + "/login")
        await page.goto(base + "/users")
        await expect(page).to_have_url(base + "/login")
        await context.close()
    finally:
        await console.close()
