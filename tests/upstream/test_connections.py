"""What a user and an operator do with held credentials: the connections page (list, disconnect, revoked at the
upstream), `users remove` and `credentials list|revoke`, the gateway's own client metadata document, audit lines
that name the mode and never the value."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp

from gateway.accounts import add_user
from gateway.app_state import SETTINGS_KEY
from gateway.vault import Vault
from tests.conftest import write_config
from tests.support.headless_oauth import Browser, MemoryStorage, oauth_provider
from tests.support.mcp_wire import modern_call
from tests.upstream.conftest import UPSTREAM_USER, origin, remote_route
from tests.upstream.flows import call_echo, disconnect, signed_in_at_both

CLI = [sys.executable, "-m", "gateway"]


async def upstream_status(upstream_gateway, access_token: str) -> int:
    headers, body = modern_call(1, "echo_headers", {})
    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            f"{origin(upstream_gateway)}/notes/mcp",
            json=body,
            headers={**headers, "Authorization": f"Bearer {access_token}"},
        )
        return answer.status


async def test_disconnecting_revokes_the_credential_at_the_upstream_and_drops_it(
    start_gateway, upstream_gateway, store, clock
):
    front, _, browser, _ = await signed_in_at_both(start_gateway, upstream_gateway, store, clock)
    held = await Vault(front.app[SETTINGS_KEY].vault, store).load("local:alice", "route:remote")
    assert held is not None and await upstream_status(upstream_gateway, held[0].access_token) == 200
    async with aiohttp.ClientSession(cookie_jar=browser.jar) as http:
        page = await (await http.get(front.make_url("/upstream/connections"))).text()
    assert "remote" in page and held[0].access_token not in page  # listed, never shown
    await disconnect(browser, front)
    assert await store.credentials_of("local:alice") == {}
    assert await upstream_status(upstream_gateway, held[0].access_token) == 401  # RFC 7009 at the upstream


async def test_the_pages_want_a_signed_in_session_and_a_csrf_token(start_gateway, upstream_gateway, store, clock):
    front, _, browser, _ = await signed_in_at_both(start_gateway, upstream_gateway, store, clock)
    async with aiohttp.ClientSession() as stranger:  # no session
        for path in ("/upstream/connections", "/upstream/connect/remote"):
            answer = await stranger.get(front.make_url(path))
            assert answer.status == 403 and "Not signed in" in await answer.text()
    async with aiohttp.ClientSession(cookie_jar=browser.jar) as http:  # signed in, but no CSRF token
        for path, form in (
            ("/upstream/connections/disconnect", {"slot": "route:remote"}),
            ("/upstream/connect/remote", {}),
        ):
            answer = await http.post(front.make_url(path), data=form, allow_redirects=False)
            assert answer.status == 403, path
        assert (await http.get(front.make_url("/upstream/connect/nothing"))).status == 404
    assert list(await store.credentials_of("local:alice")) == ["route:remote"]


async def test_the_gateway_publishes_its_client_metadata_document_per_route(
    start_gateway, upstream_gateway, store, clock
):
    front, *_ = await signed_in_at_both(start_gateway, upstream_gateway, store, clock)
    async with aiohttp.ClientSession() as http:
        answer = await http.get(front.make_url("/upstream/client/remote"))
        document = await answer.json()
        assert (await http.get(front.make_url("/upstream/client/nothing"))).status == 404
    base = f"http://127.0.0.1:{front.port}"
    assert document["client_id"] == f"{base}/upstream/client/remote"
    assert document["redirect_uris"] == [f"{base}/upstream/callback/remote"]
    assert document["token_endpoint_auth_method"] == "none"


async def test_the_audit_line_names_the_credential_mode_never_its_value(
    start_gateway, upstream_gateway, upstream, store, clock, tmp_path
):

    log = tmp_path / "audit.jsonl"
    front = await start_gateway([remote_route(upstream_gateway)], audit={"path": str(log)})
    await add_user(store, "alice", "correct-horse-battery", now=clock.now)
    url = str(front.make_url("/remote/mcp"))
    browser = Browser("alice", "correct-horse-battery", logins={origin(upstream_gateway): UPSTREAM_USER})
    await call_echo(url, oauth_provider(url, browser, MemoryStorage()))
    held = await Vault(front.app[SETTINGS_KEY].vault, store).load("local:alice", "route:remote")
    await front.close()  # (the audit log flushed)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    calls = [line for line in lines if line.get("event") == "mcp.request" and line.get("tools")]
    assert calls and all(line["credential"] == "oauth" for line in calls)
    connects = [line for line in lines if line.get("event") == "upstream.connect"]
    assert [line["outcome"] for line in connects] == ["connected"]
    text = log.read_text()
    assert held[0].access_token not in text and (held[0].refresh_token or "-") not in text


async def cli(config, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess, awaited (the upstream gateway it revokes at runs on this test's event loop)."""
    process = await asyncio.create_subprocess_exec(
        *CLI, *args, "-c", str(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return subprocess.CompletedProcess(args, process.returncode or 0, out.decode(), err.decode())


async def test_operators_list_and_revoke_credentials_and_users_remove_drops_them(
    start_gateway, upstream_gateway, store, clock, tmp_path
):
    front, *_ = await signed_in_at_both(start_gateway, upstream_gateway, store, clock)
    config = write_config(tmp_path / "gateway.yaml", front.app[SETTINGS_KEY])
    listed = await cli(config, "credentials", "list")
    assert listed.returncode == 0 and "local:alice\troute:remote" in listed.stdout and "refreshable" in listed.stdout
    held = await Vault(front.app[SETTINGS_KEY].vault, store).load("local:alice", "route:remote")
    assert held[0].access_token not in listed.stdout
    revoked = await cli(config, "credentials", "revoke", "local:alice", "--route", "remote")
    assert revoked.returncode == 0 and "1 credential(s)" in revoked.stdout, revoked.stderr
    assert await store.credentials_of("local:alice") == {}
    assert await upstream_status(upstream_gateway, held[0].access_token) == 401
    again = await cli(config, "credentials", "revoke", "local:alice", "--route", "remote")
    assert again.returncode == 1 and "holds no credential" in again.stderr

    await store.save_credential("local:alice", "route:remote", "v1.00000000.unreadable")
    removed = await cli(config, "users", "remove", "alice")
    assert removed.returncode == 0 and "1 upstream credential(s) revoked and dropped" in removed.stdout
    assert await store.credentials_of("local:alice") == {}
