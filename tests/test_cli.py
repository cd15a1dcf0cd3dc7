"""The `mcp-auth-gateway` command line as users run it: a subprocess (docs/contract.md "Distribution and commands")."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.oauth.token_values import ACCESS_TOKEN_PREFIX, hash_token, token_id
from gateway.passwords import hash_password, verify_password
from gateway.store.records import UserRecord
from gateway.store.redis import RedisStore
from tests.conftest import make_settings, write_config
from tests.support.processes import REPO, free_port

ALPHA: dict[str, Any] = {
    "name": "alpha",
    "path": "/alpha/mcp",
    "upstream": "http://127.0.0.1:9/mcp",
    "scopes": ["alpha:read", "alpha:write"],
}
PASSWORD = "correct horse battery"


def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MCP_GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=REPO,
        env=clean | (env or {}),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """docs/contract.md: non-zero exit with a one-line reason on error, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mcp-auth-gateway: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.stdout == ""


@pytest.fixture
def config(tmp_path: Path, redis_url: str, key_prefix: str) -> str:
    """A YAML config on the test's Redis and key prefix, with one route `alpha`."""
    return str(write_config(tmp_path / "gw.yaml", make_settings(free_port(), redis_url, key_prefix, [ALPHA])))


async def add_user(store: RedisStore, name: str = "alice") -> UserRecord:
    record = UserRecord(
        name=name, email=f"{name}@example.com", password_hash=hash_password(PASSWORD), created_at=time.time()
    )
    await store.save_user(record)
    return record


# -- users ------------------------------------------------------------------------------------------------


