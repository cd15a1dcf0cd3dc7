"""How fresh identity data is (issue #4 item 3; issue 10 #3): rules apply on every request; /authorize, code
redemption and refresh re-read local accounts and refuse sign-ins older than login.identity_max_age, the bound on
stale provider groups; removing or changing a user ends their login sessions."""

from __future__ import annotations

import pytest

from gateway.accounts import add_user
from tests.conftest import route
from tests.support.headless_oauth import Browser, parse_forms
from tests.support.oauth_client import authorize_url, new_verifier, register, relative
from tests.support.token_flow import PASSWORD, mcp_status, obtain_code, obtain_tokens, redeem, refresh


@pytest.fixture
async def ops_only(start_gateway, upstream, store, clock):
    await add_user(store, "alice", PASSWORD, email="alice@example.com", groups=("ops",), now=clock.now)
    return await start_gateway(
        [route("alpha", upstream.url, allow={"groups": ["local:ops"]})], login={"identity_max_age": 3600}
    )


async def test_refresh_after_identity_max_age_requires_a_new_sign_in(ops_only, aiohttp_client, clock):
    client = await aiohttp_client(ops_only)
    registered = await register(client)
    tokens = await obtain_tokens(client, ops_only, registered["client_id"])
    clock.now += 1800
    fresh = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert fresh.status == 200
    clock.now += 1801  # 3601 s after the sign-in
    stale = await refresh(client, registered["client_id"], fresh.body["refresh_token"])
    assert stale.status == 400 and stale.error == "invalid_grant"


async def test_removed_local_user_cannot_refresh(ops_only, aiohttp_client, store):
    client = await aiohttp_client(ops_only)
    registered = await register(client)
    tokens = await obtain_tokens(client, ops_only, registered["client_id"])
    await store.delete_user("alice")
    gone = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert gone.status == 400 and gone.error == "invalid_grant"


async def test_local_group_change_takes_effect_at_the_next_refresh(ops_only, aiohttp_client, store):
    """The refresh re-reads the account: leaving `ops` ends access to an ops-only route (no code, no token)."""
    client = await aiohttp_client(ops_only)
    registered = await register(client)
    tokens = await obtain_tokens(client, ops_only, registered["client_id"])
    assert await mcp_status(client, "/alpha/mcp", tokens["access_token"]) == 200
    user = await store.load_user("alice")
    await store.save_user(user.model_copy(update={"groups": ("sales",)}))
    refused = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert refused.status == 400 and refused.error == "invalid_grant"


# -- issue 10 #3: the browser session's principal is re-checked at /authorize and at code redemption ----------


async def test_authorize_after_identity_max_age_asks_for_a_new_sign_in(ops_only, aiohttp_client, clock):
    """A sign-in older than login.identity_max_age counts as signed out at /authorize: the login page, not a
    silent code from the remembered consent with the groups of the old sign-in."""
    client = await aiohttp_client(ops_only)
    registered = await register(client, redirect_uris=["https://app.example/cb"])
    browser = Browser("alice", PASSWORD)

    async def authorize() -> dict[str, str]:
        return await browser.authorize(
            authorize_url(
                ops_only, registered["client_id"], verifier=new_verifier(), redirect_uri="https://app.example/cb"
            )
        )

    assert "code" in await authorize() and len(browser.pages) == 2  # login, consent
    clock.now += 1800
    assert "code" in await authorize() and len(browser.pages) == 2  # within the age: remembered, no page
    clock.now += 1801
    assert "code" in await authorize()  # (the headless browser signs in again)
    assert len(browser.pages) == 3 and 'name="password"' in browser.pages[2]


async def test_removed_user_gets_no_code_from_an_old_browser_session(ops_only, aiohttp_client, store):
    """Removing a user ends their login sessions (the store's per-user index): the remembered consent issues
    nothing; the login page is shown and the old password no longer works."""
    client = await aiohttp_client(ops_only)
    registered = await register(client, redirect_uris=["https://app.example/cb"])
    browser = Browser("alice", PASSWORD)
    url = authorize_url(
        ops_only, registered["client_id"], verifier=new_verifier(), redirect_uri="https://app.example/cb"
    )
    assert "code" in await browser.authorize(url)
    await store.delete_user("alice")
    assert await browser.authorize(url) == {"status": "401"}  # login page, then the wrong-password answer
    assert 'name="password"' in browser.pages[-2]


