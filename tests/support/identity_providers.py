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
from urllib.parse import urlencode

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


@dataclass
class GitHubStandIn:
    url: str
    users: dict[str, GitHubUser] = field(default_factory=dict)  # by login
    codes: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # code -> login, challenge, redirect
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> login


@asynccontextmanager
async def github_stand_in(client_id: str, client_secret: str) -> AsyncIterator[GitHubStandIn]:
    """github.com/login/oauth/{authorize,access_token} and api.github.com/user{,/emails,/orgs,/teams}."""
    state: list[GitHubStandIn] = []

    async def authorize(request: web.Request) -> web.StreamResponse:
        params = request.query
        if params.get("client_id") != client_id:
            return web.Response(status=404, text="unknown client")
        if request.method == "GET":
            return web.Response(content_type="text/html", text='<form method="post"><input name="sub"></form>')
        login = str((await request.post()).get("sub"))
        code = secrets.token_hex(10)
        state[0].codes[code] = (login, params["code_challenge"], params["redirect_uri"])
        target = params["redirect_uri"] + "?" + urlencode({"code": code, "state": params["state"]})
        return web.Response(status=302, headers={"Location": target})

    async def access_token(request: web.Request) -> web.Response:
        form = await request.post()
        entry = state[0].codes.pop(str(form.get("code")), None)
        verifier = str(form.get("code_verifier", "")).encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        if (
            (form.get("client_id"), form.get("client_secret")) != (client_id, client_secret)
            or entry is None
            or entry[1] != challenge
            or entry[2] != form.get("redirect_uri")
        ):
            return web.json_response({"error": "bad_verification_code"})  # GitHub answers errors with 200
        token = "gho_" + secrets.token_hex(16)
        state[0].tokens[token] = entry[0]
        return web.json_response({"access_token": token, "token_type": "bearer", "scope": "read:user"})

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
