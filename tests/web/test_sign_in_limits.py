"""Failed local sign-ins are limited per (user name, address) under a higher ceiling per user name (security
review 2, R5; OWASP ASVS 2.2.1, NIST SP 800-63B §5.2.2): `rate_limits.failed_sign_ins`, counted atomically in
Redis."""

from __future__ import annotations

import pytest

from gateway.accounts import add_user
from gateway.web.sign_in_limits import NAME_CEILING_FACTOR
from tests.conftest import route
from tests.support.headless_oauth import parse_forms
from tests.support.oauth_client import authorize_url, new_verifier, register, relative

PASSWORD = "correct-horse-battery"


@pytest.fixture
async def limited(start_gateway, upstream, store, clock):
    await add_user(store, "alice", PASSWORD, email="alice@example.com", now=clock.now)
    return await start_gateway(
        [route("alpha", upstream.url)],
        trusted_proxies=["127.0.0.1/32"],  # lets the test speak from many addresses
        rate_limits={"failed_sign_ins": {"limit": 3, "period": 900}},
    )


async def login_form(server, client):
    registered = await register(client)
    page = await client.get(relative(authorize_url(server, registered["client_id"], verifier=new_verifier())))
    return next(f for f in parse_forms(await page.text()) if f["action"] == "/authorize/login")


async def sign_in(client, form, username, password, address):
    data = {**form["fields"], "username": username, "password": password}
    return await client.post(form["action"], data=data, headers={"X-Forwarded-For": address}, allow_redirects=False)


async def test_one_address_over_the_limit_does_not_lock_the_name_out_elsewhere(limited, aiohttp_client):
    """Three wrong passwords from one address spend alice's tries there (429, Retry-After, even for the right
    password), but alice at another address still signs in: a guesser cannot lock her out (security review 2)."""
    client = await aiohttp_client(limited)
    form = await login_form(limited, client)
    for _ in range(3):
        assert (await sign_in(client, form, "alice", "wrong-guess", "203.0.113.7")).status == 401
    refused = await sign_in(client, form, "alice", PASSWORD, "203.0.113.7")
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins" in await refused.text() and 'name="decision"' not in await refused.text()
    owner = await aiohttp_client(limited)
    signed_in = await sign_in(owner, await login_form(limited, owner), "alice", PASSWORD, "198.51.100.9")
    assert signed_in.status == 200 and 'name="decision"' in await signed_in.text()


async def test_failed_sign_ins_of_one_name_are_bounded_across_addresses(limited, aiohttp_client):
    """A guesser spread over many addresses gets NAME_CEILING_FACTOR times the limit at one name in all, then
    every address is refused, while another name still gets its own tries."""
    client = await aiohttp_client(limited)
    form = await login_form(limited, client)
    ceiling = 3 * NAME_CEILING_FACTOR
    for n in range(ceiling):
        assert (await sign_in(client, form, "alice", "wrong-guess", f"203.0.{n // 3}.{n % 3 + 1}")).status == 401
    refused = await sign_in(client, form, "alice", PASSWORD, "198.51.100.9")
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert (await sign_in(client, form, "bob", "wrong-guess", "198.51.100.9")).status == 401


async def test_unknown_names_are_limited_like_existing_ones(limited, aiohttp_client):
    """No user enumeration: a name without an account runs out of tries exactly like alice."""
    client = await aiohttp_client(limited)
    form = await login_form(limited, client)
    statuses = [(await sign_in(client, form, "nobody", "wrong-guess", "203.0.113.7")).status for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


async def test_successful_sign_ins_do_not_count_against_the_name(limited, aiohttp_client):
    """Only failures count: alice signs in four times with a budget of three, then still has three tries."""
    for _ in range(4):
        client = await aiohttp_client(limited)  # a new browser each time (a signed-in one skips the form)
        signed_in = await sign_in(client, await login_form(limited, client), "alice", PASSWORD, "203.0.113.7")
        assert signed_in.status == 200 and 'name="decision"' in await signed_in.text()
    client = await aiohttp_client(limited)
    form = await login_form(limited, client)
    statuses = [(await sign_in(client, form, "alice", "wrong", "203.0.113.7")).status for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
