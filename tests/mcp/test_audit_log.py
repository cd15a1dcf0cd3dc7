"""The audit log (issue #5 item 4): one JSON line per MCP request and per OAuth event, never a token."""

from __future__ import annotations

import io
import json

import pytest

from gateway.accounts import add_user
from tests.conftest import route
from tests.mcp.test_tool_policy import POLICY
from tests.support.mcp_wire import modern_call
from tests.support.oauth_client import register
from tests.support.token_flow import PASSWORD, obtain_tokens
from tests.support.tokens import issue


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_each_mcp_request_leaves_one_line_with_its_outcome(
    start_gateway, upstream, store, aiohttp_client, tmp_path
):
    log = tmp_path / "audit.jsonl"
    server = await start_gateway(
        [route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"], policy=POLICY, audit_arguments=False)],
        audit={"path": str(log)},
        rate_limits={"tool_calls_per_user": {"limit": 1}},
    )
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read", "alpha:write"))
    auth = {"Authorization": f"Bearer {token}"}
    headers, call = modern_call(7, "add", {"a": 2, "b": 3})
    assert (await client.post("/alpha/mcp", json=call, headers={**headers, **auth})).status == 200  # allowed
    assert (await client.post("/alpha/mcp", json=call, headers={**headers, **auth})).status == 429  # limited
    headers, denied = modern_call(8, "slow_progress", {"steps": 1, "delay": 0})
    assert (await client.post("/alpha/mcp", json=denied, headers={**headers, **auth})).status == 403
    assert (await client.post("/alpha/mcp", json=call, headers=headers)).status == 401  # no token

    records = [r for r in lines(log) if r["event"] == "mcp.request"]
    assert [r["status"] for r in records] == [200, 429, 403, 401]
    ok = records[0]
    assert ok["user"] == "local:alice" and ok["client"] == "mcp-auth-gateway-cli" and ok["route"] == "alpha"
    assert ok["methods"] == ["tools/call"] and ok["tools"] == ["add"]
    assert ok["argument_digests"][0].startswith("hmac-sha256:") and "arguments" not in ok
    assert ok["upstream_ms"] >= 0 and ok["bytes"] > 0 and ok["request_id"] and ok["time"].endswith("Z")
    assert records[2]["tools"] == ["slow_progress"]
    assert "user" not in records[3]
    assert token not in log.read_text() and token[9:] not in log.read_text()


async def test_routes_may_opt_in_to_logging_arguments(start_gateway, upstream, store, aiohttp_client, tmp_path):
    log = tmp_path / "audit.jsonl"
    server = await start_gateway([route("alpha", upstream.url, audit_arguments=True)], audit={"path": str(log)})
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    headers, call = modern_call(1, "add", {"a": 2, "b": 3})
    await (await client.post("/alpha/mcp", json=call, headers={**headers, "Authorization": f"Bearer {token}"})).read()
    assert lines(log)[-1]["arguments"] == [{"a": 2, "b": 3}]


async def test_oauth_events_are_logged_without_secrets(start_gateway, upstream, store, aiohttp_client, tmp_path, clock):
    """Registration, sign-in, code, token and a failed token request; no token, code or secret in the file."""
    log = tmp_path / "audit.jsonl"
    await add_user(store, "alice", PASSWORD, now=clock.now)
    server = await start_gateway([route("alpha", upstream.url)], audit={"path": str(log)})
    client = await aiohttp_client(server)
    registered = await register(client)
    tokens = await obtain_tokens(client, server, registered["client_id"])
    failed = await client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "nope",
            "client_id": registered["client_id"],
            "code_verifier": "x" * 43,
        },
    )
    assert failed.status == 400
    records = lines(log)
    assert [r["event"] for r in records] == [
        "oauth.register",
        "oauth.login",
        "oauth.authorize",
        "oauth.token",
        "oauth.token",
    ]
    assert records[1]["user"] == "local:alice" and records[1]["outcome"] == "ok"
    assert records[2]["outcome"] == "code" and records[2]["route"] == "alpha"
    assert records[3]["outcome"] == "issued" and records[4]["outcome"] == "invalid_grant"
    text = log.read_text()
    for secret in (tokens["access_token"], tokens["refresh_token"], PASSWORD):
        assert secret not in text


