"""Raw token-endpoint steps: get a code through login and consent, then talk form-encoded OAuth to the gateway."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDictProxy

from tests.support.headless_oauth import Browser
from tests.support.mcp_wire import modern_call
from tests.support.oauth_client import REDIRECT, authorize_url, new_verifier

PASSWORD = "correct-horse-battery"


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, read: status, headers and the parsed JSON body (None when it was not JSON)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: Any

    @property
    def error(self) -> str | None:
        return self.body.get("error") if isinstance(self.body, dict) else None


async def read(response: ClientResponse) -> Reply:
    body = await response.json() if response.content_type == "application/json" else await response.text()
    return Reply(response.status, response.headers, body)


def basic(client_id: str, secret: str) -> dict[str, str]:
    """`Authorization: Basic` with both parts form-urlencoded first (RFC 6749 §2.3.1)."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


async def post_form(
    client: TestClient,
    path: str,
    form: Mapping[str, str] | Sequence[tuple[str, str]],
    *,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """POST `form` as application/x-www-form-urlencoded (a sequence of pairs may repeat a name)."""
    data = list(form.items()) if isinstance(form, Mapping) else list(form)
    return await read(await client.post(path, data=data, headers=dict(headers or {})))


async def token_request(client: TestClient, *, headers: Mapping[str, str] | None = None, **form: str) -> Reply:
    return await post_form(client, "/token", form, headers=headers)


@dataclass(frozen=True)
class Code:
    code: str
    verifier: str
    client_id: str


async def obtain_code(
    server: TestServer,
    client_id: str,
    *,
    route: str | None = "alpha",
    user: str = "alice",
    password: str = PASSWORD,
    **extra: str,
) -> Code:
    """Walk /authorize, login and consent as `user` (a fresh browser) and return the code with its verifier."""
    verifier = new_verifier()
    result = await Browser(user, password).authorize(
        authorize_url(server, client_id, verifier=verifier, route=route, **extra)
    )
    assert "code" in result, result
    return Code(result["code"], verifier, client_id)


async def redeem(client: TestClient, code: Code, *, headers: Mapping[str, str] | None = None, **form: str) -> Reply:
    """The authorization_code grant for `code`, with its verifier and the default redirect URI."""
    fields = {
        "grant_type": "authorization_code",
        "code": code.code,
        "code_verifier": code.verifier,
        "redirect_uri": REDIRECT,
        "client_id": code.client_id,
        **form,
    }
    return await token_request(client, headers=headers, **fields)


async def obtain_tokens(
    client: TestClient, server: TestServer, client_id: str, *, route: str = "alpha", **extra: str
) -> dict[str, Any]:
    """Code flow end to end; the successful token response body."""
    reply = await redeem(client, await obtain_code(server, client_id, route=route, **extra))
    assert reply.status == 200, reply.body
    return dict(reply.body)


async def refresh(client: TestClient, client_id: str, refresh_token: str, **form: str) -> Reply:
    return await token_request(
        client, grant_type="refresh_token", refresh_token=refresh_token, client_id=client_id, **form
    )


async def mcp_status(client: TestClient, path: str, access_token: str) -> int:
    """HTTP status of a JSON-RPC tools/call on an MCP route with `access_token` as the bearer."""
    headers, body = modern_call(1, "add", {"a": 2, "b": 3})
    response = await client.post(path, json=body, headers={**headers, "Authorization": f"Bearer {access_token}"})
    await response.read()
    return response.status