async def test_users_add_list_passwd_remove(config: str, store: RedisStore) -> None:
    """docs/contract.md: `users add NAME [--email E] [--groups a,b] [--password-stdin]`, `list`, `passwd`, `remove`."""
    added = cli(
        "users",
        "add",
        "alice",
        "--email",
        "alice@example.com",
        "--groups",
        "dev, ops",
        "--password-stdin",
        "-c",
        config,
        stdin=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert "alice" in added.stdout and PASSWORD not in added.stdout + added.stderr
    alice = await store.load_user("alice")
    assert alice is not None
    assert (alice.email, alice.groups, alice.user_id) == ("alice@example.com", ("dev", "ops"), "local:alice")
    assert alice.password_hash.startswith("$argon2id$") and verify_password(alice.password_hash, PASSWORD)

    again = cli("users", "add", "alice", "--password-stdin", "-c", config, stdin="another password\n")
    assert_one_line_error(again, "alice", "exists")
    assert await store.load_user("alice") == alice  # untouched

    listed = cli("users", "list", "-c", config)
    assert listed.returncode == 0, listed.stderr
    (line,) = [row for row in listed.stdout.splitlines() if row.split("\t")[0] == "alice"]
    assert "alice@example.com" in line and "dev,ops" in line and "$argon2" not in listed.stdout

    changed = cli("users", "passwd", "alice", "--password-stdin", "-c", config, stdin="a new password\n")
    assert changed.returncode == 0, changed.stderr
    after = await store.load_user("alice")
    assert after is not None
    assert verify_password(after.password_hash, "a new password") and not verify_password(after.password_hash, PASSWORD)

    removed = cli("users", "remove", "alice", "-c", config)
    assert removed.returncode == 0, removed.stderr
    assert await store.load_user("alice") is None
    assert_one_line_error(cli("users", "remove", "alice", "-c", config), "alice")


async def test_users_passwd_ends_login_sessions_and_users_remove_revokes_tokens(config: str, store: RedisStore) -> None:
    """Issue 10 #3: a changed password signs the user out of the gateway everywhere; a removed user's tokens stop
    working at once (not an hour later), service tokens included."""
    from gateway.store.records import BrowserSessionRecord, Principal

    await add_user(store)
    session = BrowserSessionRecord(csrf="c", principal=Principal(user_id="local:alice"), created_at=time.time())
    await store.save_browser_session("s1", session, 3600, max_age=86400)
    changed = cli("users", "passwd", "alice", "--password-stdin", "-c", config, stdin="a new password\n")
    assert changed.returncode == 0 and "login sessions ended" in changed.stdout, changed.stderr
    assert await store.load_browser_session("s1", 3600) is None
    token = cli("tokens", "issue", "--user", "alice", "--route", "alpha", "-c", config).stdout.strip()
    removed = cli("users", "remove", "alice", "-c", config)
    assert removed.returncode == 0 and "1 token(s) revoked" in removed.stdout, removed.stderr
    record = await store.load_access_token(hash_token(token))
    assert record is not None and record.revoked


async def test_short_passwords_are_refused(config: str, store: RedisStore) -> None:
    """Our choice: local passwords have at least 8 characters (NIST SP 800-63B §5.1.1.2)."""
    assert_one_line_error(cli("users", "add", "bob", "--password-stdin", "-c", config, stdin="short\n"), "password")
    assert await store.load_user("bob") is None
    alice = await add_user(store)
    assert_one_line_error(
        cli("users", "passwd", "alice", "--password-stdin", "-c", config, stdin="short\n"), "password"
    )
    assert await store.load_user("alice") == alice


async def test_users_passwd_for_unknown_user_fails(config: str) -> None:
    """docs/contract.md: one-line reason on error."""
    assert_one_line_error(
        cli("users", "passwd", "nobody", "--password-stdin", "-c", config, stdin=PASSWORD + "\n"), "nobody"
    )


def test_users_added_to_the_embedded_store_are_seen_by_the_next_process(tmp_path: Path) -> None:
    """docs/contract.md: no store.url -> embedded Redis persisted under data_dir, shared by CLI processes."""
    settings = Settings(public_url="http://127.0.0.1:8080", store={"data_dir": str(tmp_path / "data")}, routes=[ALPHA])
    config = str(write_config(tmp_path / "gw.yaml", settings))
    added = cli(
        "users", "add", "carol", "--email", "carol@example.com", "--password-stdin", "-c", config, stdin=PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    listed = cli("users", "list", "-c", config)
    assert listed.returncode == 0, listed.stderr
    assert [row.split("\t")[:2] for row in listed.stdout.splitlines()] == [["carol", "carol@example.com"]]
    assert any((tmp_path / "data").iterdir())


# -- tokens -----------------------------------------------------------------------------------------------


async def test_tokens_issue_list_and_revoke(config: str, store: RedisStore) -> None:
    """docs/contract.md: `tokens issue` prints an access token bound to the route; `tokens list`, `tokens revoke`."""
    await add_user(store)
    issued = cli("tokens", "issue", "--user", "alice", "--route", "alpha", "--ttl", "1h", "-c", config)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert issued.stdout == token + "\n"  # only the token: scripts do TOKEN=$(mcp-auth-gateway tokens issue …)
    assert re.fullmatch(re.escape(ACCESS_TOKEN_PREFIX) + r"[A-Za-z0-9_-]{43,}", token)
    assert token not in issued.stderr
    record = await store.load_access_token(hash_token(token))
    assert record is not None and record.usable(time.time())
    assert (record.user_id, record.route, record.scopes) == ("local:alice", "alpha", ("alpha:read", "alpha:write"))
    assert record.resource.endswith("/alpha/mcp")
    assert 3590 <= record.expires_at - record.issued_at <= 3600

    scoped = cli("tokens", "issue", "--user", "alice", "--route", "alpha", "--scope", "alpha:read", "-c", config)
    assert scoped.returncode == 0, scoped.stderr
    second = scoped.stdout.strip()
    second_record = await store.load_access_token(hash_token(second))
    assert second_record is not None and second_record.scopes == ("alpha:read",)

    listed = cli("tokens", "list", "--user", "alice", "-c", config)
    assert listed.returncode == 0, listed.stderr
    ids = sorted(row.split("\t")[0] for row in listed.stdout.splitlines())
    assert ids == sorted([token_id(hash_token(token)), token_id(hash_token(second))])
    assert all(re.fullmatch(r"[0-9a-f]{8}", i) for i in ids)
    for value in (token, second):
        assert value not in listed.stdout and value[len(ACCESS_TOKEN_PREFIX) :] not in listed.stdout
        assert hash_token(value) not in listed.stdout

    by_id = cli("tokens", "revoke", "--id", token_id(hash_token(token)), "-c", config)
    assert by_id.returncode == 0, by_id.stderr
    revoked = await store.load_access_token(hash_token(token))
    assert revoked is not None and revoked.revoked
    still = await store.load_access_token(hash_token(second))
    assert still is not None and not still.revoked

    by_value = cli("tokens", "revoke", second, "-c", config)
    assert by_value.returncode == 0, by_value.stderr
    assert second not in by_value.stdout + by_value.stderr
    revoked = await store.load_access_token(hash_token(second))
    assert revoked is not None and revoked.revoked

    states = [row.split("\t")[4] for row in cli("tokens", "list", "--user", "alice", "-c", config).stdout.splitlines()]
    assert states == ["revoked", "revoked"]
    assert_one_line_error(cli("tokens", "revoke", ACCESS_TOKEN_PREFIX + "never-issued", "-c", config), "no such token")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(["--user", "alice", "--route", "nope"], "nope", id="unknown-route"),
        pytest.param(["--user", "nobody", "--route", "alpha"], "nobody", id="unknown-user"),
        pytest.param(["--user", "alice", "--route", "alpha", "--ttl", "1y"], "duration", id="bad-ttl"),
        pytest.param(["--user", "alice", "--route", "alpha", "--ttl", "0h"], "duration", id="zero-ttl"),
        pytest.param(
            ["--user", "alice", "--route", "alpha", "--scope", "beta:admin"], "beta:admin", id="unknown-scope"
        ),
    ],
)
async def test_tokens_issue_refuses_bad_requests_with_one_line(
    config: str, store: RedisStore, args: list[str], fragment: str
) -> None:
    """docs/contract.md: non-zero exit with a one-line reason, and no token is created."""
    await add_user(store)
    assert_one_line_error(cli("tokens", "issue", *args, "-c", config), fragment)
    assert await store.list_access_tokens("local:alice") == []
    assert await store.list_access_tokens("local:nobody") == []


