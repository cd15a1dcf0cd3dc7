"""`check-config` as a new user meets it: the key that was meant, the file's line, warnings that do not fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, Settings, load_settings
from gateway.config.warnings import config_warnings
from tests.cli_polish.conftest import PUBLIC_URL, http_route, run, write

ERROR = "mcp-auth-gateway: error: invalid configuration: "
WARNING = "mcp-auth-gateway: warning: "


def one_problem(path: str, env: dict[str, str] | None = None) -> str:
    """The single problem check-config reports (one-line form), without the error prefix."""
    result = run("check-config", "-c", path, env=env)
    assert result.returncode == 1 and result.stdout == "", result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR), result.stderr
    return lines[0].removeprefix(ERROR)


GW_YAML = """\
public_url: https://gw.example.com
routes:
  - name: notes
    path: /notes/mcp
    upstream: http://127.0.0.1:9001/mcp
"""


@pytest.mark.parametrize(
    ("typo", "line", "where", "meant"),
    [
        ("rotues: []\n", 6, "rotues", "routes"),
        ("    upstrem: http://127.0.0.1:9001/mcp\n", 6, "routes[0].upstrem", "upstream"),
        ("    upstream_auth: {type: static, valeu: x}\n", 6, "routes[0].upstream_auth.static.valeu", "value"),
    ],
    ids=["top-level", "in-a-route", "in-a-tagged-union"],
)
def test_an_unknown_key_names_the_key_meant_and_its_line(tmp_path: Path, typo: str, line: int, where: str, meant: str):
    """Issue 15: difflib against the field names (and aliases) of the model at that key path."""
    path = write(tmp_path / "gw.yaml", GW_YAML + typo)
    assert one_problem(path) == f"{path}:{line}: {where}: unknown key; did you mean {meant!r}?"


def test_an_unknown_key_nothing_is_close_to_gets_no_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path / "gw.yaml", GW_YAML + "    xqzzkv: 1\n")
    assert one_problem(path) == f"{path}:6: routes[0].xqzzkv: unknown key"


def test_load_settings_carries_the_suggestion_and_the_place(tmp_path: Path) -> None:
    """Every command reading the file (serve, users …) says the same: the problem text keeps its key path first,
    the place is beside it (ConfigError.places)."""
    path = write(tmp_path / "gw.yaml", GW_YAML + "    upstrem: x\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert raised.value.problems == ["routes[0].upstrem: unknown key; did you mean 'upstream'?"]
    assert raised.value.places == [f"{path}:6"]


def test_a_yaml_syntax_error_gives_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "gw.yaml", GW_YAML + "    scopes: [a, b\n  - name: other\n")
    problem = one_problem(path)
    assert problem.startswith(f"{path}:7:9: not valid YAML: "), problem
    assert "flow sequence at 6:13" in problem


def test_a_validation_problem_gives_the_line_of_its_key(tmp_path: Path) -> None:
    path = write(tmp_path / "gw.yaml", GW_YAML.replace("http://127.0.0.1:9001/mcp", "ftp://127.0.0.1/mcp"))
    assert one_problem(path) == f"{path}:5: routes[0].upstream: 'ftp://127.0.0.1/mcp' is not an absolute http(s) URL"


def test_a_missing_key_gives_the_line_of_the_mapping_that_lacks_it(tmp_path: Path) -> None:
    path = write(
        tmp_path / "gw.yaml",
        GW_YAML.replace("    path: /notes/mcp\n", "").replace("  - name: notes\n", "  - path: /x\n"),
    )
    result = run("check-config", "-c", path)
    assert f"{path}:3: routes[0].name: Field required" in result.stderr, result.stderr


def test_a_value_from_the_environment_has_no_line_in_the_file(tmp_path: Path) -> None:
    """MCP_GATEWAY_PUBLIC_URL replaced the file's public_url: pointing at the file's line would mislead."""
    path = write(tmp_path / "gw.yaml", GW_YAML)
    problem = one_problem(path, env={"MCP_GATEWAY_PUBLIC_URL": "https://gw.example.com/"})
    assert problem.startswith("public_url: "), problem


@pytest.mark.parametrize(
    ("public_url", "warned"),
    [
        ("http://gw.example.com", True),
        ("http://10.0.0.5:8080", True),
        ("http://127.0.0.1:8080", False),
        ("http://127.9.9.9:8080", False),
        ("http://localhost:8080", False),
        ("http://[::1]:8080", False),
        ("https://gw.example.com", False),
    ],
)
def test_plain_http_to_another_machine_is_warned_and_still_valid(tmp_path: Path, public_url: str, warned: bool):
    """Issue 15: a warning on standard error, exit status 0 (a TLS proxy may stand in front; the operator decides)."""
    path = write(tmp_path / "gw.yaml", {"public_url": public_url, "routes": [http_route("notes")]})
    result = run("check-config", "-c", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("configuration OK")
    if warned:
        assert result.stderr.startswith(f"{WARNING}public_url {public_url} is plain http"), result.stderr
        assert len(result.stderr.splitlines()) == 1
    else:
        assert result.stderr == ""


def test_every_warning_comes_from_one_place() -> None:
    """gateway.config.warnings: plain http and the listener disagreements `serve` logs at start, together."""
    settings = Settings(public_url="http://gw.example.com:9000", routes=[http_route("notes")])
    found = config_warnings(settings)
    assert len(found) == 2 and "plain http" in found[0] and "names port 9000" in found[1], found
    assert config_warnings(Settings(public_url=PUBLIC_URL, routes=[http_route("notes")])) == []
