"""Optional self sign-up (issue #4 item 4; the seed AuthKit's login/signup screen): off by default, limited to
configured email domains; the self-declared email is never treated as verified."""

from __future__ import annotations

from tests.conftest import route
from tests.support.headless_oauth import parse_forms
from tests.support.oauth_client import authorize_url, new_verifier, register, relative


async def signup_form(server, client):
    registered = await register(client)
    page = await client.get(relative(authorize_url(server, registered["client_id"], verifier=new_verifier())))
    return [f for f in parse_forms(await page.text()) if f["action"] == "/authorize/signup"]


async def test_sign_up_is_off_by_default(gateway, aiohttp_client):
    client = await aiohttp_client(gateway)
    assert await signup_form(gateway, client) == []
    closed = await client.post("/authorize/signup", data={"username": "x"})
    assert closed.status == 403


async def test_sign_up_in_an_allowed_domain_creates_an_unverified_account(
    start_gateway, upstream, aiohttp_client, store
):
    server = await start_gateway(
        [route("alpha", upstream.url)],
        allow={"providers": ["local"]},
        login={"signup": {"enabled": True, "email_domains": ["example.com"]}},
    )
    client = await aiohttp_client(server)
    form = (await signup_form(server, client))[0]
    wrong = await client.post(
        "/authorize/signup",
        data={**form["fields"], "username": "mallory", "email": "mallory@evil.example", "password": "long-enough-1"},
    )
    assert wrong.status == 400 and "not open for this email domain" in await wrong.text()
    form = (await signup_form(server, client))[0]
    made = await client.post(
        "/authorize/signup",
        data={**form["fields"], "username": "carol", "email": "carol@example.com", "password": "long-enough-1"},
    )
    assert made.status == 200 and 'name="decision"' in await made.text()  # signed in, on to consent
    carol = await store.load_user("carol")
    assert carol is not None and carol.email_verified is False


async def test_sign_up_refuses_names_that_access_rules_grant_before_their_account_exists(
    start_gateway, upstream, aiohttp_client, store
):
    """Security review 2, R8: `allow.users: [local:alice]` (global or per route) is meant for the alice the
    operator will create; a stranger signing up first as alice (or Alice) would get her access. Refused; a
    name no rule mentions still works."""
    server = await start_gateway(
        [route("alpha", upstream.url), route("beta", upstream.url, allow={"users": ["local:bob"]})],
        allow={"users": ["local:alice"], "providers": ["local"]},
        login={"signup": {"enabled": True, "email_domains": ["example.com"]}},
    )
    client = await aiohttp_client(server)
    for name in ("alice", "Alice", "bob"):
        form = (await signup_form(server, client))[0]
        data = {**form["fields"], "username": name, "email": "x@example.com", "password": "long-enough-1"}
        refused = await client.post("/authorize/signup", data=data)
        assert refused.status == 400 and "is not available" in await refused.text(), name
        assert await store.load_user(name) is None
    form = (await signup_form(server, client))[0]
    data = {**form["fields"], "username": "carol", "email": "carol@example.com", "password": "long-enough-1"}
    assert (await client.post("/authorize/signup", data=data)).status == 200
