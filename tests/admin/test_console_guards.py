"""What the browser test does not show of the console and the API's edges: cross-site requests refused on /api/ (a
client certificate installed in a browser goes with any page's form), the sign-in limit never locking out the
real token, redirects kept on the listener, one session per certificate holder, the console's actor in the log."""

from __future__ import annotations

import logging

import pytest

from gateway.admin.console import local
from gateway.admin.console_auth import LOGIN_COOKIE, SESSION_COOKIE, ConsoleSessions
from tests.admin.conftest import ADMIN_TOKEN, BEARER


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
async def test_a_browsers_cross_site_request_never_reaches_the_api(admin, headers):
    reply = await admin.call("POST", "/api/keys/rotate", headers={**BEARER, **headers})
    assert reply.status == 403 and reply.body["error"] == "cross_site"
    assert (await admin.call("GET", "/api/keys")).body["keys"] == []  # nothing rotated


async def test_same_origin_and_non_browser_requests_pass(admin):
    own = f"http://{admin.api.server.host}:{admin.api.server.port}"
    assert (await admin.call("GET", "/api/users", headers={**BEARER, "Origin": own})).status == 200
    assert (await admin.call("GET", "/api/users", headers={**BEARER, "Sec-Fetch-Site": "same-origin"})).status == 200
    assert (await admin.call("GET", "/api/users")).status == 200  # curl sends neither
    # a same-origin form under Referrer-Policy: no-referrer says Origin: null; Sec-Fetch-Site decides
    same = {**BEARER, "Sec-Fetch-Site": "same-origin", "Origin": "null"}
    assert (await admin.call("GET", "/api/users", headers=same)).status == 200


async def _login_form(admin) -> str:
    response = await admin.api.get("/login")
    assert response.status == 200
    return response.cookies[LOGIN_COOKIE].value


def cookie(name: str, value: str) -> dict[str, str]:
    """The cookie sent by hand: a `__Host-` cookie is Secure, and aiohttp's jar sends none over plain http (a
    browser does on loopback)."""
    return {"Cookie": f"{name}={value}"}


async def test_failed_sign_ins_are_limited_but_the_real_token_still_signs_in(admin):
    csrf = await _login_form(admin)
    statuses = []
    for _ in range(12):
        form = {"csrf_token": csrf, "token": "wrong"}
        response = await admin.api.post("/login", data=form, headers=cookie(LOGIN_COOKIE, csrf), allow_redirects=False)
        statuses.append(response.status)
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    form = {"csrf_token": csrf, "token": ADMIN_TOKEN}
    response = await admin.api.post("/login", data=form, headers=cookie(LOGIN_COOKIE, csrf), allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/"
    assert SESSION_COOKIE in response.cookies


async def test_a_sign_in_without_the_forms_own_cookie_is_refused(admin):
    csrf = await _login_form(admin)
    form = {"csrf_token": "guessed", "token": ADMIN_TOKEN}
    assert (await admin.api.post("/login", data=form, headers=cookie(LOGIN_COOKIE, csrf))).status == 403
    assert (await admin.api.post("/login", data={"csrf_token": csrf, "token": ADMIN_TOKEN})).status == 403


async def test_console_changes_are_logged_with_who_made_them(admin, caplog):
    csrf = await _login_form(admin)
    form = {"csrf_token": csrf, "token": ADMIN_TOKEN}
    signed_in = await admin.api.post("/login", data=form, headers=cookie(LOGIN_COOKIE, csrf), allow_redirects=False)
    session = cookie(SESSION_COOKIE, signed_in.cookies[SESSION_COOKIE].value)
    page = await (await admin.api.get("/keys", headers=session)).text()
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    with caplog.at_level(logging.INFO, logger="gateway.admin"):
        response = await admin.api.post(
            "/keys/rotate", data={"csrf_token": token}, headers=session, allow_redirects=False
        )
    assert response.status == 303
    assert any("admin POST /keys/rotate by token" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/users/alice", "/users/alice"),
        ("/grants?client=x", "/grants?client=x"),
        ("//evil.example/x", "/"),
        ("/\\evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/users\r\nSet-Cookie: x=1", "/"),
        ("", "/"),
    ],
)
def test_redirects_stay_on_the_listener(given, kept):
    assert local(given) == kept


def test_a_certificate_holder_has_one_session_however_often_they_come_without_the_cookie():
    sessions = ConsoleSessions()
    first = sessions.for_certificate("certificate:ops", b"")
    for _ in range(100):
        assert sessions.for_certificate("certificate:ops", b"") == first
    other = sessions.for_certificate("certificate:sre", b"")
    assert other[0] != first[0]
