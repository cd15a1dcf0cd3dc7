"""The /authorize page forms share one preamble (gateway.web.forms.pending_form; issue 11, Structure 3): the same
refusal, the same HTML error page and status, at every form. CSRF on every form (OAuth 2.1 §7.8 / RFC 6749
§10.12); a parked request belongs to the browser session that started it (our choice, against login CSRF)."""

from __future__ import annotations

import pytest

from tests.conftest import route
from tests.support.headless_oauth import parse_forms
from tests.support.oauth_client import authorize_url, new_verifier, register, relative

FORMS = ["/authorize/login", "/authorize/signup", "/authorize/provider", "/authorize/consent"]


@pytest.fixture
async def browser(start_gateway, upstream, aiohttp_client):
    """A browser parked at the login page of a gateway with every form switched on; returns it and the page's
    hidden fields (csrf_token, request_id)."""
    server = await start_gateway(
        [route("alpha", upstream.url)],
        allow={"providers": ["local"]},
        login={"signup": {"enabled": True, "email_domains": ["example.com"]}},
    )
    client = await aiohttp_client(server)
    registered = await register(client)
    page = await client.get(relative(authorize_url(server, registered["client_id"], verifier=new_verifier())))
    return client, parse_forms(await page.text())[0]["fields"]


async def refusal(response) -> tuple[int, str]:
    text = await response.text()
    assert response.content_type == "text/html" and "Location" not in response.headers
    return response.status, text


@pytest.mark.parametrize("action", FORMS)
async def test_an_unreadable_form_is_refused_alike_everywhere(browser, action):
    client, _ = browser
    status, text = await refusal(await client.post(action, data=b"x=1", headers={"Content-Type": "text/plain"}))
    assert status == 400 and "Unreadable form" in text


@pytest.mark.parametrize("action", FORMS)
async def test_a_forged_csrf_token_is_refused_alike_everywhere(browser, action):
    client, fields = browser
    status, text = await refusal(await client.post(action, data={**fields, "csrf_token": "forged", "provider": "x"}))
    assert status == 403 and "Session expired" in text


@pytest.mark.parametrize("action", FORMS)
async def test_an_unknown_request_is_refused_alike_everywhere(browser, action):
    client, fields = browser
    status, text = await refusal(await client.post(action, data={**fields, "request_id": "gone", "provider": "x"}))
    assert status == 400 and "Request expired" in text


async def test_consent_from_a_signed_out_session_without_a_provider_is_refused(browser):
    """Consent needs who is consenting, or the provider the person signs in with next (consent comes first)."""
    client, fields = browser
    status, text = await refusal(await client.post("/authorize/consent", data={**fields, "decision": "approve"}))
    assert status == 403 and "Session expired" in text
