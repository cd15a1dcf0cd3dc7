"""`check-config --connect`: the store, each HTTP upstream, each stdio program and each OIDC provider's discovery
document, reached for real (a real Redis, the real upstream MCP process, an IdP stand-in on loopback)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.cli_polish.conftest import PUBLIC_URL, http_route, run_async, write
from tests.conftest import SERVER_URL
from tests.support.processes import UpstreamProcess, free_port
from tests.support.stalled import stalled_server


async def discovery_server(aiohttp_server: Any) -> str:
    """A stand-in OIDC provider: `/.well-known/openid-configuration` names its own issuer; under `/other` a
    document naming another issuer; anything else 404."""
    base = ""

    async def document(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": base,  # under /other too: not that issuer
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks",
            }
        )

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", document)
    app.router.add_get("/other/.well-known/openid-configuration", document)
    server = await aiohttp_server(app)
    base = f"http://127.0.0.1:{server.port}"
    return base


def provider(name: str, issuer: str) -> dict[str, Any]:
    return {"name": name, "type": "oidc", "issuer": issuer, "client_id": "gw", "client_secret": "provider-secret"}


def config(tmp_path: Path, store_url: str, routes: list[dict[str, Any]], providers: list[dict[str, Any]]) -> str:
    return write(
        tmp_path / "gw.yaml",
        {
            "public_url": PUBLIC_URL,
            "store": {"url": store_url, "key_prefix": "cli-polish-connect"},
            "login": {"local": True, "providers": providers},
            "allow": {"providers": ["local", *(p["name"] for p in providers)]},
            "routes": routes,
        },
    )


async def test_connect_reaches_everything_the_configuration_names(
    tmp_path: Path, upstream: UpstreamProcess, aiohttp_server: Any
) -> None:
    """Issue 15: one `ok` line per check, exit 0; any HTTP answer from an upstream means reachable."""
    issuer = await discovery_server(aiohttp_server)
    stdio = {"name": "files", "path": "/files/mcp", "command": [sys.executable, "-m", "gateway.demo_upstream"]}
    path = config(tmp_path, SERVER_URL, [http_route("notes", upstream.url), stdio], [provider("corp", issuer)])
    result = await run_async("check-config", "--connect", "-c", path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("configuration OK")
    checks = lines[1:]
    assert len(checks) == 4 and all(line.startswith("ok   ") for line in checks), checks
    assert checks[0].startswith("ok   store Redis at ") and checks[0].endswith("(ping)")
    assert checks[1].startswith(f"ok   upstream notes {upstream.url} (HTTP ")
    assert checks[2] == f"ok   command files {sys.executable} ({sys.executable})"
    assert checks[3] == f"ok   provider corp {issuer}/.well-known/openid-configuration (HTTP 200)"
    assert result.stderr == ""


async def test_connect_fails_for_each_thing_that_cannot_be_reached(tmp_path: Path, aiohttp_server: Any) -> None:
    """Issue 15: `FAIL <what>: <why>` for each, exit 1 with a one-line reason; the store's password never shows."""
    issuer = await discovery_server(aiohttp_server)
    closed = free_port()
    async with stalled_server() as stalled:
        routes = [
            http_route("refused", f"http://127.0.0.1:{closed}/mcp"),
            http_route("silent", stalled.url),
            {"name": "files", "path": "/files/mcp", "command": ["no-such-program-cli-polish", "--stdio"]},
        ]
        providers = [provider("missing", f"{issuer}/missing"), provider("liar", f"{issuer}/other")]
        path = config(tmp_path, f"redis://:store-password@127.0.0.1:{closed}/0", routes, providers)
        result = await run_async("check-config", "--connect", "-c", path)
    assert result.returncode == 1, result.stdout + result.stderr
    checks = result.stdout.splitlines()[1:]
    assert checks[0].startswith(f"FAIL store Redis at redis://127.0.0.1:{closed}/0 (prefix cli-polish-connect): ")
    assert "store-password" not in result.stdout + result.stderr
    assert checks[1:] == [
        f"FAIL upstream refused http://127.0.0.1:{closed}/mcp: connection refused",
        f"FAIL upstream silent {stalled.url}: no answer within 3 s",
        "FAIL command files no-such-program-cli-polish: not found on PATH",
        f"FAIL provider missing {issuer}/missing/.well-known/openid-configuration: HTTP 404",
        f"FAIL provider liar {issuer}/other/.well-known/openid-configuration: the document names another issuer "
        f"({issuer})",
    ]
    assert result.stderr == "mcp-auth-gateway: error: 6 of 6 connection checks failed\n"


async def test_without_connect_nothing_is_reached(tmp_path: Path) -> None:
    """Plain check-config stays offline (CI runs it where the store and upstreams are not)."""
    closed = free_port()
    path = config(tmp_path, f"redis://127.0.0.1:{closed}/0", [http_route("notes", f"http://127.0.0.1:{closed}")], [])
    result = await run_async("check-config", "-c", path)
    assert result.returncode == 0 and result.stdout.startswith("configuration OK"), result.stderr