async def test_a_group_change_ends_the_browser_session_and_the_new_groups_decide(ops_only, aiohttp_client, store):
    """Changing a user (here: leaving `ops`) ends their login sessions; signing in again, the rules see the current
    groups and refuse the ops-only route with the access-denied page."""
    client = await aiohttp_client(ops_only)
    registered = await register(client, redirect_uris=["https://app.example/cb"])
    browser = Browser("alice", PASSWORD)
    url = authorize_url(
        ops_only, registered["client_id"], verifier=new_verifier(), redirect_uri="https://app.example/cb"
    )
    assert "code" in await browser.authorize(url)
    user = await store.load_user("alice")
    await store.save_user(user.model_copy(update={"groups": ("sales",)}))
    assert await browser.authorize(url) == {"status": "403"}
    assert 'name="password"' in browser.pages[-2] and "may not use alpha" in browser.pages[-1]


@pytest.mark.parametrize("grant", ["refresh", "code"])
async def test_an_account_removed_and_created_anew_under_the_same_name_inherits_nothing(
    ops_only, aiohttp_client, store, clock, grant
):
    """A refresh token or code of the removed `alice` does not work for a new account that happens to be called
    `alice` too (here removed at the store, so nothing was revoked: the account's creation time tells them apart)."""
    client = await aiohttp_client(ops_only)
    registered = await register(client)
    if grant == "refresh":
        tokens = await obtain_tokens(client, ops_only, registered["client_id"])
    else:
        code = await obtain_code(ops_only, registered["client_id"])
    await store.delete_user("alice")
    await add_user(store, "alice", "another-password-1", groups=("ops",), now=clock.now + 1)
    reply = await (
        refresh(client, registered["client_id"], tokens["refresh_token"])
        if grant == "refresh"
        else redeem(client, code)
    )
    assert reply.status == 400 and reply.error == "invalid_grant"


async def test_approving_on_a_consent_page_left_open_past_identity_max_age_issues_no_code(
    ops_only, aiohttp_client, clock
):
    """The consent POST, the last step before a code, checks the sign-in again."""
    client = await aiohttp_client(ops_only)
    registered = await register(client)
    page = await client.get(relative(authorize_url(ops_only, registered["client_id"], verifier=new_verifier())))
    login = parse_forms(await page.text())[0]
    consent = await client.post(login["action"], data={**login["fields"], "username": "alice", "password": PASSWORD})
    form = parse_forms(await consent.text())[0]
    assert ("decision", "approve") in form["buttons"]
    clock.now += 3601
    answer = await client.post(form["action"], data={**form["fields"], "decision": "approve"}, allow_redirects=False)
    assert answer.status == 403 and "Location" not in answer.headers


@pytest.fixture
async def short_sign_in(start_gateway, upstream, store, clock):
    """Sign-ins count for 5 minutes, codes live 10: a code can outlive its sign-in."""
    await add_user(store, "alice", PASSWORD, email="alice@example.com", groups=("ops",), now=clock.now)
    return await start_gateway(
        [route("alpha", upstream.url, allow={"groups": ["local:ops"]})],
        login={"identity_max_age": 300},
        oauth={"code_ttl": 600},
    )


@pytest.mark.parametrize("change", ["none", "removed", "left-the-group", "sign-in-too-old"])
async def test_a_code_is_redeemed_only_for_the_person_as_they_stand_now(
    short_sign_in, aiohttp_client, store, clock, change
):
    """Code redemption runs the refresh's check (AccessPolicy.current): a code issued before the account was
    removed or changed, or whose sign-in has grown too old meanwhile, gets no tokens."""
    client = await aiohttp_client(short_sign_in)
    registered = await register(client)
    code = await obtain_code(short_sign_in, registered["client_id"])
    if change == "removed":
        await store.delete_user("alice")
    elif change == "left-the-group":
        await store.save_user((await store.load_user("alice")).model_copy(update={"groups": ("sales",)}))
    elif change == "sign-in-too-old":
        clock.now += 301  # the code is still valid, the sign-in is not
    reply = await redeem(client, code)
    if change == "none":
        assert reply.status == 200, reply.body
    else:
        assert reply.status == 400 and reply.error == "invalid_grant"
