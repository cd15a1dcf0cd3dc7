"""The authorization_code grant's redirect_uri rule (RFC 6749 §4.1.3; issue 10 #20): required at /token when the
authorization request carried one, and then identical; optional when it was omitted (one registered URI)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from gateway.accounts import add_user
from tests.support.headless_oauth import Browser
from tests.support.oauth_client import REDIRECT, authorize_url, new_verifier, register
from tests.support.token_flow import PASSWORD, Code, token_request


@pytest.fixture
async def alice(store, clock):
    await add_user(store, "alice", PASSWORD, email="alice@example.com", now=clock.now)


async def code_for(server, client_id: str, *, send_redirect_uri: bool) -> Code:
    verifier = new_verifier()
    url = authorize_url(server, client_id, verifier=verifier)
    if not send_redirect_uri:
        parts = urlsplit(url)
        url = parts._replace(
            query=urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "redirect_uri"])
        ).geturl()
    result = await Browser("alice", PASSWORD).authorize(url)
    assert "code" in result, result
    return Code(result["code"], verifier, client_id)


@pytest.mark.parametrize(
    ("sent_at_authorize", "sent_at_token", "status"),
    [
        pytest.param(True, None, 400, id="sent-then-omitted"),
        pytest.param(True, REDIRECT, 200, id="sent-then-same"),
        pytest.param(True, "http://127.0.0.1:50999/callback", 400, id="sent-then-other-port"),
        pytest.param(False, None, 200, id="omitted-then-omitted"),
        pytest.param(False, REDIRECT, 200, id="omitted-then-the-registered-one"),
        pytest.param(False, "https://elsewhere.example/cb", 400, id="omitted-then-another"),
    ],
)
async def test_redirect_uri_at_the_token_endpoint_follows_the_authorization_request(
    gateway, aiohttp_client, alice, sent_at_authorize, sent_at_token, status
):
    client = await aiohttp_client(gateway)
    registered = await register(client)  # exactly one redirect URI: /authorize may omit it (RFC 6749 §3.1.2.3)
    code = await code_for(gateway, registered["client_id"], send_redirect_uri=sent_at_authorize)
    form = {
        "grant_type": "authorization_code",
        "code": code.code,
        "code_verifier": code.verifier,
        "client_id": code.client_id,
    }
    if sent_at_token is not None:
        form["redirect_uri"] = sent_at_token
    reply = await token_request(client, **form)
    assert reply.status == status, reply.body
    if status == 400:
        assert reply.error == "invalid_grant"
