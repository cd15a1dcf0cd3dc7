"""An HTTPS server on loopback that serves Client ID Metadata Documents (a stand-in for claude.ai, vscode.dev …).

Its certificate comes from a throwaway CA (trustme); the gateway trusts that CA through `cimd.ca_file` and
reaches `localhost` through `cimd.allow_hosts` (the explicit allowlist for private deployments and tests).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class CimdServer:
    port: int
    ca_file: Path
    documents: dict[str, tuple[int, Any, dict[str, str]]] = field(default_factory=dict)  # path -> status, body, hdrs
    hits: dict[str, int] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)  # paths answered with headers only, until `release` is set
    release: asyncio.Event = field(default_factory=asyncio.Event)
    streamed: set[str] = field(default_factory=set)  # paths sent chunked, without a Content-Length

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}{path}"

    def publish(self, path: str, document: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> str:
        self.documents[path] = (status, document, headers or {})
        return self.url(path)

    def client_document(self, path: str, **overrides: Any) -> str:
        """Publish a valid document for a loopback-redirect client and return its URL (the client_id)."""
        url = self.url(path)
        return self.publish(
            path,
            {
                "client_id": url,
                "client_name": "CIMD Tool",
                "token_endpoint_auth_method": "none",
                "redirect_uris": ["http://127.0.0.1:33418/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                **overrides,
            },
        )


@asynccontextmanager
async def cimd_server(tmp_path: Path) -> AsyncIterator[CimdServer]:
    ca = trustme.CA()
    ca_file = tmp_path / "cimd-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    certificate = ca.issue_cert("localhost", "127.0.0.1")
    state: list[CimdServer] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        server = state[0]
        server.hits[request.path] = server.hits.get(request.path, 0) + 1
        if request.path not in server.documents:
            return web.Response(status=404)
        status, body, headers = server.documents[request.path]
        text = body if isinstance(body, str) else json.dumps(body)
        headers = {"Content-Type": "application/json", **headers}
        if request.path not in server.held and request.path not in server.streamed:
            return web.Response(status=status, text=text, headers=headers)
        response = web.StreamResponse(status=status, headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        if request.path in server.held:
            await server.release.wait()
        for start in range(0, len(text), 1000):
            await response.write(text[start : start + 1000].encode())
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", serve)

    ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(ssl_context)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=ssl_context)
    state.append(CimdServer(port=server.port or 0, ca_file=ca_file))
    try:
        yield state[0]
    finally:
        state[0].release.set()  # held answers finish, so the server closes at once
        await server.close()
