"""The audit log: one JSON object per line, per MCP request and per OAuth event. Never a token or secret;
tool arguments only as a keyed digest (HMAC-SHA256) unless the route opts in (`audit_arguments`).

Lines are written in batches: an event appends its fields to a buffer and the buffer is encoded and written once
per event-loop iteration (under load, one write for many requests; when idle, at once), after the answer it
describes went out: a request's audit line costs its client no latency. A file that logrotate moved away is
noticed within a second and reopened (as logging's WatchedFileHandler does, without a stat per line)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import sys
import time
from typing import IO, Any

from gateway.config import AuditSettings
from gateway.store.base import KeyStore

logger = logging.getLogger(__name__)
REOPEN_CHECK_SECONDS = 1.0
# Every line is bounded whatever a caller passes (client names, redirect URIs, tool names of a 100-message batch,
# arguments when a route logs them): longer strings and arrays are cut, deeper values summarised, and the line's
# values share one budget. What was cut is marked: "…(+N)" after a string or as an array's last item.
MAX_STRING_CHARS = 512
MAX_ITEMS = 32
MAX_DEPTH = 4
MAX_LINE_CHARS = 16 * 1024  # the budget of all values of a line (the markers add a little)


class AuditLog:
    def __init__(self, settings: AuditSettings) -> None:
        self.enabled = settings.enabled
        self._path = None if settings.path == "-" else settings.path
        self._stream: IO[str] | None = None
        self._identity: tuple[int, int] | None = None
        self._checked = 0.0
        self._pending: list[tuple[float, str, dict[str, Any]]] = []  # (time, event, fields), encoded at flush
        self._encode = json.JSONEncoder(separators=(",", ":"), default=str).encode
        if self.enabled:
            self._open()

    def emit(self, event: str, **fields: Any) -> None:
        """One line of `fields` (values the caller no longer changes), timed now, written with the loop's next batch
        (at once without a running loop: the CLI)."""
        if not self.enabled:
            return
        self._pending.append((time.time(), event, fields))
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (CLI): write now
                self.flush()

    def _encoded(self, when: float, event: str, fields: dict[str, Any]) -> str:
        try:
            return self._line(when, event, fields)
        except Exception as exc:  # noqa: BLE001 - one line lost, never the batch; said without its values
            logger.error("audit line of event %s not encoded (%s); lost", event, type(exc).__name__)
            return ""

    def _line(self, when: float, event: str, fields: dict[str, Any]) -> str:
        budget = _Budget(MAX_LINE_CHARS)
        record: dict[str, Any] = {"time": _timestamp(when), "event": event}
        for key, value in fields.items():
            if value is None:
                continue
            if type(value) is str and len(value) <= MAX_STRING_CHARS and len(value) <= budget.left:
                budget.left -= len(value) + 2  # (what `bounded` does with a string it keeps whole, inline)
                record[key] = value
            elif type(value) is list and _short_strings(value, budget):  # (methods, tools, digests: kept whole)
                record[key] = value
            else:
                record[key] = bounded(value, budget)
        return self._encode(record) + "\n"

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        lines = "".join([self._encoded(*entry) for entry in pending])
        try:
            if self._path is not None and self._stream is None:  # (a line after close(): reopen, never stdout)
                self._open()
            self._reopen_if_moved()
            stream = self._stream if self._stream is not None else sys.stdout
            stream.write(lines)
            stream.flush()
        except (OSError, ValueError) as exc:  # a full disk must not take requests down; say so in the log
            logger.error("audit log write failed (%s); %d bytes of audit lines lost", exc, len(lines))

    def close(self) -> None:
        self.flush()
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _open(self) -> None:
        if self._path is None:
            return
        # created 0600 (whatever the umask), also when logrotate moved the old one away: it names users and clients
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._stream = open(fd, "a", encoding="utf-8")  # noqa: SIM115 (kept open; closed in close())
        info = os.fstat(self._stream.fileno())
        self._identity = (info.st_dev, info.st_ino)

    def _reopen_if_moved(self) -> None:
        if self._path is None:
            return
        now = time.monotonic()
        if now - self._checked < REOPEN_CHECK_SECONDS:
            return
        self._checked = now
        try:
            info = os.stat(self._path)
            moved = (info.st_dev, info.st_ino) != self._identity
        except FileNotFoundError:
            moved = True
        if moved:
            if self._stream is not None:
                self._stream.close()
            self._open()


def _short_strings(value: list[Any], budget: _Budget) -> bool:
    """Whether `bounded` would keep this list as it is (at most MAX_ITEMS strings, each and all within the limits);
    then the budget is charged as `bounded` charges it."""
    if len(value) > MAX_ITEMS:
        return False
    size = 0
    for item in value:
        if type(item) is not str or len(item) > MAX_STRING_CHARS:
            return False
        size += len(item) + 2
    if size > budget.left:
        return False
    budget.left -= size
    return True


class _Budget:
    """Characters still allowed on this line."""

    def __init__(self, chars: int) -> None:
        self.left = chars


def bounded(value: Any, budget: _Budget | None = None, depth: int = 0) -> Any:
    """`value` as JSON-ready data no larger than the limits above; what was cut is marked."""
    budget = budget if budget is not None else _Budget(MAX_LINE_CHARS)
    if isinstance(value, str):  # (the usual field: first)
        keep = max(0, min(MAX_STRING_CHARS, budget.left))
        budget.left -= min(len(value), keep) + 2
        return value if len(value) <= keep else f"{value[:keep]}…(+{len(value) - keep})"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        budget.left -= 20
        return value if -(10**18) < value < 10**18 else f"({value.bit_length()}-bit integer)"
    if isinstance(value, float):
        budget.left -= 24
        return value if math.isfinite(value) else str(value)  # NaN/Infinity are not JSON
    if isinstance(value, dict):
        return _bounded_object(value, budget, depth)
    if isinstance(value, (list, tuple, set, frozenset)):
        return _bounded_array(value, budget, depth)
    return bounded(str(value), budget, depth)  # anything else as text (the encoder's default=str did the same)


def _bounded_object(value: dict[Any, Any], budget: _Budget, depth: int) -> dict[str, Any]:
    if depth >= MAX_DEPTH:
        return {"truncated": f"object of {len(value)} members"}
    out: dict[str, Any] = {}
    for i, (key, item) in enumerate(value.items()):
        if i >= MAX_ITEMS or budget.left <= 0:
            out["…"] = f"+{len(value) - i} members"
            break
        out[bounded(str(key), budget, depth + 1)] = bounded(item, budget, depth + 1)
    return out


def _bounded_array(value: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any], budget: _Budget, depth: int) -> Any:
    if depth >= MAX_DEPTH:
        return {"truncated": f"array of {len(value)} items"}
    items: list[Any] = []
    for i, item in enumerate(value):
        if i >= MAX_ITEMS or budget.left <= 0:
            items.append(f"…(+{len(value) - i})")
            break
        items.append(bounded(item, budget, depth + 1))
    return items


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode  # (made once)
DIGEST_SECRET = "audit-digest"  # the store's name for the deployment secret that keys argument digests


def argument_digest(arguments: Any, key: bytes | hmac.HMAC) -> str:
    """HMAC-SHA256 (RFC 2104) of the canonical JSON of the arguments under the deployment's secret: equal calls
    are recognisable across instances, while contents cannot be confirmed by hashing guesses (a bare hash of a
    short argument, a PIN, an account number, is reversed by trying every value). `key` may be an HMAC already
    keyed with it (copied, never updated: the key schedule is then worked out once)."""
    canonical = _CANONICAL(arguments)
    keyed = key.copy() if isinstance(key, hmac.HMAC) else hmac.new(key, digestmod=hashlib.sha256)
    keyed.update(canonical.encode("utf-8", "surrogatepass"))
    return "hmac-sha256:" + keyed.hexdigest()


class ArgumentDigester:
    """Keyed argument digests; the key is a secret kept in the store (created by the first instance that needs
    it, like the identity-JWT keys) and held in memory once loaded."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store
        self._key: hmac.HMAC | None = None

    async def digest(self, arguments: Any) -> str:
        """Raises StoreUnavailableError while the key was never loaded and the store is down (then 503)."""
        if self._key is None:
            secret = bytes.fromhex(await self._store.load_or_create_secret(DIGEST_SECRET))
            self._key = hmac.new(secret, digestmod=hashlib.sha256)
        return argument_digest(arguments, self._key)


_second: tuple[int, str] = (0, "")


def _timestamp(now: float) -> str:
    """`now` (time.time()) in UTC with milliseconds; the formatted second is reused while it lasts."""
    global _second
    whole = int(now)
    if whole != _second[0]:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int(now * 1000) % 1000:03d}Z"
