"""Identity providers for the federation tests: a real OpenID provider process (oidc-provider-mock) and a
loopback stand-in of GitHub's OAuth and REST endpoints (GitHub cannot be reached from tests)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlencode

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.ports import free_port, wait_for_port


@dataclass
class OidcProviderProcess:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def add_user(self, sub: str, **claims: Any) -> None:
        async with aiohttp.ClientSession() as http, http.put(f"{self.issuer}/users/{sub}", json=claims) as r:
            assert r.status == 204, await r.text()


@contextmanager
def oidc_provider(workdir: Path) -> Iterator[OidcProviderProcess]:
    """oidc-provider-mock as a subprocess: discovery, JWKS, authorization form, token, userinfo; nonce required."""
    port = free_port()
    log = (workdir / f"oidc-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--port", str(port), "--require-nonce"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process, deadline=30)
        yield OidcProviderProcess(port, process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@dataclass
class GitHubUser:
    id: int
    login: str
    name: str
    emails: list[dict[str, Any]]
    orgs: list[str] = field(default_factory=list)
    teams: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class TokenRequest:
    """One call to the stand-in's token endpoint, as GitHub saw it."""

    form: dict[str, str]
    client_auth: str  # client_secret_basic (HTTP Basic), client_secret_post (form fields) or none
    client_id: str
    accept: str


@dataclass
class GitHubStandIn:
    url: str
    users: dict[str, GitHubUser] = field(default_factory=dict)  # by login
    codes: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # code -> login, challenge, redirect
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> login
    authorizations: list[dict[str, str]] = field(default_factory=list)  # the query of each authorization request
    token_requests: list[TokenRequest] = field(default_factory=list)


@asynccontextmanager
async def github_stand_in(client_id: str, client_secret: str) -> AsyncIterator[GitHubStandIn]:
    """github.com/login/oauth/{authorize,access_token} and api.github.com/user{,/emails,/orgs,/teams}.

    The token endpoint takes the client's credentials as form fields or as HTTP Basic (not both), checks PKCE and
    the redirect URI, and answers as GitHub does: 200 whatever happened (an `error` field when it refused), as
    JSON when the request accepts it, else form-encoded."""
    state: list[GitHubStandIn] = []

    async def authorize(request: web.Request) -> web.StreamResponse:
        params = request.query
        if params.get("client_id") != client_id:
            return web.Response(status=404, text="unknown client")
        if request.method == "GET":
            state[0].authorizations.append(dict(params))
            return web.Response(content_type="text/html", text='<form method="post"><input name="sub"></form>')
        login = str((await request.post()).get("sub"))
        code = secrets.token_hex(10)
        state[0].codes[code] = (login, params["code_challenge"], params["redirect_uri"])
        target = params["redirect_uri"] + "?" + urlencode({"code": code, "state": params["state"]})
        return web.Response(status=302, headers={"Location": target})

    async def access_token(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        method, given_id, given_secret = _client_credentials(request.headers.get("Authorization"), form)
        accept = request.headers.get("Accept", "")
        state[0].token_requests.append(TokenRequest(form, method, given_id, accept))
        if (given_id, given_secret) != (client_id, client_secret):
            return _github_answer(accept, {"error": "incorrect_client_credentials"})  # GitHub answers errors with 200
        return _github_answer(accept, _redeem(state[0], form))

    def user_of(request: web.Request) -> GitHubUser:
        login = state[0].tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if login is None:
            raise web.HTTPUnauthorized()
        return state[0].users[login]

    async def user(request: web.Request) -> web.Response:
        u = user_of(request)
        return web.json_response({"id": u.id, "login": u.login, "name": u.name})

    async def emails(request: web.Request) -> web.Response:
        return web.json_response(user_of(request).emails)

    async def orgs(request: web.Request) -> web.Response:
        return web.json_response([{"login": o} for o in user_of(request).orgs])

    async def teams(request: web.Request) -> web.Response:
        return web.json_response([{"slug": t, "organization": {"login": o}} for o, t in user_of(request).teams])

    app = web.Application()
    app.router.add_route("*", "/login/oauth/authorize", authorize)
    app.router.add_post("/login/oauth/access_token", access_token)
    app.router.add_get("/api/user", user)
    app.router.add_get("/api/user/emails", emails)
    app.router.add_get("/api/user/orgs", orgs)
    app.router.add_get("/api/user/teams", teams)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.append(GitHubStandIn(url=f"http://127.0.0.1:{server.port}"))
    try:
        yield state[0]
    finally:
        await server.close()


def _client_credentials(authorization: str | None, form: dict[str, str]) -> tuple[str, str, str | None]:
    """(method, client_id, secret) of a token request; an unreadable or doubled authentication has no secret."""
    if authorization is not None and authorization.startswith("Basic "):
        if "client_secret" in form:
            return "both", "", None  # RFC 6749 §2.3: one method per request
        try:
            pair = base64.b64decode(authorization.removeprefix("Basic "), validate=True).decode("utf-8")
        except ValueError:
            return "client_secret_basic", "", None
        given_id, _, secret = pair.partition(":")  # RFC 6749 §2.3.1: each part form-urlencoded
        return "client_secret_basic", unquote_plus(given_id), unquote_plus(secret)
    if "client_secret" in form:
        return "client_secret_post", form.get("client_id", ""), form["client_secret"]
    return "none", form.get("client_id", ""), None


def _redeem(stand_in: GitHubStandIn, form: dict[str, str]) -> dict[str, str]:
    """A code for a token, once; the PKCE verifier and the redirect URI must be those of its authorization."""
    entry = stand_in.codes.pop(form.get("code", ""), None)
    verifier = form.get("code_verifier", "").encode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
    if entry is None or entry[1] != challenge or entry[2] != form.get("redirect_uri"):
        return {"error": "bad_verification_code"}
    token = "gho_" + secrets.token_hex(16)
    stand_in.tokens[token] = entry[0]
    return {"access_token": token, "token_type": "bearer", "scope": "read:user"}


def _github_answer(accept: str, body: dict[str, str]) -> web.Response:
    """200, as JSON when asked for (`Accept: application/json`), else form-encoded (GitHub's default)."""
    if "application/json" in accept:
        return web.json_response(body)
    return web.Response(text=urlencode(body), content_type="application/x-www-form-urlencoded")
