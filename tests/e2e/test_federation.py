"""Sign-in through an identity provider, and per-route access rules (issue #4; MCP AUTHZ-6/7)."""

from __future__ import annotations

import json

import aiohttp
import pytest

from gateway.app import create_app
from gateway.ports import free_port
from tests.conftest import make_settings, route
from tests.e2e.test_oauth_flow import call_echo
from tests.support.headless_oauth import Browser, MemoryStorage, oauth_provider
from tests.support.identity_providers import GitHubUser, github_stand_in, oidc_provider
from tests.support.oauth_client import authorize_url, new_verifier, register
from tests.support.token_flow import Code, mcp_status, redeem


@pytest.fixture(scope="session")
def idp(tmp_path_factory):
    with oidc_provider(tmp_path_factory.mktemp("oidc")) as provider:
        yield provider


def corp(idp, **extra):
    return {
        "name": "corp",
        "type": "oidc",
        "issuer": idp.issuer,
        "client_id": "mcp-gateway",
        "client_secret": "gateway-secret",
        "groups_claim": "groups",
        **extra,
    }


@pytest.fixture
async def federated(start_gateway, upstream, idp):
    await idp.add_user("alice", email="alice@example.com", email_verified=True, name="Alice", groups=["platform"])
    await idp.add_user("bob", email="bob@example.com", email_verified=True, name="Bob", groups=["sales"])
    await idp.add_user("eve", email="eve@example.com", email_verified=False, groups=[])
    return await start_gateway(
        [
            route("notes", upstream.url, allow={"email_domains": ["example.com"]}),
            route("deploy", upstream.url, allow={"groups": ["corp:platform"]}),
        ],
        login={"local": False, "providers": [corp(idp)]},
    )


async def test_sdk_client_signs_in_through_the_oidc_provider(federated):
    """The whole MCP flow with the provider in the middle; the upstream sees the provider identity."""
    url = str(federated.make_url("/deploy/mcp"))
    browser = Browser("alice", "", provider="corp", idp_subject="alice")
    seen = await call_echo(url, oauth_provider(url, browser, MemoryStorage()))
    assert seen["x-forwarded-user"] == "corp:alice"  # provider:subject, never the email
    assert seen["x-forwarded-email"] == "alice@example.com"
    assert seen["x-forwarded-groups"] == "platform"
    assert len(browser.provider_callbacks) == 1


async def test_consent_is_asked_before_the_provider_and_denial_never_reaches_it(federated, aiohttp_client):
    """AUTHZ-6/7: consent for this client comes first; a denial redirects access_denied and creates no state."""
    client = await aiohttp_client(federated)
    registered = await register(client)
    browser = Browser("alice", "", provider="corp", idp_subject="alice", decision="deny")
    result = await browser.authorize(
        authorize_url(federated, registered["client_id"], verifier=new_verifier(), route="deploy")
    )
    assert result["error"] == "access_denied"
    assert 'name="provider" value="corp"' in browser.pages[-1]  # the consent page carried the provider
    assert browser.provider_callbacks == []


async def test_user_outside_the_allowed_group_gets_a_denied_page_and_no_code(federated, aiohttp_client):
    """Issue #4 item 3: deny by default once a rule is set; the page names the account used and how to switch."""
    client = await aiohttp_client(federated)
    registered = await register(client)
    bob = Browser("bob", "", provider="corp", idp_subject="bob")
    denied = await bob.authorize(
        authorize_url(federated, registered["client_id"], verifier=new_verifier(), route="deploy")
    )
    assert denied == {"status": "403"}
    assert "bob@example.com" in bob.pages[-1] and "corp" in bob.pages[-1] and 'action="/logout"' in bob.pages[-1]
    allowed = await bob.authorize(
        authorize_url(federated, registered["client_id"], verifier=new_verifier(), route="notes")
    )
    assert "code" in allowed  # same person, other route: the email-domain rule admits him


async def test_unverified_email_does_not_count_for_email_rules(federated, aiohttp_client):
    """Issue #4 item 2: only verified email addresses are used (eve's is unverified)."""
    client = await aiohttp_client(federated)
    registered = await register(client)
    eve = Browser("eve", "", provider="corp", idp_subject="eve")
    denied = await eve.authorize(
        authorize_url(federated, registered["client_id"], verifier=new_verifier(), route="notes")
    )
    assert denied == {"status": "403"}


async def test_replayed_provider_callback_is_refused(federated, aiohttp_client):
    """AUTHZ-7: the provider state is single use."""
    client = await aiohttp_client(federated)
    registered = await register(client)
    browser = Browser("alice", "", provider="corp", idp_subject="alice")
    result = await browser.authorize(
        authorize_url(federated, registered["client_id"], verifier=new_verifier(), route="deploy")
    )
    assert "code" in result
    async with aiohttp.ClientSession(cookie_jar=browser.jar) as http:
        replay = await http.get(browser.provider_callbacks[0], allow_redirects=False)
        assert replay.status == 400
        assert "already used" in await replay.text()


