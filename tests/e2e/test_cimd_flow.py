"""Client ID Metadata Documents end to end (MCP 2025-11-25+ registration; spec checklist CIMD-1..7)."""

from __future__ import annotations

import asyncio
import json

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


@pytest.mark.parametrize(
    "case", ["status", "redirect", "too-big", "too-big-streamed", "mismatch", "secret", "not-json", "html", "gzip"]
)
async def test_unusable_documents_are_refused_and_their_failure_remembered_briefly(
    cimd_gateway, documents, aiohttp_client, clock, case
):
    """CIMD-2: 200 only, no redirects, ≤5 KB counted while reading (a chunked body has no Content-Length to
    trust), JSON media type, no Content-Encoding (nothing is inflated), client_id equal to the URL, no shared
    secrets. The request cannot be trusted, so the answer is an error page, never a redirect. A failure is
    remembered for `cimd.failure_cache_seconds` (security review 2, R6): asking again does not fetch again until
    it has passed."""
    path = f"/bad-{case}.json"
    url = documents.url(path)
    good = {"client_id": url, "client_name": "Bad", "redirect_uris": ["http://127.0.0.1:33418/callback"]}
    if case == "status":
        documents.publish(path, good, status=404)
    elif case == "redirect":
        documents.publish(path, good, status=302, headers={"Location": documents.url("/elsewhere.json")})
    elif case in ("too-big", "too-big-streamed"):
        documents.publish(path, {**good, "padding": "x" * 6000})
        if case == "too-big-streamed":
            documents.streamed.add(path)
    elif case == "mismatch":
        documents.publish(path, {**good, "client_id": documents.url("/other.json")})
    elif case == "secret":
        documents.publish(path, {**good, "token_endpoint_auth_method": "client_secret_post"})
    elif case == "html":
        documents.publish(path, good, headers={"Content-Type": "text/html"})
    elif case == "gzip":
        documents.publish(path, good, headers={"Content-Encoding": "gzip"})
    else:
        documents.publish(path, "not json{")
    client = await aiohttp_client(cimd_gateway)

    async def attempt() -> str:
        response = await client.get(
            relative(authorize_url(cimd_gateway, url, verifier=new_verifier())), allow_redirects=False
        )
        assert response.status == 400 and "Location" not in response.headers
        return await response.text()

    first = await attempt()
    assert await attempt() == first and documents.hits[path] == 1  # remembered: not fetched again
    clock.now += 61  # past the default failure_cache_seconds (60)
    await attempt()
    assert documents.hits[path] == 2


async def _until(condition, what: str) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)  # polling a condition with a bound, not waiting for time to pass


async def test_fetches_beyond_the_global_or_per_host_cap_are_refused_at_once(
    start_gateway, upstream, documents, aiohttp_client
):
    """Security review 2, R6: hosts that answer slowly hold a bounded number of fetches (2 per host, 3 in all
    here); one more is a 503 page with Retry-After (at /token, 503 temporarily_unavailable) without any
    request to the host, and the held fetches still complete."""
    gateway = await start_gateway(
        [route("alpha", upstream.url)],
        cimd={
            "allow_hosts": ["localhost", "127.0.0.1"],
            "ca_file": str(documents.ca_file),
            "max_concurrent_fetches": 3,
            "max_fetches_per_host": 2,
        },
    )
    client = await aiohttp_client(gateway)
    slow = [documents.client_document(f"/slow-{n}.json") for n in range(4)]
    documents.held.update(f"/slow-{n}.json" for n in range(4))
    by_ip = slow[3].replace("localhost", "127.0.0.1")

    def get(client_id: str):
        return client.get(relative(authorize_url(gateway, client_id, verifier=new_verifier())), allow_redirects=False)

    held = [asyncio.ensure_future(get(slow[0])), asyncio.ensure_future(get(slow[1]))]
    await _until(lambda: sum(documents.hits.values()) == 2, "two fetches to localhost in flight")
    refused = await get(slow[2])  # a third to the same host
    assert refused.status == 503 and refused.headers["Retry-After"] == "5"
    assert "try again" in await refused.text()
    token = await client.post("/token", data={"grant_type": "authorization_code", "client_id": slow[2], "code": "x"})
    assert token.status == 503 and (await token.json())["error"] == "temporarily_unavailable"
    held.append(asyncio.ensure_future(get(by_ip)))  # another host: the third and last slot
    await _until(lambda: sum(documents.hits.values()) == 3, "three fetches in flight")
    assert (await get("https://cimd.invalid/meta.json")).status == 503  # every slot taken
    assert documents.hits.get("/slow-2.json", 0) == 0
    documents.release.set()
    answers = await asyncio.gather(*held)
    assert [a.status for a in answers[:2]] == [200, 200]  # the held fetches complete normally
    assert (await get(slow[2])).status == 200  # slots are free again


async def test_a_fetch_is_bounded_by_one_deadline_including_the_body(
    start_gateway, upstream, documents, aiohttp_client
):
    """Security review 2, R6: a host that sends headers and then stalls the body is cut at `cimd.timeout`. A
    timeout is not remembered (anyone can slow a fetch of someone else's URL): the next /authorize fetches again."""
    gateway = await start_gateway(
        [route("alpha", upstream.url)],
        cimd={"allow_hosts": ["localhost"], "ca_file": str(documents.ca_file), "timeout": 0.5},
    )
    client = await aiohttp_client(gateway)
    stalled = documents.client_document("/stalled.json")
    documents.held.add("/stalled.json")
    response = await client.get(
        relative(authorize_url(gateway, stalled, verifier=new_verifier())), allow_redirects=False
    )
    assert response.status == 400 and "Location" not in response.headers
    assert "could not be fetched within 0.5 s" in await response.text()
    documents.held.discard("/stalled.json")  # the host answers again
    again = await client.get(relative(authorize_url(gateway, stalled, verifier=new_verifier())), allow_redirects=False)
    assert again.status == 200 and documents.hits["/stalled.json"] == 2


async def test_a_document_cached_before_the_host_rules_is_not_used(cimd_gateway, aiohttp_client, store, clock):
    """Security review 2, R12: a document cached under a punycode host before hosts had to be plain ASCII is
    refused like a fresh one (the URL rules run before the cache is read)."""
    from gateway.clients.cimd import parse_document

    url = "https://xn--pple-43d.com/client.json"
    document = {"client_id": url, "client_name": "Apple", "redirect_uris": ["http://127.0.0.1:33418/callback"]}
    await store.save_cimd(url, parse_document(url, json.dumps(document).encode(), now=clock.now), 3600)
    client = await aiohttp_client(cimd_gateway)
    response = await client.get(relative(authorize_url(cimd_gateway, url, verifier=new_verifier())))
    assert response.status == 400 and "punycode" in await response.text()


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
