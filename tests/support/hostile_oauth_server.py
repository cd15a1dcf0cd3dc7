"""A malicious "MCP server + its own authorization server" in one in-process aiohttp app, for `upstream_auth: oauth`
routes (tests/upstream/test_hostile_servers.py). Left alone it is honest: the MCP endpoint answers 401 naming its
RFC 9728 metadata, which names itself as the authorization server (RFC 8414 metadata, PKCE S256, dynamic
registration), and its authorization endpoint sends the browser straight back to `redirect_uri` with a code (no
login page). A test makes it lie by replacing what one endpoint answers (`answers`), changing the documents
(`resource_changes`, `metadata_changes`: a None value removes the key) or the query of the redirect back
(`callback`). It is served at http://localhost:<port> (the gateway under test is at 127.0.0.1: the browser keeps
cookies per host); http://127.0.0.1:<port>/elsewhere/<endpoint> is a foreign origin serving the honest answer,
so a redirect that was followed shows in `hits`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.ports import free_port

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]
CODE = "hostile-code-1"
ACCESS_TOKEN = "hostile-access-token"
CLIENT_ID = "hostile-client"
PRM_PATH = "/.well-known/oauth-protected-resource/mcp"
ENDPOINTS = {  # name -> (method, path)
    "probe": ("POST", "/mcp"),
    "resource_metadata": ("GET", PRM_PATH),
    "server_metadata": ("GET", "/.well-known/oauth-authorization-server"),
    "registration": ("POST", "/register"),
    "authorize": ("GET", "/authorize"),
    "token": ("POST", "/token"),
}


class HostileAuthServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"
        self.foreign = f"http://127.0.0.1:{self.port}"  # the same server, another origin
        self.url = f"{self.origin}/mcp"
        self.answers: dict[str, Answer] = {}  # endpoint name -> what it answers instead of the honest answer
        self.resource_changes: dict[str, Any] = {}
        self.metadata_changes: dict[str, Any] = {}
        self.callback: Callable[[dict[str, str]], dict[str, str]] | None = None  # the honest query -> the one sent
        self.hold_authorization = False  # the authorization endpoint shows a page instead of redirecting back
        self.hits: list[str] = []  # endpoint names, in the order they were called ("elsewhere:<name>" too)
        self.authorization_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.released = asyncio.Event()  # ends every answer that hangs or never ends
        self._server: TestServer | None = None

    # -- the honest answers -----------------------------------------------------------------------------------

    def resource_document(self) -> dict[str, Any]:
        document = {
            "resource": self.url,
            "authorization_servers": [self.origin],
            "scopes_supported": ["notes:read"],
            "bearer_methods_supported": ["header"],
        }
        return _changed(document, self.resource_changes)

    def server_document(self) -> dict[str, Any]:
        document = {
            "issuer": self.origin,
            "authorization_endpoint": f"{self.origin}/authorize",
            "token_endpoint": f"{self.origin}/token",
            "registration_endpoint": f"{self.origin}/register",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
        }
        return _changed(document, self.metadata_changes)

    async def _honest(self, name: str, request: web.Request) -> web.StreamResponse:
        if name == "probe":
            challenge = f'Bearer resource_metadata="{self.origin}{PRM_PATH}", scope="notes:read"'
            body = {"jsonrpc": "2.0", "id": 0, "error": {"code": -32001, "message": "unauthorized"}}
            return web.json_response(body, status=401, headers={"WWW-Authenticate": challenge})
        if name == "resource_metadata":
            return web.json_response(self.resource_document())
        if name == "server_metadata":
            return web.json_response(self.server_document())
        if name == "registration":
            document = await request.json()
            return web.json_response({**document, "client_id": CLIENT_ID}, status=201)
        if name == "authorize":
            if self.hold_authorization:
                return web.Response(text="<!doctype html><p>Waiting.</p>", content_type="text/html")
            query = {"code": CODE, "state": request.query.get("state", ""), "iss": self.origin}
            if self.callback is not None:
                query = self.callback(query)
            location = f"{request.query['redirect_uri']}?{urlencode(query)}"
            return web.Response(status=302, headers={"Location": location})
        assert name == "token"
        return web.json_response({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600})

    # -- the server -------------------------------------------------------------------------------------------

    def _handler(self, name: str) -> Answer:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.hits.append(name)
            if name == "authorize":
                self.authorization_requests.append(dict(request.query))
            elif name == "token":
                self.token_requests.append({k: str(v) for k, v in (await request.post()).items()})
            answer = self.answers.get(name)
            return await answer(request) if answer is not None else await self._honest(name, request)

        return handle

    async def _elsewhere(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits.append(f"elsewhere:{name}")
        return await self._honest(name, request)

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(f"unknown:{request.path}")
        return web.json_response({"error": "not_found"}, status=404)

    async def start(self) -> None:
        app = web.Application()
        for name, (method, path) in ENDPOINTS.items():
            app.router.add_route(method, path, self._handler(name))
        app.router.add_route("*", "/elsewhere/{name}", self._elsewhere)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._server = TestServer(app, port=self.port)
        await self._server.start_server()

    async def close(self) -> None:
        self.released.set()
        if self._server is not None:
            await self._server.close()

    # -- dishonest answers ------------------------------------------------------------------------------------

    def redirect_elsewhere(self, name: str) -> Answer:
        """A 302 to the foreign origin (which serves the honest answer: followed, it would work)."""

        async def answer(request: web.Request) -> web.StreamResponse:
            return web.Response(status=302, headers={"Location": f"{self.foreign}/elsewhere/{name}"})

        return answer

    def sized(self, document: dict[str, Any], size: int, *, framing: str) -> Answer:
        """`document` as JSON padded past `size` bytes (valid JSON: only its size is wrong). framing: "length"
        (Content-Length), "chunked" (none, chunked), "endless" (chunked, never ends: 16 KiB chunks until the
        reader goes or the server closes)."""
        padded = json.dumps({**document, "padding": "x" * size}).encode()

        async def answer(request: web.Request) -> web.StreamResponse:
            if framing == "length":
                return web.Response(body=padded, content_type="application/json")
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            try:
                if framing == "chunked":
                    for start in range(0, len(padded), 8192):
                        await response.write(padded[start : start + 8192])
                else:
                    await response.write(b'{"padding": "')
                    while not self.released.is_set():
                        await response.write(b"x" * 16384)
                        await asyncio.sleep(0)
                await response.write_eof()
            except (ConnectionError, RuntimeError):
                pass  # the reader hung up
            return response

        return answer

    def hang(self, *, trickle: bool = False) -> Answer:
        """No answer until the server closes; `trickle`: the headers at once, then a byte a second."""

        async def answer(request: web.Request) -> web.StreamResponse:
            if not trickle:
                await self.released.wait()
                return web.Response(status=503)
            response = web.StreamResponse(status=401, headers={"Content-Type": "application/json"})
            await response.prepare(request)
            try:
                while not self.released.is_set():
                    await response.write(b" ")
                    try:
                        await asyncio.wait_for(self.released.wait(), 1)
                    except TimeoutError:
                        pass
            except (ConnectionError, RuntimeError):
                pass
            return response

        return answer


def raw(
    body: bytes | str,
    *,
    status: int = 200,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Answer:
    """Exactly this answer."""
    data = body.encode() if isinstance(body, str) else body

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=data, status=status, content_type=content_type, headers=headers)

    return answer


def json_answer(document: Any, *, status: int = 200) -> Answer:
    return raw(json.dumps(document), status=status)


def _changed(document: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**document, **changes}
    return {k: v for k, v in merged.items() if v is not None}