# -- every command ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["check-config"],
        ["users"],
        ["users", "add"],
        ["users", "list"],
        ["users", "remove"],
        ["users", "passwd"],
        ["tokens"],
        ["tokens", "issue"],
        ["tokens", "revoke"],
        ["tokens", "list"],
    ],
    ids=lambda command: " ".join(command) or "top",
)
def test_every_command_has_help(command: list[str]) -> None:
    """docs/contract.md: every command has `--help`."""
    result = cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: mcp-auth-gateway")
    assert result.stderr == ""


@pytest.mark.parametrize(
    "command",
    [["check-config"], ["tokens", "list", "--user", "alice"]],
    ids=lambda command: " ".join(command),
)
def test_missing_config_is_one_line_error(command: list[str]) -> None:
    """docs/contract.md: no -c and no MCP_GATEWAY_CONFIG -> non-zero exit, one-line reason."""
    assert_one_line_error(cli(*command), "-c", "MCP_GATEWAY_CONFIG")


# -- command-line values, faults at start (issue 10 #23, #24) -----------------------------------------------


def embedded_config(tmp_path: Path, **store: str) -> str:
    settings = {
        "public_url": "http://127.0.0.1:8080",
        "store": {"data_dir": str(tmp_path / "data"), **store},
        "routes": [ALPHA],
        "listen": {"host": "127.0.0.1", "port": 8080, "metrics_port": None},
    }
    path = tmp_path / "gw.yaml"
    path.write_text(json.dumps(settings))  # (JSON is YAML)
    return str(path)


def yaml_message(tmp_path: Path, **listen: Any) -> str:
    """What check-config says about these `listen` values, without the key path."""
    path = tmp_path / "listen.yaml"
    path.write_text(json.dumps({"public_url": "http://127.0.0.1:8080", "routes": [ALPHA], "listen": listen}))
    line = cli("check-config", "-c", str(path)).stderr.strip().splitlines()[-1]
    # "mcp-auth-gateway: error: invalid configuration: listen.yaml:1: listen.port: <message>"
    problem = re.sub(r"^\S+:\d+: ", "", line.split("invalid configuration: ", 1)[1])
    return problem.split(": ", 1)[1]


