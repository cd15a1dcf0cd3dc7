"""`routes list` and `config print`: what the gateway will serve, and the effective configuration, from the file."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.cli_polish.conftest import PUBLIC_URL, http_route, run, write

SECRET = "s3cret-store-password"


def gateway_yaml(tmp_path: Path) -> str:
    """An HTTP route with its own rules, a stdio route (contract short form `command: [...]`) under the global
    rules, and a virtual server over both."""
    return write(
        tmp_path / "gw.yaml",
        {
            "public_url": PUBLIC_URL,
            "store": {"url": f"redis://:{SECRET}@127.0.0.1:6379/0"},
            "allow": {"email_domains": ["example.com"]},
            "routes": [
                http_route("notes", scopes=["notes:read", "notes:write"], allow={"users": ["local:a", "local:b"]}),
                {"name": "files", "path": "/files/mcp", "command": ["python", "-m", "x"]},
                http_route("wiki", host="wiki.example.com", allow={"groups": ["local:eng"], "emails": ["c@d.org"]}),
            ],
            "virtual_servers": [{"name": "all", "path": "/all/mcp", "routes": ["notes", "files"]}],
        },
    )


def test_routes_list_prints_one_tab_separated_line_per_route_and_virtual_server(tmp_path: Path) -> None:
    """Issue 15: name, public path (or host), resource, upstream / `stdio: argv[0]` / `virtual: members`, scopes,
    access rules in short."""
    result = run("routes", "list", "-c", gateway_yaml(tmp_path))
    assert result.returncode == 0, result.stderr
    assert [line.split("\t") for line in result.stdout.splitlines()] == [
        [
            "notes",
            "/notes/mcp",
            f"{PUBLIC_URL}/notes/mcp",
            "http://127.0.0.1:9001/mcp",
            "notes:read,notes:write",
            "users:2",
        ],
        ["files", "/files/mcp", f"{PUBLIC_URL}/files/mcp", "stdio: python", "-", "email_domains:1 (global allow)"],
        [
            "wiki",
            "wiki.example.com/wiki/mcp",
            "https://wiki.example.com/wiki/mcp",
            "http://127.0.0.1:9001/mcp",
            "wiki:read",
            "emails:1 groups:1",
        ],
        [
            "all",
            "/all/mcp",
            f"{PUBLIC_URL}/all/mcp",
            "virtual: notes,files",
            "notes:read,notes:write",
            "email_domains:1 (global allow)",
        ],
    ]
    assert result.stderr == ""


def test_a_route_without_rules_is_open_to_anyone_who_signs_in(tmp_path: Path) -> None:
    path = write(tmp_path / "gw.yaml", {"public_url": PUBLIC_URL, "routes": [http_route("notes")]})
    line = run("routes", "list", "-c", path).stdout.strip()
    assert line.split("\t")[-1] == "any signed-in user (global allow)"


def test_config_print_is_yaml_with_secrets_redacted(tmp_path: Path) -> None:
    """Issue 15: the effective configuration (defaults included) as YAML that reads back; a secret never shows."""
    path = gateway_yaml(tmp_path)
    result = run("config", "print", "-c", path)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["store"]["url"] == "**********"
    assert printed["public_url"] == PUBLIC_URL
    assert printed["listen"]["port"] == 8080  # a default, not in the file
    assert [r["name"] for r in printed["routes"]] == ["notes", "files", "wiki", "all"]
    assert printed["routes"][1]["command"]["argv"] == ["python", "-m", "x"]


def test_config_print_json_is_what_check_config_print_prints(tmp_path: Path) -> None:
    """`check-config --print` (docs/contract.md) stays as it was; `config print --json` is the same document."""
    path = gateway_yaml(tmp_path)
    as_json = run("config", "print", "--json", "-c", path)
    legacy = run("check-config", "--print", "-c", path)
    assert as_json.returncode == legacy.returncode == 0, as_json.stderr + legacy.stderr
    assert (
        json.loads(as_json.stdout)
        == json.loads(legacy.stdout)
        == yaml.safe_load(run("config", "print", "-c", path).stdout)
    )
    assert SECRET not in as_json.stdout + legacy.stdout