def test_a_rotated_file_is_reopened_and_nothing_is_lost(tmp_path):
    """logrotate moves the file away: within a second new lines go to a new file at the configured path."""
    import time

    from gateway.audit import REOPEN_CHECK_SECONDS, AuditLog
    from gateway.config import AuditSettings

    path = tmp_path / "audit.jsonl"
    audit = AuditLog(AuditSettings(path=str(path)))
    try:
        audit.emit("before", n=1)  # (no event loop here: written at once)
        path.rename(tmp_path / "audit.jsonl.1")
        time.sleep(REOPEN_CHECK_SECONDS + 0.1)
        audit.emit("after", n=2)
    finally:
        audit.close()
    assert [r["event"] for r in lines(tmp_path / "audit.jsonl.1")] == ["before"]
    assert [r["event"] for r in lines(path)] == ["after"]


async def test_argument_digests_are_keyed_and_equal_calls_digest_alike_on_every_instance(
    aiohttp_server, aiohttp_client, upstream, redis_url, key_prefix, clock, store, tmp_path
):
    """Finding 20: HMAC-SHA256 under a deployment secret kept in the store (created by the first instance), not a
    bare SHA-256 anyone can confirm a guessed argument against; two instances on one store agree."""
    import hashlib

    from gateway.app import create_app
    from gateway.audit import DIGEST_SECRET, argument_digest
    from gateway.ports import free_port
    from tests.conftest import make_settings

    logs = [tmp_path / "one.jsonl", tmp_path / "two.jsonl"]
    port = free_port()
    servers = []
    for i, log in enumerate(logs):
        settings = make_settings(port, redis_url, key_prefix, [route("alpha", upstream.url)], audit={"path": str(log)})
        servers.append(await aiohttp_server(create_app(settings, clock=clock), port=port if i == 0 else free_port()))
    token = await issue(store, servers[0], "alpha")
    for server in servers:
        client = await aiohttp_client(server)
        for arguments in ({"a": 2, "b": 3}, {"b": 3, "a": 2}, {"a": 4, "b": 3}):
            headers, call = modern_call(1, "add", arguments)
            reply = await client.post("/alpha/mcp", json=call, headers={**headers, "Authorization": f"Bearer {token}"})
            assert reply.status == 200
            await reply.read()
    digests = [[r["argument_digests"][0] for r in lines(log) if r["event"] == "mcp.request"] for log in logs]
    assert digests[0] == digests[1]  # same deployment secret on both instances
    assert digests[0][0] == digests[0][1] != digests[0][2]  # equal calls alike (key order does not matter)
    secret = bytes.fromhex(await store.load_or_create_secret(DIGEST_SECRET))
    assert digests[0][0] == argument_digest({"a": 2, "b": 3}, secret)
    bare = hashlib.sha256(b'{"a":2,"b":3}').hexdigest()
    assert bare not in digests[0][0]


async def test_the_deployment_secret_is_created_once_for_every_store_client(redis_url, key_prefix):
    """Store contract: concurrent first calls from several instances end with one secret."""
    import asyncio

    from gateway.store.redis import RedisStore

    stores = [RedisStore.from_url(redis_url, key_prefix, timeout=2.0) for _ in range(4)]
    try:
        values = await asyncio.gather(*(s.load_or_create_secret("audit-digest") for s in stores for _ in range(3)))
        assert len(set(values)) == 1 and len(values[0]) == 64
        assert await stores[0].load_or_create_secret("another") != values[0]
    finally:
        for s in stores:
            await s.close()


