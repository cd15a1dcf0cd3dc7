"""What the admin API refuses, and how: RFC 6750 §3 challenges for a missing or wrong bearer, JSON errors
`{"error", "error_description"}` with their status, no caching, no CORS (our choices, issue 15)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.admin.listener import create_admin_app
from gateway.config import Settings
from gateway.store.redis import RedisStore
from tests.admin.conftest import ADMIN_TOKEN, BEARER, PASSWORD, Admin
from tests.support.processes import free_port


def assert_error(reply: Any, status: int, code: str) -> None:
    assert reply.status == status, reply.text
    assert reply.body["error"] == code and isinstance(reply.body["error_description"], str), reply.body
    assert reply.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        pytest.param({}, 'Bearer realm="admin"', id="none"),
        pytest.param(
            {"Authorization": "Bearer wrong-token"}, 'Bearer realm="admin", error="invalid_token"', id="wrong"
        ),
        pytest.param(
            {"Authorization": f"Bearer {ADMIN_TOKEN}x"}, 'Bearer realm="admin", error="invalid_token"', id="longer"
        ),
        pytest.param(
            {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"}, 'Bearer realm="admin", error="invalid_token"', id="shorter"
        ),
        pytest.param(
            {"Authorization": f"Basic {ADMIN_TOKEN}"}, 'Bearer realm="admin", error="invalid_token"', id="basic"
        ),
        pytest.param({"Authorization": "Bearer "}, 'Bearer realm="admin", error="invalid_token"', id="empty"),
    ],
)
async def test_a_request_without_the_admin_token_gets_401_with_a_challenge(
    admin: Admin, headers: dict[str, str], challenge: str
) -> None:
    for method, path in (("GET", "/api/users"), ("GET", "/api/openapi.json"), ("POST", "/api/users/alice/revoke")):
        reply = await admin.call(method, path, headers=headers)
        assert_error(reply, 401, "unauthorized")
        assert reply.headers["WWW-Authenticate"] == challenge
    unknown = await admin.call("GET", "/api/no-such-thing", headers=headers)
    assert unknown.status == 401  # who may not ask learns nothing, not even which paths exist


async def test_bodies_are_bounded_json_and_validated_without_echoing_input(admin: Admin) -> None:
    huge = await admin.api.post(
        "/api/users",
        data=b'{"name": "' + b"a" * (65 * 1024) + b'"}',
        headers={**BEARER, "Content-Type": "application/json"},
    )
    assert huge.status == 413 and (await huge.json())["error"] == "payload_too_large"
    not_json = await admin.api.post("/api/users", data=b"{nope", headers={**BEARER, "Content-Type": "application/json"})
    assert not_json.status == 400 and (await not_json.json())["error"] == "invalid_request"
    as_form = await admin.api.post("/api/users", data={"name": "alice"}, headers=BEARER)
    assert as_form.status == 415 and (await as_form.json())["error"] == "unsupported_media_type"
    unknown_field = await admin.call("POST", "/api/users", {"name": "alice", "password": PASSWORD, "admin": True})
    assert_error(unknown_field, 400, "invalid_request")
    assert "admin" in unknown_field.body["error_description"]
    secret = "s3cret-" * 200
    too_long = await admin.call("POST", "/api/users", {"name": "alice", "password": secret})
    assert_error(too_long, 400, "invalid_request")
    assert "s3cret" not in too_long.text


async def test_unknown_objects_paths_and_methods_are_json_errors(admin: Admin) -> None:
    assert_error(await admin.call("GET", "/api/users/nobody/sessions"), 404, "not_found")
    assert_error(await admin.call("PUT", "/api/users/nobody/groups", {"groups": []}), 404, "not_found")
    assert_error(await admin.call("DELETE", "/api/users/nobody"), 404, "not_found")
    assert_error(await admin.call("GET", "/api/no-such-thing"), 404, "not_found")
    patched = await admin.call("PATCH", "/api/users")
    assert_error(patched, 405, "method_not_allowed")
    assert set(patched.headers["Allow"].split(", ")) == {"GET", "POST"}


async def test_answers_are_never_cached_and_carry_no_cors_headers(admin: Admin) -> None:
    origin = {"Origin": "https://evil.example"}
    for headers in ({**BEARER, **origin}, origin):
        for method in ("GET", "OPTIONS"):
            reply = await admin.call(method, "/api/users", headers=headers)
            assert reply.headers["Cache-Control"] == "no-store"
            assert not [h for h in reply.headers if h.lower().startswith("access-control-")]


async def test_the_store_being_down_is_503(aiohttp_client: Any) -> None:
    settings = Settings(
        public_url="http://127.0.0.1:8080",
        routes=[{"name": "alpha", "path": "/alpha/mcp", "upstream": "http://127.0.0.1:9/mcp"}],
        admin={"token": ADMIN_TOKEN},
    )
    down = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", "mcpgw-test-down", timeout=0.5)
    try:
        client = await aiohttp_client(create_admin_app(settings, down))
        for method, path in (("GET", "/api/users"), ("POST", "/api/users/alice/revoke"), ("GET", "/api/keys")):
            reply = await client.request(method, path, headers=BEARER)
            assert reply.status == 503 and (await reply.json())["error"] == "store_unavailable"
            assert reply.headers["Cache-Control"] == "no-store"
    finally:
        await down.close()
