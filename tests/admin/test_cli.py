"""The new commands on the admin service, as users run them (a subprocess on the test's store): `users revoke`,
`users groups`, `grants list | revoke`, `keys list` (issue 15: the CLI and the admin API share one code path)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gateway.accounts import SERVICE_CLIENT_ID
from gateway.app_state import SETTINGS_KEY
from gateway.oauth.token_values import hash_token, token_id
from gateway.store.redis import RedisStore
from tests.admin.conftest import ADMIN_TOKEN, PASSWORD, Admin
from tests.conftest import write_config
from tests.support.oauth_client import register
from tests.support.token_flow import mcp_status, obtain_tokens, refresh
from tests.test_cli import assert_one_line_error, cli


def cli_config(tmp_path: Path, admin: Admin) -> str:
    """The gateway's configuration for CLI processes on its store (its secrets written out, not redacted)."""
    path = write_config(tmp_path / "gateway.yaml", admin.gateway.app[SETTINGS_KEY])
    data = yaml.safe_load(path.read_text())
    data["admin"]["token"] = ADMIN_TOKEN
    path.write_text(yaml.safe_dump(data))
    return str(path)


async def test_grants_are_listed_and_revoked_and_a_users_access_ends_from_the_command_line(
    admin: Admin, store: RedisStore, tmp_path: Path
) -> None:
    config = cli_config(tmp_path, admin)
    assert cli("users", "add", "alice", "--password-stdin", "-c", config, stdin=PASSWORD + "\n").returncode == 0
    client_id = (await register(admin.public))["client_id"]
    tokens = await obtain_tokens(admin.public, admin.gateway, client_id)
    service = cli("tokens", "issue", "--user", "alice", "--route", "alpha", "-c", config).stdout.strip()

    listed = cli("grants", "list", "--user", "alice", "-c", config)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert sorted(row[2] for row in rows) == sorted([client_id, SERVICE_CLIENT_ID])
    (oauth,) = [row for row in rows if row[2] == client_id]
    assert re.fullmatch(r"[0-9a-f]{32}", oauth[0]) and oauth[1] == "local:alice" and oauth[5] == "active"
    assert f"access:{token_id(hash_token(tokens['access_token']))}" in oauth[7]
    for secret in (tokens["access_token"], tokens["refresh_token"], service):
        assert secret not in listed.stdout and hash_token(secret) not in listed.stdout
    by_client = cli("grants", "list", "--client", client_id, "-c", config)
    assert [line.split("\t")[0] for line in by_client.stdout.splitlines()] == [oauth[0]]

    ended = cli("grants", "revoke", token_id(hash_token(tokens["refresh_token"])), "-c", config)
    assert ended.returncode == 0 and f"revoked grant {oauth[0]}: 2 token(s)" in ended.stdout, ended.stderr
    assert await mcp_status(admin.public, "/alpha/mcp", tokens["access_token"]) == 401
    assert (await refresh(admin.public, client_id, tokens["refresh_token"])).error == "invalid_grant"
    assert await mcp_status(admin.public, "/alpha/mcp", service) == 200  # another grant: untouched

    revoked = cli("users", "revoke", "alice", "-c", config)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith("revoked the access of local:alice: 1 login session(s) ended, 0 grant(s) and 1 ")
    assert await mcp_status(admin.public, "/alpha/mcp", service) == 401
    assert [line.split("\t")[0] for line in cli("users", "list", "-c", config).stdout.splitlines()] == ["alice"]
    states = {
        line.split("\t")[4] for line in cli("tokens", "list", "--user", "alice", "-c", config).stdout.splitlines()
    }
    assert states == {"revoked"}

    assert_one_line_error(cli("users", "revoke", "nobody", "-c", config), "no user named 'nobody'")
    assert_one_line_error(cli("grants", "revoke", "0000000000", "-c", config), "no such token")
    assert cli("grants", "list", "-c", config).returncode == 2  # --user or --client


async def test_users_groups_are_shown_and_replaced(admin: Admin, store: RedisStore, tmp_path: Path) -> None:
    config = cli_config(tmp_path, admin)
    added = cli("users", "add", "bob", "--groups", "eng", "--password-stdin", "-c", config, stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert cli("users", "groups", "bob", "-c", config).stdout == "bob\teng\n"
    changed = cli("users", "groups", "bob", "--set", "ops, eng", "-c", config)
    assert changed.returncode == 0 and changed.stdout == "bob\tops,eng\n", changed.stderr
    user = await store.load_user("bob")
    assert user is not None and user.groups == ("ops", "eng")
    assert cli("users", "groups", "bob", "--set", "", "-c", config).stdout == "bob\t-\n"
    assert_one_line_error(cli("users", "groups", "nobody", "--set", "x", "-c", config), "no user named 'nobody'")


async def test_keys_list_shows_the_signing_key_first(admin: Admin, tmp_path: Path) -> None:
    config = cli_config(tmp_path, admin)
    rotated = cli("keys", "rotate", "-c", config)
    assert rotated.returncode == 0, rotated.stderr
    kid = rotated.stdout.split()[3].rstrip(";")
    first = cli("keys", "list", "-c", config).stdout.splitlines()[0].split("\t")
    assert first == [kid, "ES256", "signing", "store"]