async def test_a_refused_huge_batch_leaves_a_bounded_audit_line(
    start_gateway, upstream, store, aiohttp_client, tmp_path
):
    """Finding 5: a 50,000-message batch wrote a 5 MB audit line; now it is refused and described in part."""
    log = tmp_path / "audit.jsonl"
    server = await start_gateway([route("alpha", upstream.url)], audit={"path": str(log)})
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": f"t{i}" + "x" * (300 if i < 200 else 0)}}
        for i in range(50_000)
    ]
    raw = json.dumps(batch, separators=(",", ":")).encode()
    assert len(raw) < 4 * 1024 * 1024  # under the body limit: the batch itself is what is refused
    reply = await client.post(
        "/alpha/mcp",
        data=io.BytesIO(raw),
        headers={
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
        },
    )
    assert reply.status == 400 and (await reply.json())["error"]["code"] == -32600
    record = [r for r in lines(log) if r["event"] == "mcp.request"][-1]
    # described in part: the audit log keeps 32 items of an array and marks the rest (gateway.audit.bounded)
    assert len(record["methods"]) == 33 and record["methods"][-1].startswith("…(+")
    assert len(record["tools"]) == 33 and record["tools"][-1].startswith("…(+")
    assert all(len(name) <= 200 for name in record["tools"][:-1])
    assert len(log.read_text()) < 64 * 1024


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16", "utf-32"])
async def test_a_deep_body_in_another_encoding_is_refused_with_a_parse_error(
    start_gateway, upstream, store, aiohttp_client, tmp_path, encoding
):
    """Review 2, R4 regression: the audit description read a UTF-16/32 body with json.loads(bytes) (which takes
    those encodings) but checked its depth on a UTF-8 reading, where escaped quotes hide the brackets; the deep
    value then raised RecursionError in the audit path (500). Every reading now starts from one strict UTF-8 text."""
    log = tmp_path / "audit.jsonl"
    server = await start_gateway([route("alpha", upstream.url, audit_arguments=False)], audit={"path": str(log)})
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read",))
    arguments = '{"k":"\\"","deep":' + "[" * 937 + "]" * 937 + ',"z":"\\""}'
    text = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":' + arguments + "}}"
    reply = await client.post(
        "/alpha/mcp",
        data=text.encode(encoding),
        headers={
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
        },
    )
    assert reply.status == 400 and (await reply.json())["error"]["code"] == -32700
    record = [r for r in lines(log) if r["event"] == "mcp.request"][-1]
    assert record["status"] == 400 and "tools" not in record  # (not read as a tools/call of "add")


async def test_lines_are_encoded_with_the_loops_next_batch_timed_when_emitted_and_one_bad_value_loses_one_line(
    tmp_path, caplog
):
    """Within the event loop a line is encoded and written after the request that emitted it is answered (the
    loop's next iteration), stamped with the time of the event; a value that cannot be turned into text loses its
    own line, said in the log without the value, and never the rest of the batch."""
    import asyncio
    import calendar
    import time

    from gateway.audit import AuditLog
    from gateway.config import AuditSettings

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    path = tmp_path / "audit.jsonl"
    audit = AuditLog(AuditSettings(path=str(path)))
    try:
        emitted = time.time()
        audit.emit("first", n=1)
        audit.emit("broken", value=Unprintable())
        audit.emit("last", n=3)
        assert path.read_text() == ""  # nothing encoded or written yet
        await asyncio.sleep(0.05)
    finally:
        audit.close()
    written = lines(path)
    assert [r["event"] for r in written] == ["first", "last"]
    stamped = calendar.timegm(time.strptime(written[0]["time"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert abs(stamped + int(written[0]["time"][20:23]) / 1000 - emitted) < 0.05 + 0.001
    assert "audit line of event broken not encoded (RuntimeError); lost" in caplog.text
    assert "no text" not in caplog.text
