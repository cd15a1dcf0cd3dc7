"""Configuration: `load_settings` / `Settings` and `check-config` (docs/contract.md "Configuration")."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import ConfigError, Settings, load_settings
from tests.support.processes import REPO

EXAMPLE = REPO / "config" / "gateway.example.yaml"
PUBLIC_URL = "https://gw.example.com"


def route(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "path": f"/{name}/mcp", "upstream": "http://127.0.0.1:9001/mcp", **extra}


def config(**extra: Any) -> dict[str, Any]:
    return {"public_url": PUBLIC_URL, "routes": [route("alpha")], **extra}


def write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    return raised.value.problems


def matching(found: list[str], prefix: str, fragment: str) -> list[str]:
    return [p for p in found if p.startswith(prefix + ": ") and fragment in p]


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )


# -- every problem at once, each with its key path -----------------------------------------------------------


def test_every_problem_is_reported_at_once_with_its_key_path(tmp_path: Path) -> None:
    """Our choice (oauth2-proxy `Validate`): collect all problems before failing, each prefixed by its YAML key path."""
    data = {
        "public_url": PUBLIC_URL + "/",
        "bogus": 1,
        "routes": [
            route("alpha", extra_key=True),
            route("alpha", path="/other/mcp", upstream="ftp://127.0.0.1/mcp"),
            route("beta", path="/alpha/mcp", scopes=["beta:read", "offline_access"]),
        ],
    }
    found = problems(write(tmp_path / "gw.yaml", data))
    expected = [
        ("bogus", "unknown key"),
        ("routes[0].extra_key", "unknown key"),
        ("public_url", "slash"),
        ("routes[1].name", "duplicate"),
        ("routes[1].upstream", "http"),
        ("routes[2].path", "duplicate"),
        ("routes[2].scopes", "offline_access"),
    ]
    for prefix, fragment in expected:
        assert matching(found, prefix, fragment), f"no {prefix!r} problem mentioning {fragment!r} in {found}"
    assert len(found) == len(expected), found


@pytest.mark.parametrize(
    ("public_url", "fragment"),
    [
        (PUBLIC_URL + "/", "slash"),
        (PUBLIC_URL + "/gateway", "path"),
        (PUBLIC_URL + "?x=1", "query"),
        ("https://GW.example.com", "lowercase"),
        ("gw.example.com", "absolute"),
        ("ftp://gw.example.com", "absolute"),
    ],
)
def test_public_url_must_be_a_bare_lowercase_origin(tmp_path: Path, public_url: str, fragment: str) -> None:
    """The issuer is compared byte for byte (RFC 8414 §3.3, RFC 9207): one spelling, no path, no trailing slash."""
    found = problems(write(tmp_path / "gw.yaml", config(public_url=public_url)))
    assert len(found) == 1 and matching(found, "public_url", fragment), found


@pytest.mark.parametrize(
    "upstream",
    [
        "ftp://127.0.0.1/mcp",
        "127.0.0.1:9001/mcp",
        "http:///mcp",
        "http://user:pw@127.0.0.1/mcp",
        "http://127.0.0.1/mcp#frag",
        "http://127.0.0.1/mcp?x=1",
    ],
)
def test_bad_upstream_url_is_reported_at_its_route(tmp_path: Path, upstream: str) -> None:
    """Our choice: an upstream is an absolute http(s) URL without user info, query or fragment."""
    found = problems(write(tmp_path / "gw.yaml", config(routes=[route("alpha"), route("beta", upstream=upstream)])))
    assert len(found) == 1 and matching(found, "routes[1].upstream", upstream), found


@pytest.mark.parametrize(
    ("routes", "duplicate_at"),
    [
        pytest.param([route("a", path="/a/mcp"), route("b", path="/a/mcp")], "routes[1].path", id="same-path"),
        pytest.param(
            [{"name": "a", "upstream": "http://h/mcp"}, {"name": "b", "upstream": "http://h/mcp"}],
            "routes[1].path",
            id="both-default-path",
        ),
        pytest.param(
            [route("a", path="/a/mcp", host="a.example.com"), route("b", path="/a/mcp", host="A.Example.com")],
            "routes[1].path",
            id="same-host-other-case",
        ),
        pytest.param(
            [route("a", path="/a/mcp"), route("b", path="/a/mcp", host="gw.example.com")],
            "routes[1].path",
            id="host-equal-to-public-url-host",
        ),
        pytest.param(
            [route("a", path="/a/mcp"), route("b", path="/a/mcp", host="b.example.com")], None, id="other-host-is-fine"
        ),
        pytest.param(
            [route("a", path="/a/mcp", host="a.example.com"), route("b", path="/a/mcp", host="b.example.com")],
            None,
            id="two-hosts-are-fine",
        ),
    ],
)
def test_two_routes_on_one_endpoint_are_rejected(
    tmp_path: Path, routes: list[dict[str, Any]], duplicate_at: str | None
) -> None:
    """Our choice: one (host, path) serves one route, else one route would silently shadow the other.

    A host-based route whose host is the public_url's host has the same canonical resource as a host-less
    route with that path, so it is the same endpoint too.
    """
    path = write(tmp_path / "gw.yaml", config(routes=routes))
    if duplicate_at is None:
        assert [r.name for r in load_settings(path).routes] == ["a", "b"]
    else:
        found = problems(path)
        assert len(found) == 1 and matching(found, duplicate_at, "duplicate"), found


def test_route_path_with_trailing_slash_is_rejected(tmp_path: Path) -> None:
    """Our choice: `/x/mcp` and `/x/mcp/` are both served, so the configured path has no trailing slash."""
    found = problems(write(tmp_path / "gw.yaml", config(routes=[route("a", path="/a/mcp/")])))
    assert len(found) == 1 and matching(found, "routes[0].path", "slash"), found


@pytest.mark.parametrize("key", ["scopes", "required_scopes"])
def test_offline_access_is_not_a_route_scope(tmp_path: Path, key: str) -> None:
    """MCP SEP-2207: offline_access asks the AS for a refresh token; it is not a resource scope."""
    found = problems(write(tmp_path / "gw.yaml", config(routes=[route("a", **{key: ["a:read", "offline_access"]})])))
    assert len(found) == 1 and matching(found, f"routes[0].{key}", "offline_access"), found


@pytest.mark.parametrize("routes", [pytest.param([], id="empty-list"), pytest.param(None, id="key-omitted")])
def test_a_config_without_routes_is_rejected(tmp_path: Path, routes: list[Any] | None) -> None:
    """Our choice: a gateway with nothing behind it is a mistake, whether `routes` is empty or missing."""
    data: dict[str, Any] = {"public_url": PUBLIC_URL}
    if routes is not None:
        data["routes"] = routes
    found = problems(write(tmp_path / "gw.yaml", data))
    assert len(found) == 1 and matching(found, "routes", "at least one"), found


def test_missing_public_url_is_reported_by_key(tmp_path: Path) -> None:
    """docs/contract.md: `public_url` is the issuer; there is no sensible default."""
    found = problems(write(tmp_path / "gw.yaml", {"routes": [route("a")]}))
    assert found == ["public_url: Field required"]


# -- ${VAR} interpolation ---------------------------------------------------------------------------------


def test_variables_in_yaml_strings_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/contract.md: `${VAR}` inside a YAML string is replaced from the environment (secrets stay out of files)."""
    monkeypatch.setenv("GW_TEST_UPSTREAM_PORT", "9123")
    monkeypatch.setenv("GW_TEST_REDIS_PASSWORD", "s3cret")
    data = config(
        routes=[route("a", upstream="http://127.0.0.1:${GW_TEST_UPSTREAM_PORT}/mcp")],
        store={"url": "redis://:${GW_TEST_REDIS_PASSWORD}@127.0.0.1:6379/0"},
    )
    settings = load_settings(write(tmp_path / "gw.yaml", data))
    assert settings.routes[0].upstream == "http://127.0.0.1:9123/mcp"
    assert settings.store.url is not None
    assert settings.store.url.get_secret_value() == "redis://:s3cret@127.0.0.1:6379/0"