@pytest.mark.parametrize(
    ("args", "listen"),
    [
        pytest.param(["--port", "99999"], {"port": 99999}, id="port-too-large"),
        pytest.param(["--port", "-1"], {"port": -1}, id="port-negative"),
        pytest.param(["--port", "http"], {"port": "http"}, id="port-not-a-number"),
        pytest.param(["--host", "not a host"], {"host": "not a host"}, id="host-with-spaces"),
        pytest.param(["--host", "gw..example.com"], {"host": "gw..example.com"}, id="host-empty-label"),
    ],
)
def test_serve_options_are_validated_like_the_yaml(tmp_path: Path, args: list[str], listen: dict[str, Any]) -> None:
    """Issue 10 #23: `--port 99999` bound 34463 (the value modulo 65536) while the log said 99999. Options are
    checked by the same model as `listen:` in the YAML, with the same message, before anything starts."""
    message = yaml_message(tmp_path, **listen)
    result = cli("serve", "-c", embedded_config(tmp_path), *args)
    assert_one_line_error(result, f"{args[0]}: {message}")
    assert not (tmp_path / "data").exists()  # nothing was started


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(["serve", "--workers", "0"], "--workers: Input should be greater than or equal to 1", id="zero"),
        pytest.param(["serve", "--workers", "many"], "--workers: Input should be a valid integer", id="nan"),
        pytest.param(["serve", "--workers", "100000"], "--workers: Input should be less than or equal to", id="huge"),
        pytest.param(["demo", "--port", "70000"], "--port: Input should be less than or equal to 65535", id="demo"),
        pytest.param(
            ["demo", "--upstream-port", "0"],
            "--upstream-port: Input should be greater than or equal to 1",
            id="demo-upstream",
        ),
    ],
)
def test_other_numeric_options_are_validated(tmp_path: Path, args: list[str], fragment: str) -> None:
    config = [] if args[0] == "demo" else ["-c", embedded_config(tmp_path)]
    data = ["--data-dir", str(tmp_path / "data")] if args[0] == "demo" else []
    assert_one_line_error(cli(*args, *config, *data), fragment)
    assert not (tmp_path / "data").exists()


@pytest.fixture
def not_redis() -> Any:
    """A TCP server that answers like a web server, not like Redis."""
    import http.server
    import threading

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.server_address[1]}/0"
    server.shutdown()
    server.server_close()


STORE_COMMANDS = [
    ["users", "list"],
    ["users", "add", "bob", "--password-stdin"],
    ["clients", "list"],
    ["tokens", "issue", "--user", "bob", "--route", "alpha"],
    ["keys", "rotate"],
]


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("fault", ["not-redis", "down", "unusable-data-dir"])
def test_a_store_that_cannot_be_used_is_one_line(
    tmp_path: Path, not_redis: str, command: list[str], fault: str
) -> None:
    """Issue 10 #24: a store that is down, a URL where something else answers, a data_dir that cannot be made:
    one line naming the reason, exit 1, no traceback."""
    if fault == "unusable-data-dir":
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        config, expected = embedded_config(tmp_path, data_dir=str(blocker / "data")), "cannot start the embedded Redis"
    else:
        url = not_redis if fault == "not-redis" else f"redis://127.0.0.1:{free_port()}/0"
        config = embedded_config(tmp_path, url=url)
        expected = "does not answer as Redis" if fault == "not-redis" else "cannot reach the store"
    assert_one_line_error(cli(*command, "-c", config, stdin=PASSWORD + "\n"), expected)


@pytest.mark.parametrize(
    ("args", "stdin", "fragment"),
    [
        pytest.param(
            ["users", "add", "bob"],
            "",
            "no terminal to prompt for a password; use --password-stdin",
            id="users-add-no-tty",
        ),
        pytest.param(
            ["users", "passwd", "bob"],
            PASSWORD + "\n",
            "no terminal to prompt for a password; use --password-stdin",
            id="users-passwd-no-tty",
        ),
        pytest.param(
            ["users", "add", "bob", "--password-stdin"], "", "no input: expected a password", id="password-eof"
        ),
        pytest.param(
            [
                "clients",
                "add",
                "--redirect-uri",
                "http://127.0.0.1/cb",
                "--auth-method",
                "client_secret_post",
                "--secret-stdin",
            ],
            "",
            "no input: expected a client secret",
            id="secret-eof",
        ),
        pytest.param(["tokens", "revoke", "-"], "", "no input: expected a token", id="token-eof"),
    ],
)
def test_missing_input_is_one_line(config: str, args: list[str], stdin: str, fragment: str) -> None:
    """Issue 10 #24: `users add` without a terminal printed a traceback (getpass on a pipe, then EOFError)."""
    assert_one_line_error(cli(*args, "-c", config, stdin=stdin), fragment)


