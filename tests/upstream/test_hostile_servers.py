"""`upstream_auth: oauth` against a malicious upstream (tests.support.hostile_oauth_server: an MCP server that is its
own authorization server, lying in one way per test). The person signs in at the gateway's /authorize and consents;
the gateway then discovers, registers and sends the browser on, and the server's answers come back through
/upstream/callback. Whatever the server does, the person gets an HTML error page (502 or 4xx, never 500, no
traceback), the client gets no code, and the gateway keeps no credential."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.accounts import add_user
from gateway.upstream_oauth.http import MAX_ANSWER_BYTES
from tests.conftest import route
from tests.support.headless_oauth import Browser
from tests.support.hostile_oauth_server import ACCESS_TOKEN, CODE, HostileAuthServer, json_answer, raw
from tests.support.oauth_client import REDIRECT, authorize_url, new_verifier

PASSWORD = "correct-horse-battery"
USER = "local:alice"
TOO_LARGE = f"more than {MAX_ANSWER_BYTES} bytes"
HTML = "<!doctype html><html><head><title>Sign in</title></head><body><h1>Welcome!</h1></body></html>"
DEEP = "[" * 30_000 + "]" * 30_000  # valid JSON, within the size bound, beyond Python's recursion limit
WALK_SECONDS = 30  # a walk that takes longer is a hang


@dataclass
class Walk:
    front: TestServer
    browser: Browser
    result: dict[str, str]  # the redirect query the client got, or {"status": ...} of the page that ended it

    @property
    def page(self) -> str:
        return self.browser.pages[-1] if self.browser.pages else ""

    def callback(self, **query: str) -> str:
        return str(self.front.make_url("/upstream/callback/remote?" + urlencode(query)))


@pytest.fixture
async def hostile() -> AsyncIterator[HostileAuthServer]:
    server = HostileAuthServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def walk(start_gateway, hostile, store, clock):
    """`await walk(**upstream_auth)`: the gateway in front of the hostile server, alice signing in and consenting
    in a fresh browser; returns where the walk ended."""

    async def run(**auth) -> Walk:
        upstream_auth = {"type": "oauth", **auth}
        front = await start_gateway([route("remote", hostile.url, upstream_auth=upstream_auth)])
        await add_user(store, "alice", PASSWORD, now=clock.now)
        browser = browser_for(hostile)
        return Walk(front, browser, await sign_in(front, browser))

    return run


def browser_for(hostile: HostileAuthServer) -> Browser:
    return Browser("alice", PASSWORD, logins={hostile.origin: ("x", "y")})


async def sign_in(front: TestServer, browser: Browser) -> dict[str, str]:
    """A client registers at the gateway and sends the browser to /authorize for the `remote` route."""
    client = {
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "client_name": "hostile-server test client",
        "grant_types": ["authorization_code", "refresh_token"],
    }
    async with aiohttp.ClientSession() as http, http.post(front.make_url("/register"), json=client) as registered:
        assert registered.status == 201, await registered.text()
        client_id = (await registered.json())["client_id"]
    return await opened(browser, authorize_url(front, client_id, verifier=new_verifier(), route="remote"))


async def opened(browser: Browser, url: str) -> dict[str, str]:
    async with asyncio.timeout(WALK_SECONDS):
        return await browser.authorize(url)


def assert_error_page(page: str, says: str) -> None:
    assert page.startswith("<!doctype html>"), page[:200]
    assert says in page, page
    for leak in ("Traceback", 'File "', "Something went wrong", ACCESS_TOKEN):
        assert leak not in page, page


async def assert_refused(done: Walk, store, says: str, *, status: int = 502) -> None:
    """The walk ended at the gateway's error page (no code for the client) and nothing was kept."""
    assert done.result == {"status": str(status)}, (done.result, done.page[:300])
    assert_error_page(done.page, says)
    assert await store.credentials_of(USER) == {}


# -- the stand-in itself ------------------------------------------------------------------------------------------