def test_unset_variables_are_reported_with_their_key_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our choice: a missing variable is an error naming where it is used, never a silent empty string."""
    monkeypatch.delenv("GW_TEST_UNSET_A", raising=False)
    monkeypatch.delenv("GW_TEST_UNSET_B", raising=False)
    data = config(
        routes=[route("a", upstream="http://${GW_TEST_UNSET_A}/mcp")],
        store={"url": "redis://:${GW_TEST_UNSET_B}@127.0.0.1:6379/0"},
    )
    found = problems(write(tmp_path / "gw.yaml", data))
    assert sorted(found) == [
        "routes[0].upstream: environment variable GW_TEST_UNSET_A is not set",
        "store.url: environment variable GW_TEST_UNSET_B is not set",
    ]


# -- MCP_GATEWAY_… environment overrides ------------------------------------------------------------------


def test_environment_overrides_beat_yaml_and_keep_sibling_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/contract.md: every key is settable by `MCP_GATEWAY_…` with `__` nesting; env > YAML > defaults."""
    data = config(listen={"host": "127.0.0.1", "port": 1234}, store={"key_prefix": "from-yaml", "timeout": 3.5})
    path = write(tmp_path / "gw.yaml", data)
    monkeypatch.setenv("MCP_GATEWAY_STORE__KEY_PREFIX", "from-env")
    monkeypatch.setenv("MCP_GATEWAY_LISTEN__PORT", "4321")
    settings = load_settings(path)
    assert settings.store.key_prefix == "from-env"
    assert settings.listen.port == 4321
    assert settings.listen.host == "127.0.0.1"  # a nested override replaces one key, not the whole mapping
    assert settings.store.timeout == 3.5