@pytest.mark.parametrize(
    "content",
    [None, "routes: [unclosed", "- a list", b"\xff\xfe\x00routes: []", "directory"],
    ids=["missing", "not-yaml", "not-map", "not-utf8", "a-directory"],
)
def test_a_bad_config_file_is_one_line(tmp_path: Path, content: str | bytes | None) -> None:
    """Issue 10 #24, security review 2 R13: a config file that is not UTF-8 printed a UnicodeDecodeError
    traceback."""
    path = tmp_path / "gw.yaml"
    if content == "directory":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    for command in (["users", "list"], ["serve"], ["check-config"]):
        assert_one_line_error(cli(*command, "-c", str(path)), "invalid configuration", str(path))


def test_ctrl_c_is_one_line_and_exit_1(config: str) -> None:
    """Issue 10 #24: Ctrl-C while a command waits for input ends it with a one-line reason, not a traceback."""
    import platform
    import signal

    read_syscall = {"x86_64": "0", "aarch64": "63"}[platform.machine()]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MCP_GATEWAY_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "users", "add", "bob", "--password-stdin", "-c", config],
        cwd=REPO,
        env=clean,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while (Path(f"/proc/{process.pid}/syscall").read_text().split() or [""])[:2] != [read_syscall, "0x0"]:
            assert time.monotonic() < deadline, "never waited on standard input"
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert_one_line_error(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), "interrupted")


@pytest.mark.parametrize(
    "args",
    [["bogus"], ["users", "add"], ["tokens", "list"], ["users", "list", "--nope"], ["serve", "--log-level", "x"]],
    ids=["unknown-command", "missing-name", "missing-option", "unknown-option", "bad-choice"],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str]) -> None:
    """Security review 2, R13: argparse's usage block plus error became one line naming --help; exit 2 as
    argparse's."""
    result = cli(*args)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcp-auth-gateway") and "error: " in lines[0], result.stderr
    assert "--help" in lines[0]


def test_a_reader_that_leaves_early_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """`users list | head`: the pipe closes before the output is written (BrokenPipeError at the print or at
    the interpreter's last flush): one line on stderr, exit 1."""
    config = embedded_config(tmp_path)
    for n in range(3):
        added = cli("users", "add", f"user{n}", "--password-stdin", "-c", config, stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MCP_GATEWAY_")}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "gateway", "users", "list", "-c", config],
            cwd=REPO,
            env=clean,
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "mcp-auth-gateway: error: output closed before everything was written (broken pipe)"
    ]


def test_output_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    """A full disk under the output (/dev/full): the OSError is one line, exit 1."""
    config = embedded_config(tmp_path)
    cli("users", "add", "user0", "--password-stdin", "-c", config, stdin=PASSWORD + "\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MCP_GATEWAY_")}
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "gateway", "users", "list", "-c", config],
            cwd=REPO,
            env=clean,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["mcp-auth-gateway: error: No space left on device"]


@pytest.mark.parametrize("command", [["users", "add", "newbie"], ["users", "passwd", "zed"]], ids=["add", "passwd"])
def test_a_password_that_is_not_utf8_is_one_line(tmp_path: Path, command: list[str]) -> None:
    """Security review 2, R13: bytes that are not UTF-8 on --password-stdin reached argon2 as lone surrogates
    and ended in a UnicodeEncodeError traceback."""
    config = embedded_config(tmp_path)
    assert cli("users", "add", "zed", "--password-stdin", "-c", config, stdin=PASSWORD + "\n").returncode == 0
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MCP_GATEWAY_")}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", *command, "--password-stdin", "-c", config],
        cwd=REPO,
        env=clean,
        input=b"\xff\xfe\xfd-long-enough\n",
        capture_output=True,
        timeout=60,
    )
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 1 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines() == ["mcp-auth-gateway: error: the password is not valid UTF-8 text"], stderr
