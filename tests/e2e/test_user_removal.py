"""Issue 10 #3 end to end: `users remove` beside a running `mcp-auth-gateway serve` (same embedded store) ends the
user's access on every path: their old browser session gets no code (not even from the remembered consent), a
code issued just before cannot be redeemed, and their tokens stop working (revocation reaches the serving
process's token cache) and cannot be refreshed."""

from __future__ import annotations

import subprocess
from urllib.parse import urlencode

import aiohttp
import pytest

from gateway.oauth.pkce import s256
from gateway.ports import free_port, wait_for_port
from tests.e2e.test_lifecycle import CLI, poll
from tests.support.headless_oauth import Browser
from tests.support.mcp_wire import modern_call
from tests.support.oauth_client import new_verifier

PASSWORD = "correct-horse-battery"


@pytest.fixture
def serving(tmp_path, upstream):
    port = free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"public_url: http://127.0.0.1:{port}\n"
        f"listen: {{host: 127.0.0.1, port: {port}, metrics_port: null}}\n"
        f"store: {{data_dir: {tmp_path / 'data'}}}\naudit: {{enabled: false}}\n"
        f"routes:\n  - {{name: alpha, path: /alpha/mcp, upstream: '{upstream.url}', "
        "scopes: [alpha:read]}\n"
    )
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([*CLI, "serve", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, deadline=30)
        yield f"http://127.0.0.1:{port}", config
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def cli(config, *args: str, stdin: str = "") -> str:
    done = subprocess.run([*CLI, *args, "-c", str(config)], input=stdin, text=True, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_removed_user_loses_session_codes_and_tokens_at_once(serving):
    base, config = serving
    cli(config, "users", "add", "dave", "--password-stdin", stdin=PASSWORD + "\n")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/register",
            json={
                "redirect_uris": ["https://app.example/cb"],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "client_name": "e2e",
            },
        ) as registered:
            assert registered.status == 201
            client_id = (await registered.json())["client_id"]
        browser = Browser("dave", PASSWORD)

        async def authorize() -> tuple[dict[str, str], str]:
            verifier = new_verifier()
            query = urlencode(
                {
                    "response_type": "code",
                    "client_id": client_id,
                    "redirect_uri": "https://app.example/cb",
                    "code_challenge": s256(verifier),
                    "code_challenge_method": "S256",
                    "state": "s",
                    "resource": f"{base}/alpha/mcp",
                }
            )
            return await browser.authorize(f"{base}/authorize?{query}"), verifier

        async def redeem(code: str, verifier: str) -> tuple[int, dict]:
            async with http.post(
                f"{base}/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "code_verifier": verifier,
                    "redirect_uri": "https://app.example/cb",
                    "client_id": client_id,
                },
            ) as answer:
                return answer.status, await answer.json()

        async def mcp_status(token: str) -> int:
            headers, body = modern_call(1, "add", {"a": 1, "b": 2})
            async with http.post(
                f"{base}/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"}
            ) as answer:
                await answer.read()
                return answer.status

        first, verifier = await authorize()
        status, tokens = await redeem(first["code"], verifier)
        assert status == 200 and await mcp_status(tokens["access_token"]) == 200
        second, second_verifier = await authorize()  # remembered consent: a code with no page at all
        assert "code" in second and len(browser.pages) == 2

        removed = cli(config, "users", "remove", "dave")
        assert "1 login session(s) ended" in removed and "1 token(s) revoked" in removed

        assert (await authorize())[0] == {"status": "401"}  # the login page again; dave's password is gone
        assert 'name="password"' in browser.pages[-2]
        status, refused = await redeem(second["code"], second_verifier)
        assert status == 400 and refused["error"] == "invalid_grant"
        async with http.post(
            f"{base}/token",
            data={"grant_type": "refresh_token", "client_id": client_id, "refresh_token": tokens["refresh_token"]},
        ) as answer:
            assert answer.status == 400 and (await answer.json())["error"] == "invalid_grant"

        async def refused() -> bool:
            return await mcp_status(tokens["access_token"]) == 401

        await poll(refused, deadline=10)  # the revocation reaches the serving process's token cache by pub/sub