async def test_rules_are_applied_on_every_request(
    federated, upstream, idp, aiohttp_client, aiohttp_server, redis_url, key_prefix, clock
):
    """Issue #4 item 3: a token issued under older rules stops working on its next use once the rules change
    (here: a second gateway instance, same public_url and store, deployed with a stricter config)."""
    client = await aiohttp_client(federated)
    registered = await register(client)
    verifier = new_verifier()
    result = await Browser("bob", "", provider="corp", idp_subject="bob").authorize(
        authorize_url(federated, registered["client_id"], verifier=verifier, route="notes")
    )
    tokens = await redeem(client, Code(result["code"], verifier, registered["client_id"]))
    assert await mcp_status(client, "/notes/mcp", tokens.body["access_token"]) == 200
    settings = make_settings(
        federated.port,
        redis_url,
        key_prefix,
        [route("notes", upstream.url, allow={"groups": ["corp:platform"]})],
        login={"local": False, "providers": [corp(idp)]},
    )
    stricter = await aiohttp_server(create_app(settings, clock=clock), port=free_port())
    strict_client = await aiohttp_client(stricter)
    assert await mcp_status(strict_client, "/notes/mcp", tokens.body["access_token"]) == 403


async def test_github_sign_in_maps_id_verified_email_and_team_groups(start_gateway, upstream, aiohttp_client):
    """GitHub: numeric id as subject, only the verified primary email, groups `org` and `org/team`."""
    async with github_stand_in("gh-client", "gh-secret") as github:
        github.users["octo"] = GitHubUser(
            101,
            "octo",
            "Octo Cat",
            [
                {"email": "octo@old.example", "primary": False, "verified": True},
                {"email": "octo@acme.example", "primary": True, "verified": True},
            ],
            orgs=["acme"],
            teams=[("acme", "platform")],
        )
        github.users["mallory"] = GitHubUser(
            666,
            "mallory",
            "Mallory",
            [{"email": "mallory@acme.example", "primary": True, "verified": False}],
            orgs=["acme"],
        )
        server = await start_gateway(
            [route("deploy", upstream.url, allow={"groups": ["gh:acme/platform"]})],
            login={
                "providers": [
                    {
                        "name": "gh",
                        "type": "github",
                        "client_id": "gh-client",
                        "client_secret": "gh-secret",
                        "github_url": github.url,
                        "github_api_url": github.url + "/api",
                    }
                ]
            },
        )
        url = str(server.make_url("/deploy/mcp"))
        octo = Browser("octo", "", provider="gh", idp_subject="octo")
        seen = await call_echo(url, oauth_provider(url, octo, MemoryStorage()))
        assert seen["x-forwarded-user"] == "gh:101"
        assert seen["x-forwarded-email"] == "octo@acme.example"
        assert seen["x-forwarded-groups"] == "acme,acme/platform"
        assert seen["x-forwarded-preferred-username"] == "octo"

        client = await aiohttp_client(server)
        registered = await register(client)
        mallory = Browser("mallory", "", provider="gh", idp_subject="mallory")
        denied = await mallory.authorize(
            authorize_url(server, registered["client_id"], verifier=new_verifier(), route="deploy")
        )
        assert denied == {"status": "403"}
        assert "mallory" in mallory.pages[-1] and json.dumps("mallory@acme.example")[1:-1] not in mallory.pages[-1]


async def test_login_page_offers_each_provider_and_local_accounts(start_gateway, upstream, idp, aiohttp_client):
    """Contract: providers are submit buttons name=provider in a form without a password field."""
    from tests.support.headless_oauth import parse_forms
    from tests.support.oauth_client import relative

    server = await start_gateway(
        [route("notes", upstream.url)], login={"providers": [corp(idp), corp(idp, name="other", label="Other SSO")]}
    )
    client = await aiohttp_client(server)
    registered = await register(client)
    page = await client.get(
        relative(authorize_url(server, registered["client_id"], verifier=new_verifier(), route="notes"))
    )
    forms = parse_forms(await page.text())
    assert forms[0]["action"] == "/authorize/provider" and "password" not in forms[0]["fields"]
    assert forms[0]["buttons"] == [("provider", "corp"), ("provider", "other")]
    assert "password" in forms[1]["fields"]


async def test_a_provider_sign_in_older_than_identity_max_age_is_renewed_at_authorize(
    start_gateway, upstream, idp, aiohttp_client, clock
):
    """Issue 10 #3: groups and email come from the provider at sign-in only, so a browser session whose sign-in is
    older than login.identity_max_age counts as signed out at /authorize: the person goes through the provider
    again (fresh groups) instead of getting a code from the remembered consent with the old ones."""
    await idp.add_user("alice", email="alice@example.com", email_verified=True, name="Alice", groups=["platform"])
    server = await start_gateway(
        [route("deploy", upstream.url, allow={"groups": ["corp:platform"]})],
        login={"local": False, "providers": [corp(idp)], "identity_max_age": 60},
    )
    client = await aiohttp_client(server)
    registered = await register(client)
    browser = Browser("alice", "", provider="corp", idp_subject="alice")

    async def authorize() -> dict[str, str]:
        return await browser.authorize(
            authorize_url(server, registered["client_id"], verifier=new_verifier(), route="deploy")
        )

    assert "code" in await authorize() and len(browser.provider_callbacks) == 1
    assert "code" in await authorize() and len(browser.provider_callbacks) == 1  # remembered: no page, no provider
    clock.now += 61
    assert "code" in await authorize()
    assert len(browser.provider_callbacks) == 2  # signed in at the provider again
