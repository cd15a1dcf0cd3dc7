"""`admin:` in the configuration (docs/contract.md "Operations": `admin: {listen: {host, port}, token}`): off by
default, a way in required, every key also from the environment, a warning for a token crossing a network in clear."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ConfigError, Settings, load_settings
from gateway.config.warnings import config_warnings
from tests.admin.conftest import ADMIN_TOKEN

ROUTES = [{"name": "alpha", "path": "/alpha/mcp", "upstream": "http://127.0.0.1:9/mcp"}]


def settings(**admin: object) -> Settings:
    return Settings(public_url="http://127.0.0.1:8080", routes=ROUTES, admin=admin)


def problems(**admin: object) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        settings(**admin)
    return raised.value.problems


def test_the_admin_api_is_off_unless_a_port_is_given() -> None:
    off = Settings(public_url="http://127.0.0.1:8080", routes=ROUTES).admin
    assert (off.enabled, off.listen.host, off.listen.port, off.token, off.tls) == (False, "127.0.0.1", None, None, None)


@pytest.mark.parametrize(
    ("admin", "expected"),
    [
        pytest.param(
            {"listen": {"port": 9090}},
            "admin.token: required when admin.listen.port is set (or admin.tls.client_ca_file)",
            id="no-way-in",
        ),
        pytest.param(
            {"listen": {"port": 9090}, "token": "short"}, "admin.token: Value error, needs at least 32", id="short"
        ),
        pytest.param(
            {"listen": {"port": 8080}, "token": ADMIN_TOKEN},
            "admin.listen.port: must differ from listen.port",
            id="port",
        ),
        pytest.param(
            {"listen": {"port": 9090, "host": "not a host"}, "token": ADMIN_TOKEN}, "admin.listen.host", id="host"
        ),
        pytest.param(
            {"tls": {"cert_file": "/nonexistent.pem", "key_file": "/nonexistent.key"}}, "no such file", id="tls"
        ),
        pytest.param(
            {"listen": {"port": 9090}, "token": ADMIN_TOKEN, "extra": 1}, "admin.extra: unknown key", id="key"
        ),
    ],
)
def test_a_listener_without_a_way_in_or_with_a_bad_value_is_refused(admin: dict[str, object], expected: str) -> None:
    assert any(p.startswith(expected) or expected in p for p in problems(**admin)), problems(**admin)


def test_every_key_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_GATEWAY_ADMIN__TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("MCP_GATEWAY_ADMIN__LISTEN__PORT", "9090")
    loaded = load_settings(None, public_url="http://127.0.0.1:8080", routes=ROUTES).admin
    assert loaded.listen.port == 9090 and loaded.token is not None and loaded.token.get_secret_value() == ADMIN_TOKEN


def test_a_token_on_a_non_loopback_listener_without_tls_is_a_warning(tmp_path: Path) -> None:
    exposed = settings(listen={"host": "0.0.0.0", "port": 9090}, token=ADMIN_TOKEN)
    assert [w for w in config_warnings(exposed) if w.startswith("admin.listen.host 0.0.0.0")]
    assert not [w for w in config_warnings(settings(listen={"port": 9090}, token=ADMIN_TOKEN)) if "admin" in w]
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "public_url: http://127.0.0.1:8080\nroutes: [{name: alpha, path: /alpha/mcp, upstream: 'http://127.0.0.1:9/mcp'}]\n"
        f"admin:\n  listen: {{host: 0.0.0.0, port: 9090}}\n  token: {ADMIN_TOKEN}\n"
    )
    checked = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", "-c", str(config)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    assert "warning: admin.listen.host 0.0.0.0 is not loopback" in checked.stderr
    assert ADMIN_TOKEN not in checked.stdout + checked.stderr
