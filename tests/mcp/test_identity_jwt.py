"""Signed identity for upstreams (issue #5 item 5): ES256 JWT, audience = the route's resource, 60 s, JWKS."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx2
from joserfc import jwt
from joserfc.jwk import KeySet
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.app import create_app
from gateway.app_state import SETTINGS_KEY
from gateway.ports import free_port
from tests.conftest import make_settings, route, write_config
from tests.support.tokens import issue


async def upstream_view(server, token: str) -> dict[str, str]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}", "X-MCP-Identity": "forged"}, timeout=30)
    async with http, Client(streamable_http_client(str(server.make_url("/alpha/mcp")), http_client=http)) as client:
        return json.loads((await client.call_tool("echo_headers", {})).content[0].text)


async def jwks(server) -> KeySet:
    async with httpx2.AsyncClient() as http:
        return KeySet.import_key_set((await http.get(str(server.make_url("/.well-known/jwks.json")))).json())


async def test_upstream_receives_a_verifiable_identity_jwt(start_gateway, upstream, store):
    server = await start_gateway([route("alpha", upstream.url, identity_jwt_header="X-MCP-Identity")])
    token = await issue(store, server, "alpha", groups=("eng",))
    seen = await upstream_view(server, token)
    assert seen["x-mcp-identity"] != "forged"  # the client's copy was dropped
    claims = jwt.decode(seen["x-mcp-identity"], await jwks(server), algorithms=["ES256"]).claims
    assert claims["aud"] == f"http://127.0.0.1:{server.port}/alpha/mcp"
    assert claims["iss"] == f"http://127.0.0.1:{server.port}"
    assert claims["sub"] == "local:alice" and claims["groups"] == ["eng"]
    assert claims["exp"] - claims["iat"] == 60


async def test_rotation_keeps_old_tokens_verifiable(
    start_gateway, upstream, store, aiohttp_server, redis_url, key_prefix, clock, tmp_path
):
    """`keys rotate` adds a key that signs from then on; the previous key stays in the JWKS."""
    first = await start_gateway([route("alpha", upstream.url, identity_jwt_header="X-MCP-Identity")])
    token = await issue(store, first, "alpha")
    before = (await upstream_view(first, token))["x-mcp-identity"]
    config = write_config(tmp_path / "gw.yaml", first.app[SETTINGS_KEY])
    rotated = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "rotate", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rotated.returncode == 0, rotated.stderr
    # another instance (fresh key cache) of the same deployment
    settings = make_settings(
        first.port, redis_url, key_prefix, [route("alpha", upstream.url, identity_jwt_header="X-MCP-Identity")]
    )
    second = await aiohttp_server(create_app(settings, clock=clock), port=free_port())
    keys = await jwks(second)
    assert len(keys.keys) == 2
    after = (await upstream_view(second, token))["x-mcp-identity"]
    assert jwt.decode(after, keys).header["kid"] != jwt.decode(before, keys).header["kid"]
