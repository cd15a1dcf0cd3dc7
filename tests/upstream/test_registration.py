"""Which client the gateway is at an upstream's authorization server: the configured one, its own CIMD document
(only for an https public_url), else one registered dynamically, once per route and server."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config import OAuthUpstreamAuth, VaultSettings
from gateway.config.upstream_auth import endpoint_problem, http_hosts_of
from gateway.upstream_oauth.client import client_for
from gateway.upstream_oauth.discovery import ServerMetadata
from gateway.upstream_oauth.http import UpstreamOAuthError, oauth_session
from gateway.vault import Vault


@pytest.fixture
async def registrar():
    calls: list[dict] = []

    async def register(request: web.Request) -> web.Response:
        calls.append(await request.json())
        return web.json_response({"client_id": f"registered-{len(calls)}", "client_secret": "s3cret"}, status=201)

    app = web.Application()
    app.router.add_post("/register", register)
    server = TestServer(app)
    await server.start_server()
    yield server, calls
    await server.close()


def meta(**extra) -> ServerMetadata:
    return ServerMetadata(
        authorization_endpoint="https://as/a", token_endpoint="https://as/t", issuer="https://as", **extra
    )


async def test_configured_then_cimd_then_dcr_once(store, registrar):
    server, calls = registrar
    vault = Vault(VaultSettings(), store)
    endpoint = str(server.make_url("/register"))
    async with oauth_session() as http:
        configured = OAuthUpstreamAuth(type="oauth", client_id="mine", client_secret="pw")
        chosen = await client_for(http, vault, "https://gw.example", "r", configured, meta(cimd=True))
        assert (chosen.client_id, chosen.client_secret) == ("mine", "pw")

        auto = OAuthUpstreamAuth(type="oauth")
        chosen = await client_for(http, vault, "https://gw.example", "r", auto, meta(cimd=True))
        assert chosen.client_id == "https://gw.example/upstream/client/r" and chosen.client_secret is None

        offered = meta(cimd=True, registration_endpoint=endpoint)
        chosen = await client_for(http, vault, "http://127.0.0.1:1", "r", auto, offered)  # http: no CIMD
        assert (chosen.client_id, chosen.client_secret) == ("registered-1", "s3cret")
        again = await client_for(http, vault, "http://127.0.0.1:1", "r", auto, offered)
        assert again.client_id == "registered-1" and len(calls) == 1  # kept (sealed), not registered again
        assert calls[0]["redirect_uris"] == ["http://127.0.0.1:1/upstream/callback/r"]
        assert "client_id" not in calls[0]

        with pytest.raises(UpstreamOAuthError, match="configure upstream_auth.client_id"):
            await client_for(http, vault, "http://127.0.0.1:1", "other", auto, meta())


def test_plain_http_is_named_only_on_a_plain_http_upstreams_own_host():
    """An https upstream's documents must name https URLs (a remote one naming http://127.0.0.1 would have the
    gateway call its own host); an internal plain-http upstream may name its own host; loopback stays loopback."""
    remote, internal, local = (
        http_hosts_of(u) for u in ("https://mcp.vendor.example/mcp", "http://mcp:8000/mcp", "http://127.0.0.1:9/mcp")
    )
    assert endpoint_problem("http://127.0.0.1:1/token", http_hosts=remote) == "https is required"
    assert endpoint_problem("https://as.vendor.example/token", http_hosts=remote) is None
    assert endpoint_problem("http://mcp:8000/.well-known/x", http_hosts=internal) is None
    assert endpoint_problem("http://127.0.0.1:1/token", http_hosts=internal) == "https is required"
    assert endpoint_problem("http://localhost:2/token", http_hosts=local) is None
    assert endpoint_problem("https://[::1/x") is not None and endpoint_problem("https://a:99999/") is not None
    for internal in ("https://10.0.0.5/t", "https://169.254.169.254/t", "https://[::1]/t", "https://localhost/t"):
        assert "internal address" in endpoint_problem(internal, http_hosts=remote, internal_ok=False), internal
        assert endpoint_problem(internal, http_hosts=remote, internal_ok=True) is None  # (an internal upstream)
