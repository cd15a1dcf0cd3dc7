"""Every admin endpoint driven over HTTP against a real gateway (issue 15, deliverable 2; docs/contract.md
"Operations": `GET /api/users`, `GET /api/clients`, `GET /api/grants?user=NAME`, `POST /api/users/{name}/revoke`)."""

from __future__ import annotations

import re

from gateway.accounts import SERVICE_CLIENT_ID
from gateway.app_state import SETTINGS_KEY
from gateway.oauth.token_values import hash_token, token_id
from gateway.store.records import BrowserSessionRecord, Principal, UpstreamCredentialRecord
from gateway.store.redis import RedisStore
from gateway.vault import Vault
from tests.admin.conftest import Admin
from tests.support.oauth_client import register
from tests.support.token_flow import mcp_status, obtain_tokens, refresh
from tests.support.tokens import issue

HEX8 = re.compile(r"^[0-9a-f]{8}$")


# -- users ------------------------------------------------------------------------------------------------------


async def test_users_are_added_listed_regrouped_and_removed(admin: Admin, store: RedisStore) -> None:
    created = await admin.add_user("alice", email="alice@example.com", groups=["eng"])
    assert created.body == {
        "name": "alice",
        "user_id": "local:alice",
        "email": "alice@example.com",
        "groups": ["eng"],
        "created_at": created.body["created_at"],
    }
    again = await admin.call("POST", "/api/users", {"name": "alice", "password": "another password"})
    assert again.status == 409 and again.body["error"] == "conflict"

    listed = await admin.call("GET", "/api/users")
    assert listed.status == 200 and listed.body["truncated"] is False
    assert [u["name"] for u in listed.body["users"]] == ["alice"]
    assert "argon2" not in listed.text and "password" not in listed.text

    regrouped = await admin.call("PUT", "/api/users/alice/groups", {"groups": ["ops", "eng", "ops"]})
    assert regrouped.status == 200 and regrouped.body["groups"] == ["ops", "eng"]
    stored = await store.load_user("alice")
    assert stored is not None and stored.groups == ("ops", "eng")
    bad = await admin.call("PUT", "/api/users/alice/groups", {"groups": ["a,b"]})
    assert bad.status == 400 and bad.body["error"] == "invalid_request"

    removed = await admin.call("DELETE", "/api/users/alice")
    assert removed.status == 200
    assert removed.body == {"name": "alice", "sessions": 0, "tokens": 0, "credentials": 0}
    assert await store.load_user("alice") is None
    gone = await admin.call("DELETE", "/api/users/alice")
    assert gone.status == 404 and gone.body["error"] == "not_found"


async def test_a_weak_password_is_refused_without_echoing_it(admin: Admin) -> None:
    refused = await admin.call("POST", "/api/users", {"name": "bob", "password": "short"})
    assert refused.status == 400 and "short" not in refused.body["error_description"].replace("too short", "")
    assert (await admin.call("GET", "/api/users")).body["users"] == []


# -- clients ----------------------------------------------------------------------------------------------------