async def test_left_honest_the_stand_in_connects_and_the_client_gets_its_code(walk, hostile, store):
    """(What every refusal below departs from: the same walk with one lie less ends in a connection.)"""
    done = await walk()
    assert "code" in done.result, (done.result, done.page)
    assert list(await store.credentials_of(USER)) == ["route:remote"]
    assert hostile.hits == ["probe", "resource_metadata", "server_metadata", "registration", "authorize", "token"]
    (asked,) = hostile.authorization_requests
    assert asked["code_challenge_method"] == "S256" and asked["resource"] == hostile.url
    assert hostile.token_requests[0]["code"] == CODE


# -- 1-3: metadata that names the wrong thing ---------------------------------------------------------------------


@pytest.mark.parametrize("resource", ["{foreign}/mcp", "{origin}/other/mcp", "https://evil.example/mcp", "http://[::1"])
async def test_resource_metadata_for_another_resource_is_refused(walk, hostile, store, resource):
    hostile.resource_changes["resource"] = resource.format(origin=hostile.origin, foreign=hostile.foreign)
    done = await walk()
    await assert_refused(done, store, "is for another resource than")
    assert "server_metadata" not in hostile.hits


@pytest.mark.parametrize("issuer", ["{foreign}", "{origin}/", "https://evil.example"])
async def test_server_metadata_naming_another_issuer_is_refused(walk, hostile, store, issuer):
    hostile.metadata_changes["issuer"] = issuer.format(origin=hostile.origin, foreign=hostile.foreign)
    done = await walk()
    await assert_refused(done, store, "names another issuer than")
    assert "registration" not in hostile.hits


@pytest.mark.parametrize("methods", [None, [], ["plain"], "S256", ["s256"]])
async def test_server_metadata_without_pkce_s256_is_refused(walk, hostile, store, methods):
    hostile.metadata_changes["code_challenge_methods_supported"] = methods
    done = await walk()
    await assert_refused(done, store, "does not offer PKCE S256")
    assert "registration" not in hostile.hits


# -- 4-6: answers that are not the document -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("resource_metadata", "answered 302"),
        ("server_metadata", "answered 302"),
        ("token", "refused: 302 no error code"),
    ],
)
async def test_a_redirect_to_a_foreign_origin_is_not_followed(walk, hostile, store, name, says):
    """The foreign origin serves the honest answer: following the redirect would have worked."""
    hostile.answers[name] = hostile.redirect_elsewhere(name)
    done = await walk()
    await assert_refused(done, store, says)
    assert f"elsewhere:{name}" not in hostile.hits


@pytest.mark.parametrize("framing", ["length", "chunked", "endless"])
@pytest.mark.parametrize("name", ["resource_metadata", "server_metadata"])
async def test_metadata_larger_than_64_kib_is_refused_however_it_is_framed(walk, hostile, store, name, framing):
    document = hostile.resource_document() if name == "resource_metadata" else hostile.server_document()
    hostile.answers[name] = hostile.sized(document, MAX_ANSWER_BYTES, framing=framing)
    done = await walk()
    await assert_refused(done, store, TOO_LARGE)
    assert "registration" not in hostile.hits


@pytest.mark.parametrize(
    "answer",
    [
        raw(HTML, content_type="text/html"),
        raw(HTML, content_type="application/json"),  # (labelled JSON, is not)
        raw(b"\xff\xfe{}"),  # not UTF-8
        json_answer([{"resource": "x"}]),
        json_answer("a string"),
        raw(DEEP),
    ],
    ids=["html", "html-labelled-json", "not-utf-8", "array", "string", "deeply-nested"],
)
@pytest.mark.parametrize("name", ["resource_metadata", "server_metadata"])
async def test_metadata_that_is_no_json_object_is_refused(walk, hostile, store, name, answer):
    hostile.answers[name] = answer
    done = await walk()
    await assert_refused(done, store, "is not a JSON object")
    assert "registration" not in hostile.hits


