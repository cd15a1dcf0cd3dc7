"""Client ID Metadata Documents end to end (MCP 2025-11-25+ registration; spec checklist CIMD-1..7)."""

from __future__ import annotations

import pytest

from gateway.accounts import add_user
from tests.conftest import route
from tests.e2e.test_oauth_flow import call_echo
from tests.support.cimd_server import cimd_server
from tests.support.headless_oauth import Browser, MemoryStorage, oauth_provider
from tests.support.oauth_client import authorize_url, new_verifier, relative


@pytest.fixture
async def documents(tmp_path):
    async with cimd_server(tmp_path) as server:
        yield server


@pytest.fixture
async def cimd_gateway(start_gateway, upstream, documents):
    return await start_gateway(
        [route("alpha", upstream.url)], cimd={"allow_hosts": ["localhost"], "ca_file": str(documents.ca_file)}
    )


async def test_sdk_client_with_a_url_client_id_completes_the_flow(cimd_gateway, documents, store, clock):
    """The SDK uses its client_metadata_url because the AS advertises CIMD and `none`; no /register call."""
    await add_user(store, "alice", "correct-horse-battery", now=clock.now)
    client_id = documents.client_document("/oauth/client.json")
    url = str(cimd_gateway.make_url("/alpha/mcp"))
    browser, storage = Browser("alice", "correct-horse-battery"), MemoryStorage()
    seen = await call_echo(url, oauth_provider(url, browser, storage, client_metadata_url=client_id))
    assert seen["x-mcp-client-id"] == client_id
    assert "CIMD Tool" in browser.pages[-1] and "localhost" in browser.pages[-1]  # CIMD-6: name and host shown
    assert documents.hits["/oauth/client.json"] >= 1


async def test_document_is_cached_between_authorizations(cimd_gateway, documents, aiohttp_client):
    """CIMD-3: honour cache headers within bounds; a second authorization does not refetch."""
    client_id = documents.client_document("/cached.json")
    documents.documents["/cached.json"][2]["Cache-Control"] = "max-age=3600"
    client = await aiohttp_client(cimd_gateway)
    for _ in range(2):
        page = await client.get(relative(authorize_url(cimd_gateway, client_id, verifier=new_verifier())))
        assert page.status == 200
    assert documents.hits["/cached.json"] == 1


@pytest.mark.parametrize("case", ["status", "redirect", "too-big", "mismatch", "secret", "not-json"])
async def test_unusable_documents_are_refused_and_never_cached(cimd_gateway, documents, aiohttp_client, case):
    """CIMD-2: 200 only, no redirects, ≤5 KB, client_id equal to the URL, no shared secrets; errors not cached.
    The request cannot be trusted, so the answer is an error page, never a redirect."""
    path = f"/bad-{case}.json"
    url = documents.url(path)
    good = {"client_id": url, "client_name": "Bad", "redirect_uris": ["http://127.0.0.1:33418/callback"]}
    if case == "status":
        documents.publish(path, good, status=404)
    elif case == "redirect":
        documents.publish(path, good, status=302, headers={"Location": documents.url("/elsewhere.json")})
    elif case == "too-big":
        documents.publish(path, {**good, "padding": "x" * 6000})
    elif case == "mismatch":
        documents.publish(path, {**good, "client_id": documents.url("/other.json")})
    elif case == "secret":
        documents.publish(path, {**good, "token_endpoint_auth_method": "client_secret_post"})
    else:
        documents.publish(path, "not json{")
    client = await aiohttp_client(cimd_gateway)
    for attempt in (1, 2):
        response = await client.get(
            relative(authorize_url(cimd_gateway, url, verifier=new_verifier())), allow_redirects=False
        )
        assert response.status == 400 and "Location" not in response.headers
        assert documents.hits[path] == attempt  # the failure was not cached


async def test_private_addresses_are_refused_unless_allowed(start_gateway, upstream, documents, aiohttp_client):
    """CIMD-4 (SSRF): a host that resolves to loopback is refused without an explicit allow_hosts entry."""
    server = await start_gateway([route("alpha", upstream.url)], cimd={"ca_file": str(documents.ca_file)})
    client_id = documents.client_document("/private.json")
    client = await aiohttp_client(server)
    response = await client.get(
        relative(authorize_url(server, client_id, verifier=new_verifier())), allow_redirects=False
    )
    assert response.status == 400
    assert "private or special-use address" in await response.text()
    assert documents.hits.get("/private.json", 0) == 0
