"""The user's own page (/account) without a browser: only a signed-in user's own grants are listed and revocable; a
token id (the start of a hash) shared with another user's token never reaches theirs; forms need the CSRF token."""

from __future__ import annotations

import aiohttp

from gateway.accounts import add_user
from gateway.oauth.token_values import hash_token
from tests.conftest import route
from tests.support.headless_oauth import Browser
from tests.support.oauth_client import authorize_url, new_verifier, register
from tests.support.token_flow import PASSWORD
from tests.support.tokens import issue


async def signed_in_browser(server, user: str) -> Browser:
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        client = await register(http)
    browser = Browser(user, PASSWORD)
    result = await browser.authorize(authorize_url(server, client["client_id"], verifier=new_verifier()))
    assert "code" in result, result
    return browser


def csrf_of(page: str) -> str:
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


async def test_a_token_id_shared_with_another_users_token_revokes_only_ones_own(start_gateway, upstream, store):
    server = await start_gateway([route("alpha", upstream.url)])
    for name in ("alice", "bob"):
        await add_user(store, name, PASSWORD, email=f"{name}@example.com", groups=(), now=0)
    browser = await signed_in_browser(server, "alice")
    records = {}
    for user, tail in (("alice", "0"), ("bob", "1")):  # two tokens whose hashes start alike: one id, two owners
        record = await store.load_access_token(hash_token(await issue(store, server, "alpha", user=user)))
        assert record is not None and record.grant_id is None
        records[user] = ("abcd1234" + tail * 56, record)
        await store.save_access_token(records[user][0], record, now=record.issued_at)

    async with aiohttp.ClientSession(base_url=str(server.make_url("")), cookie_jar=browser.jar) as http:
        page = await (await http.get("/account")).text()
        assert page.count('name="grant" value="abcd1234"') == 1
        refused = await http.post("/account/revoke", data={"grant": "abcd1234"}, allow_redirects=False)
        assert refused.status == 403  # no CSRF token
        form = {"grant": "abcd1234", "csrf_token": csrf_of(page)}
        done = await http.post("/account/revoke", data=form, allow_redirects=False)
        assert done.status == 303 and done.headers["Location"] == "/account?done=revoked"
        unknown = await http.post("/account/revoke", data={**form, "grant": "f" * 32}, allow_redirects=False)
        assert unknown.status == 404
    alice, bob = [await store.load_access_token(records[u][0]) for u in ("alice", "bob")]
    assert alice is not None and alice.revoked
    assert bob is not None and not bob.revoked


async def test_without_a_sign_in_the_page_says_so_and_revokes_nothing(start_gateway, upstream):
    server = await start_gateway([route("alpha", upstream.url)])
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        page = await http.get("/account")
        assert page.status == 403 and "Not signed in" in await page.text()
        assert (await http.post("/account/revoke", data={"grant": "0" * 32, "csrf_token": "x"})).status == 403