async def test_clients_are_listed_by_kind_added_with_a_secret_shown_once_and_removed(admin: Admin) -> None:
    registered = await register(admin.public)  # a DCR client
    added = await admin.call(
        "POST",
        "/api/clients",
        {
            "client_id": "inspector",
            "redirect_uris": ["http://127.0.0.1:6274/oauth/callback"],
            "client_name": "Inspector",
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )
    assert added.status == 201, added.text
    secret = added.body["client_secret"]
    assert secret and added.body["client"]["kind"] == "pre-registered"

    listed = await admin.call("GET", "/api/clients")
    kinds = {c["client_id"]: (c["kind"], c["source"]) for c in listed.body["clients"]}
    assert kinds == {
        "from-yaml": ("pre-registered", "config"),
        "inspector": ("pre-registered", "static"),
        registered["client_id"]: ("dcr", "dcr"),
    }
    assert secret not in listed.text and hash_token(secret) not in listed.text

    taken = await admin.call("POST", "/api/clients", {"client_id": "inspector", "redirect_uris": []})
    assert taken.status == 409
    yaml = await admin.call("DELETE", "/api/clients/from-yaml")
    assert yaml.status == 403 and "YAML" in yaml.body["error_description"]
    removed = await admin.call("DELETE", "/api/clients/inspector")
    assert removed.status == 200 and removed.body["client_id"] == "inspector"
    assert (await admin.call("DELETE", "/api/clients/inspector")).status == 404
    bad = await admin.call("POST", "/api/clients", {"redirect_uris": ["http://evil.example/cb"]})
    assert bad.status == 400, bad.text


# -- grants, tokens and sessions --------------------------------------------------------------------------------


async def test_grants_are_listed_by_user_and_by_client_and_one_token_is_revoked(
    admin: Admin, store: RedisStore
) -> None:
    """A real grant (authorization code flow: login, consent, /token) beside a service token (`tokens issue`)."""
    await admin.add_user("alice")
    client_id = (await register(admin.public))["client_id"]
    tokens = await obtain_tokens(admin.public, admin.gateway, client_id)
    service = await issue(store, admin.gateway, "alpha")
    assert await mcp_status(admin.public, "/alpha/mcp", tokens["access_token"]) == 200

    by_user = await admin.call("GET", "/api/grants?user=alice")
    assert by_user.status == 200 and by_user.body["truncated"] is False
    grants = {g["client_id"]: g for g in by_user.body["grants"]}
    assert set(grants) == {client_id, SERVICE_CLIENT_ID}
    oauth, cli = grants[client_id], grants[SERVICE_CLIENT_ID]
    assert oauth["grant_id"] and oauth["state"] == "active" and oauth["route"] == "alpha"
    assert [t["kind"] for t in oauth["tokens"]] == ["refresh", "access"]
    assert cli["grant_id"] is None and [t["token_id"] for t in cli["tokens"]] == [token_id(hash_token(service))]
    assert all(HEX8.match(t["token_id"]) for g in by_user.body["grants"] for t in g["tokens"])
    for secret in (tokens["access_token"], tokens["refresh_token"], service):
        assert secret not in by_user.text and hash_token(secret) not in by_user.text

    by_client = await admin.call("GET", f"/api/grants?client={client_id}")
    assert [g["grant_id"] for g in by_client.body["grants"]] == [oauth["grant_id"]]
    by_id = await admin.call("GET", "/api/grants?user=local:alice")
    assert {g["client_id"] for g in by_id.body["grants"]} == {client_id, SERVICE_CLIENT_ID}
    assert (await admin.call("GET", "/api/grants")).status == 400
    assert (await admin.call("GET", "/api/grants?user=nobody")).status == 404

    access_id = token_id(hash_token(tokens["access_token"]))
    revoked = await admin.call("POST", f"/api/tokens/{access_id}/revoke")
    assert revoked.status == 200 and revoked.body == {"grant_id": None, "token_ids": [access_id]}
    assert await mcp_status(admin.public, "/alpha/mcp", tokens["access_token"]) == 401
    renewed = await refresh(admin.public, client_id, tokens["refresh_token"])  # one token, not the grant
    assert renewed.status == 200, renewed.body
    assert (await admin.call("POST", "/api/tokens/00000000/revoke")).status == 404
    assert (await admin.call("POST", "/api/tokens/not-hex/revoke")).status == 400


async def test_revoking_a_grant_by_a_token_id_ends_its_refresh_token_too(admin: Admin) -> None:
    await admin.add_user("alice")
    client_id = (await register(admin.public))["client_id"]
    tokens = await obtain_tokens(admin.public, admin.gateway, client_id)
    grant = (await admin.call("GET", "/api/grants?user=alice")).body["grants"][0]
    ended = await admin.call("POST", f"/api/grants/{token_id(hash_token(tokens['access_token']))}/revoke")
    assert ended.status == 200 and ended.body["grant_id"] == grant["grant_id"]
    assert sorted(ended.body["token_ids"]) == sorted(t["token_id"] for t in grant["tokens"])
    assert await mcp_status(admin.public, "/alpha/mcp", tokens["access_token"]) == 401
    assert (await refresh(admin.public, client_id, tokens["refresh_token"])).error == "invalid_grant"
    after = (await admin.call("GET", "/api/grants?user=alice")).body["grants"]
    assert [g["state"] for g in after] == ["revoked"]
    again = await admin.call("POST", f"/api/grants/{grant['grant_id']}/revoke")  # by its own id
    assert again.status == 200 and again.body["grant_id"] == grant["grant_id"]


async def test_revoking_a_user_ends_every_grant_token_and_session_and_keeps_the_account(
    admin: Admin, store: RedisStore
) -> None:
    """docs/contract.md: `POST /api/users/{name}/revoke` ends every grant and token of that user."""
    await admin.add_user("alice")
    client_id = (await register(admin.public))["client_id"]
    tokens = await obtain_tokens(admin.public, admin.gateway, client_id)  # (its sign-in left a login session)
    service = await issue(store, admin.gateway, "alpha")
    sessions = await admin.call("GET", "/api/users/alice/sessions")
    assert sessions.status == 200 and len(sessions.body["sessions"]) == 1
    assert HEX8.match(sessions.body["sessions"][0]["session_id"])

    revoked = await admin.call("POST", "/api/users/alice/revoke")
    assert revoked.status == 200
    assert revoked.body == {"user_id": "local:alice", "sessions": 1, "grants": 1, "tokens": 2}
    for token in (tokens["access_token"], service):
        assert await mcp_status(admin.public, "/alpha/mcp", token) == 401
    assert (await refresh(admin.public, client_id, tokens["refresh_token"])).error == "invalid_grant"
    assert (await admin.call("GET", "/api/users/alice/sessions")).body["sessions"] == []
    assert [u["name"] for u in (await admin.call("GET", "/api/users")).body["users"]] == ["alice"]
    states = {g["state"] for g in (await admin.call("GET", "/api/grants?user=alice")).body["grants"]}
    assert states == {"revoked"}
    assert (await admin.call("POST", "/api/users/nobody/revoke")).status == 404


async def test_a_login_session_is_listed_and_ended(admin: Admin, store: RedisStore) -> None:
    await admin.add_user("alice")
    record = BrowserSessionRecord(csrf="c", principal=Principal(user_id="local:alice"), created_at=1.0e9)
    await store.save_browser_session("ab" * 32, record, 3600, max_age=10**10)
    listed = await admin.call("GET", "/api/users/alice/sessions")
    assert [s["session_id"] for s in listed.body["sessions"]] == ["abababab"]
    ended = await admin.call("DELETE", "/api/users/alice/sessions/abababab")
    assert ended.status == 200 and ended.body["session_id"] == "abababab"
    assert await store.load_browser_session("ab" * 32, 3600) is None
    assert (await admin.call("DELETE", "/api/users/alice/sessions/abababab")).status == 404


# -- upstream credentials ---------------------------------------------------------------------------------------


async def test_upstream_credentials_are_listed_without_values_and_dropped(admin: Admin, store: RedisStore) -> None:
    await admin.add_user("alice")
    held = UpstreamCredentialRecord(
        access_token="upstream-at-" + "a" * 40,
        refresh_token="upstream-rt-" + "b" * 40,
        expires_at=2_000_000_000.0,
        token_endpoint="https://as.example/token",
        client_id="gw",
        issued_at=1_800_000_000.0,
    )
    await Vault(admin.gateway.app[SETTINGS_KEY].vault, store).save("local:alice", "route:alpha", held)
    listed = await admin.call("GET", "/api/users/alice/credentials")
    assert listed.body == {
        "credentials": [
            {
                "user_id": "local:alice",
                "slot": "route:alpha",
                "readable": True,
                "issued_at": 1_800_000_000.0,
                "expires_at": 2_000_000_000.0,
                "refreshable": True,
            }
        ],
        "truncated": False,
    }
    assert held.access_token not in listed.text and held.refresh_token not in listed.text
    dropped = await admin.call("DELETE", "/api/users/alice/credentials/route:alpha")
    assert dropped.status == 200 and dropped.body == {"user_id": "local:alice", "dropped": 1}
    assert await store.credentials_of("local:alice") == {}
    assert (await admin.call("DELETE", "/api/users/alice/credentials/route:alpha")).status == 404
    assert (await admin.call("DELETE", "/api/users/alice/credentials/alpha")).status == 400


# -- routes and keys --------------------------------------------------------------------------------------------


async def test_routes_show_which_upstreams_answer(admin: Admin) -> None:
    listed = await admin.call("GET", "/api/routes")
    assert listed.status == 200 and listed.body["open_streams"] == 0
    routes = {r["name"]: r for r in listed.body["routes"]}
    assert routes["alpha"]["reachable"] is True and routes["alpha"]["status"] is not None
    assert routes["alpha"]["resource"] == str(admin.gateway.make_url("/alpha/mcp"))
    assert routes["alpha"]["kind"] == "http" and routes["alpha"]["upstream"].endswith("/mcp")
    assert routes["down"]["reachable"] is False and routes["down"]["detail"]


async def test_rotating_the_signing_key_changes_the_published_key_set(admin: Admin) -> None:
    async def published() -> set[str]:
        document = await (await admin.public.get("/.well-known/jwks.json")).json()
        return {key["kid"] for key in document["keys"]}

    before = await published()
    rotated = await admin.call("POST", "/api/keys/rotate")
    assert rotated.status == 201 and rotated.body["signing"] is True
    after = await published()
    assert rotated.body["kid"] in after and after != before and before <= after
    listed = await admin.call("GET", "/api/keys")
    assert listed.body["keys"][0] == rotated.body
    assert '"d"' not in listed.text  # (never a private key's parameter)