def test_bad_environment_override_is_reported_with_its_key_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our choice: an env override is validated like YAML and reported at the key it sets."""
    monkeypatch.setenv("MCP_GATEWAY_LISTEN__PORT", "eighty")
    found = problems(write(tmp_path / "gw.yaml", config()))
    assert len(found) == 1 and found[0].startswith("listen.port: "), found


# -- files -------------------------------------------------------------------------------------------------


def test_the_example_configuration_is_valid() -> None:
    """config/gateway.example.yaml is documentation users copy: it must load as is."""
    settings = load_settings(EXAMPLE)
    assert isinstance(settings, Settings)
    assert [r.name for r in settings.routes] == ["demo"]
    assert settings.store.url is None  # the example runs on the embedded store


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("- a\n- b\n", "mapping", id="list"),
        pytest.param("just a string\n", "mapping", id="scalar"),
        pytest.param("public_url: [unclosed\n", "not valid YAML", id="broken-yaml"),
    ],
)
def test_a_file_that_is_not_a_yaml_mapping_gives_one_clear_problem(tmp_path: Path, text: str, fragment: str) -> None:
    """Our choice: name the file and the reason in a single line."""
    path = write(tmp_path / "gw.yaml", text)
    found = problems(path)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:") and fragment in found[0] and "\n" not in found[0]


def test_a_missing_file_gives_one_clear_problem(tmp_path: Path) -> None:
    """Our choice: an unreadable file is a configuration problem, not a traceback."""
    path = tmp_path / "absent.yaml"
    found = problems(path)
    assert len(found) == 1 and found[0].startswith(f"{path}: cannot read"), found


# -- check-config ------------------------------------------------------------------------------------------


def test_check_config_exits_zero_for_a_valid_file() -> None:
    """docs/contract.md: `check-config -c FILE` exits 0 when valid."""
    result = run_cli("check-config", "-c", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert result.stderr == ""


def test_check_config_prints_every_problem_and_exits_one(tmp_path: Path) -> None:
    """docs/contract.md: print every problem with its YAML key path; exit 1 invalid; no traceback."""
    data = {
        "public_url": PUBLIC_URL + "/x",
        "bogus": 1,
        "routes": [route("a", upstream="ftp://h/mcp"), route("a", scopes=["offline_access"])],
    }
    path = write(tmp_path / "gw.yaml", data)
    expected = problems(path)
    result = run_cli("check-config", "-c", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(expected) >= 5
    lines = [re.sub(r"^\S+:\d+: ", "", line.strip()) for line in result.stderr.splitlines()]  # (gw.yaml:3: …)
    for problem in expected:
        assert any(line == problem for line in lines), f"{problem!r} not on stderr:\n{result.stderr}"
    assert result.stdout == ""


def test_check_config_print_shows_the_effective_config_without_secrets(tmp_path: Path) -> None:
    """docs/contract.md: `--print` prints the effective config with secrets redacted."""
    path = write(tmp_path / "gw.yaml", config(store={"url": "redis://:s3cret@127.0.0.1:6379/0", "key_prefix": "p1"}))
    result = run_cli("check-config", "-c", str(path), "--print")
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout and "s3cret" not in result.stderr
    printed = json.loads(result.stdout)
    assert printed["public_url"] == PUBLIC_URL
    assert printed["store"]["key_prefix"] == "p1"
    assert [r["name"] for r in printed["routes"]] == ["alpha"]


def test_metrics_port_must_differ_from_the_public_port(tmp_path: Path) -> None:
    found = problems(write(tmp_path / "gw.yaml", config(listen={"port": 8080, "metrics_port": 8080})))
    assert len(found) == 1 and matching(found, "listen", "metrics_port must differ"), found


def test_refresh_tokens_may_not_outlive_their_revocation_marks(tmp_path: Path) -> None:
    """Revoking a refresh-token family leaves marks for 90 days; a longer idle lifetime would let a revoked
    family rotate again once they expire."""
    found = problems(write(tmp_path / "gw.yaml", config(oauth={"refresh_token_ttl": 91 * 86400})))
    assert len(found) == 1 and matching(found, "oauth.refresh_token_ttl", "7776000"), found