# -- 7: endpoints the browser must not be sent to -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("authorization_endpoint", "javascript:alert(document.cookie)"),
        ("authorization_endpoint", "ftp://localhost/authorize"),
        ("authorization_endpoint", "http://evil.example/authorize"),
        ("authorization_endpoint", "data:text/html,<script>alert(1)</script>"),
        ("token_endpoint", "http://evil.example/token"),
        ("registration_endpoint", "http://evil.example/register"),
    ],
)
async def test_an_unusable_endpoint_in_the_server_metadata_is_refused(walk, hostile, store, field, value):
    hostile.metadata_changes[field] = value
    done = await walk()
    await assert_refused(done, store, f"gives an unusable {field}")
    assert done.browser.last_location is None  # the browser was sent nowhere
    assert "registration" not in hostile.hits


@pytest.mark.parametrize("where", ["challenge", "authorization_servers", "authorization_endpoint", "token_endpoint"])
async def test_a_malformed_url_anywhere_in_discovery_is_refused(walk, hostile, store, where):
    """`http://[::1` does not parse (urlsplit raises ValueError): a refusal like any unusable URL, not a crash."""
    bad = "http://[::1/x"
    if where == "challenge":
        challenge = f'Bearer resource_metadata="{bad}"'
        hostile.answers["probe"] = raw("{}", status=401, headers={"WWW-Authenticate": challenge})
    elif where == "authorization_servers":
        hostile.resource_changes["authorization_servers"] = [bad]
    else:
        hostile.metadata_changes[where] = bad
    done = await walk()
    await assert_refused(done, store, "unusable")
    assert "registration" not in hostile.hits


# -- 8-9: the way back --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("iss", ["https://evil.example", "{foreign}", "{origin}/", ""])
async def test_a_callback_with_another_iss_is_refused_before_the_code_is_redeemed(walk, hostile, store, iss):
    wrong = iss.format(origin=hostile.origin, foreign=hostile.foreign)
    hostile.callback = lambda query: {**query, "iss": wrong}
    done = await walk()
    await assert_refused(done, store, "RFC 9207 iss mismatch")
    assert "authorize" in hostile.hits and "token" not in hostile.hits


async def test_a_callback_without_iss_is_refused_when_the_server_says_it_sends_one(walk, hostile, store):
    hostile.metadata_changes["authorization_response_iss_parameter_supported"] = True
    hostile.callback = lambda query: {k: v for k, v in query.items() if k != "iss"}
    done = await walk()
    await assert_refused(done, store, "RFC 9207 iss mismatch")
    assert "token" not in hostile.hits


async def test_a_callback_without_iss_is_accepted_when_the_server_does_not_say_it_sends_one(walk, hostile, store):
    """(RFC 9207 §2.4: the contrast to the test above.)"""
    hostile.callback = lambda query: {k: v for k, v in query.items() if k != "iss"}
    done = await walk()
    assert "code" in done.result
    assert list(await store.credentials_of(USER)) == ["route:remote"]


async def test_a_callback_with_both_a_code_and_an_error_is_refused(walk, hostile, store):
    hostile.callback = lambda query: {**query, "error": "access_denied"}
    done = await walk()
    await assert_refused(done, store, "neither a code nor an error (or both)")
    assert "token" not in hostile.hits


async def test_a_replayed_state_is_refused(walk, hostile, store):
    """The first answer (the person said no) used the state up; the same state again, now with a code, is
    refused and no code is redeemed."""
    hostile.callback = lambda query: {"error": "access_denied", "state": query["state"], "iss": query["iss"]}
    done = await walk()
    assert done.result["error"] == "access_denied" and "code" not in done.result  # the client hears the refusal
    state = hostile.authorization_requests[-1]["state"]
    replayed = await opened(done.browser, done.callback(code=CODE, state=state, iss=hostile.origin))
    assert replayed == {"status": "400"}
    assert_error_page(done.browser.pages[-1], "already used or has expired")
    assert "token" not in hostile.hits
    assert await store.credentials_of(USER) == {}


@pytest.mark.parametrize("signed_in", [False, True], ids=["no-session", "alice-in-another-session"])
async def test_a_state_from_another_browser_session_is_refused(walk, hostile, store, signed_in):
    """The server's redirect back is opened in another browser (a fresh cookie jar): with no session at all, and
    signed in as the same person in a session of its own."""
    hostile.hold_authorization = True  # the authorization endpoint keeps the browser: the test carries the answer
    done = await walk()
    assert done.result == {"status": "200"}
    state = hostile.authorization_requests[-1]["state"]
    other = browser_for(hostile)
    if signed_in:
        assert await sign_in(done.front, other) == {"status": "200"}
        assert hostile.authorization_requests[-1]["state"] != state
    result = await opened(other, done.callback(code=CODE, state=state, iss=hostile.origin))
    assert result == {"status": "400"}
    assert_error_page(other.pages[-1], "started in another browser session")
    assert "token" not in hostile.hits
    assert await store.credentials_of(USER) == {}


