"""Pre-registered clients (PRE-1): from YAML and from `mcp-auth-gateway clients add`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.accounts import add_user
from gateway.app_state import SETTINGS_KEY
from tests.conftest import route, write_config
from tests.support.oauth_client import REDIRECT, authorize_url, new_verifier, relative
from tests.support.token_flow import PASSWORD, basic, mcp_status, obtain_code, redeem


@pytest.fixture
async def alice(store, clock):
    await add_user(store, "alice", PASSWORD, now=clock.now)


async def test_yaml_client_with_a_secret_completes_the_code_flow(start_gateway, upstream, aiohttp_client, alice):
    """PRE-1 (ChatGPT "predefined client"): fixed id, secret and redirects from YAML; secret checked at /token."""
    server = await start_gateway(
        [route("alpha", upstream.url)],
        clients=[
            {
                "client_id": "chatgpt",
                "client_secret": "s3cret-s3cret-s3cret",
                "client_name": "ChatGPT",
                "token_endpoint_auth_method": "client_secret_post",
                "redirect_uris": [REDIRECT],
            }
        ],
    )
    client = await aiohttp_client(server)
    code = await obtain_code(server, "chatgpt")
    wrong = await redeem(client, code, client_secret="not-the-secret")
    assert wrong.status == 401 and wrong.error == "invalid_client"
    ok = await redeem(client, await obtain_code(server, "chatgpt"), client_secret="s3cret-s3cret-s3cret")
    assert ok.status == 200, ok.body
    assert await mcp_status(client, "/alpha/mcp", ok.body["access_token"]) == 200


def cli(config, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args, "-c", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_clients_add_list_remove(gateway, aiohttp_client, tmp_path, alice):
    """Contract `clients add|list|remove`: an admin-added confidential client works at /authorize and /token."""
    config = write_config(tmp_path / "gw.yaml", gateway.app[SETTINGS_KEY])
    added = cli(
        config,
        "clients",
        "add",
        "--client-id",
        "inspector",
        "--redirect-uri",
        REDIRECT,
        "--name",
        "Inspector",
        "--auth-method",
        "client_secret_basic",
    )
    assert added.returncode == 0, added.stderr
    secret = added.stdout.split("client_secret: ")[1].split()[0]
    listing = cli(config, "clients", "list")
    assert "inspector\tstatic\tInspector" in listing.stdout and secret not in listing.stdout

    client = await aiohttp_client(gateway)
    page = await client.get(relative(authorize_url(gateway, "inspector", verifier=new_verifier())))
    assert page.status == 200
    reply = await redeem(client, await obtain_code(gateway, "inspector"), headers=basic("inspector", secret))
    assert reply.status == 200, reply.body

    bad = cli(config, "clients", "add", "--client-id", "https://evil.example/x", "--redirect-uri", REDIRECT)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert cli(config, "clients", "remove", "inspector").returncode == 0
    gone = cli(config, "clients", "remove", "inspector")
    assert gone.returncode == 1 and "no client" in gone.stderr