# -- 10: the token endpoint ---------------------------------------------------------------------------------------


TOKEN = {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600}


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (raw(HTML, content_type="text/html"), "gave no usable bearer token"),
        (raw(DEEP), "gave no usable bearer token"),
        (json_answer([TOKEN]), "gave no usable bearer token"),
        (raw('{"access_token": "t", "token_type": "Bearer", "expires_in": ' + "9" * 5000 + "}"), "no usable"),
        (json_answer({**TOKEN, "token_type": "mac", "mac_key": "k", "mac_algorithm": "hmac-sha-256"}), "no usable"),
        (json_answer({k: v for k, v in TOKEN.items() if k != "token_type"}), "gave no usable bearer token"),
        (json_answer({**TOKEN, "access_token": "abc\r\nX-Injected: 1"}), "gave no usable bearer token"),
        (json_answer({**TOKEN, "access_token": 12345}), "gave no usable bearer token"),
        (json_answer({"error": "bad_verification_code", "error_description": "The code is wrong."}), "200 bad_"),
        (json_answer({"error": "invalid_grant"}, status=400), "refused: 400 invalid_grant"),
        (raw("oops", status=500, content_type="text/plain"), "refused: 500 no error code"),
    ],
    ids=[
        "html",
        "deeply-nested",
        "array",
        "5000-digit-number",
        "mac",
        "no-token-type",
        "line-break",
        "number",
        "github-200-error",
        "400",
        "500",
    ],
)
async def test_a_token_answer_without_a_usable_bearer_token_is_refused(walk, hostile, store, answer, says):
    hostile.answers["token"] = answer
    done = await walk()
    await assert_refused(done, store, says)
    assert "token" in hostile.hits


@pytest.mark.parametrize("framing", ["length", "chunked", "endless"])
async def test_a_token_answer_larger_than_64_kib_is_refused(walk, hostile, store, framing):
    hostile.answers["token"] = hostile.sized(TOKEN, MAX_ANSWER_BYTES, framing=framing)
    done = await walk()
    await assert_refused(done, store, TOO_LARGE)


# -- 11: dynamic registration -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        raw("Internal Server Error", status=500, content_type="text/plain"),
        json_answer({"client_id": "fine-but-500"}, status=500),
        json_answer({"client_id": "hostile\x00client"}, status=201),
        json_answer({"client_id": "hostile\r\nclient"}, status=201),
        json_answer({"client_id": "hostile\x7f"}, status=201),
        json_answer({"client_id": "ok", "client_secret": "s\ne"}, status=201),
        json_answer({"client_id": 42}, status=201),
        json_answer({"client_id": "x" * 9000}, status=201),
    ],
    ids=["500", "500-with-id", "nul", "crlf", "del", "secret-newline", "number", "too-long"],
)
async def test_a_failed_or_unusable_registration_is_refused_and_not_kept(walk, hostile, store, answer):
    hostile.answers["registration"] = answer
    done = await walk()
    await assert_refused(done, store, "client registration at")
    assert "authorize" not in hostile.hits
    assert await store.load_upstream_client("remote", hostile.origin) is None


# -- 12: no answer ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "trickle"),
    [("probe", False), ("probe", True), ("resource_metadata", True), ("token", False)],
    ids=["probe-silent", "probe-trickling", "metadata-trickling", "token-silent"],
)
async def test_a_server_that_does_not_answer_in_time_is_given_up_on(walk, hostile, store, name, trickle):
    hostile.answers[name] = hostile.hang(trickle=trickle)
    started = time.monotonic()
    done = await walk(timeout=1)
    await assert_refused(done, store, "did not answer within 1 s")
    assert time.monotonic() - started < 10
