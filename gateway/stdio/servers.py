"""The processes (or HTTP+SSE connections) of one bridged route: one shared by every caller, or one per user
(`isolation: per_user`), at most `max_processes` at once; each stopped after `idle_timeout` seconds without a
request, started again on the next one; one that dies soon after starting waits longer each time before the next
start (1 s, doubling, up to `max_backoff`), and requests meanwhile are told when to retry."""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import shutil
import time

from mcp.client.stdio import StdioServerParameters

from gateway.config import Route
from gateway.config.stdio import StdioCommand
from gateway.stdio.process import Opener, ProcessExitedError, StdioProcess, sse_opener, stdio_opener

logger = logging.getLogger(__name__)
SHORT_LIFE = 10.0  # a process that ends sooner than this after starting counts as a failed start


class BackoffError(Exception):
    """Starting again is not allowed yet (`retry_after` seconds); or, with 0, no process may be added."""

    def __init__(self, retry_after: float, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StdioServers:
    """`process(key, env)`: the running process for a caller (key "shared", or the user id), started if need be."""

    def __init__(self, route: Route) -> None:
        assert route.bridged is not None
        self.route, self.command, self._config = route.name, route.bridged, route
        self._processes: dict[str, tuple[StdioProcess, dict[str, str]]] = {}
        self._starting: dict[str, asyncio.Task[StdioProcess]] = {}
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (failed starts in a row, not before)
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    def running(self) -> int:
        return sum(1 for process, _ in self._processes.values() if process.alive)

    async def process(self, key: str, env: dict[str, str]) -> StdioProcess:
        """Raises: BackoffError (too soon after failed starts, or max_processes busy), ProcessExitedError."""
        if self._closed:
            raise ProcessExitedError("the gateway is stopping")
        found = self._processes.get(key)
        if found is not None and found[0].alive and found[1] == env:
            return found[0]
        if found is not None:  # exited, or its environment changed (a new credential): replaced
            self._forget(key)
            asyncio.ensure_future(found[0].stop())
        starting = self._starting.get(key)
        if starting is None:
            self._admit(key)
            starting = self._starting[key] = asyncio.ensure_future(self._start(key, env))
            starting.add_done_callback(lambda _: self._starting.pop(key, None))
        return await asyncio.shield(starting)

    async def close(self) -> None:
        """Stop every process, those still starting too (a start is bounded by start_timeout)."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        started = await asyncio.gather(*self._starting.values(), return_exceptions=True)
        processes = [process for process, _ in self._processes.values()]
        processes += [p for p in started if isinstance(p, StdioProcess) and p not in processes]
        self._processes.clear()
        await asyncio.gather(*(p.stop() for p in processes), return_exceptions=True)

    def _admit(self, key: str) -> None:
        failed, not_before = self._failures.get(key, (0, 0.0))
        wait = not_before - time.monotonic()
        if wait > 0:
            raise BackoffError(wait, f"the stdio server failed {failed} time(s) in a row; retrying later")
        if len(self._processes) + len(self._starting) >= self.command.max_processes and not self._evict_idle():
            raise BackoffError(5.0, f"all {self.command.max_processes} stdio server processes of this route are busy")

    def _evict_idle(self) -> bool:
        """Stop the least recently used process with nothing in flight, to make room."""
        idle = [(p.last_used, key) for key, (p, _) in self._processes.items() if p.in_flight == 0]
        if not idle:
            return False
        _, key = min(idle)
        process = self._forget(key)
        asyncio.ensure_future(process.stop())
        return True

    async def _start(self, key: str, env: dict[str, str]) -> StdioProcess:
        label = f"{self.route}" if key == "shared" else f"{self.route} ({key})"
        try:
            opener = self._opener(env, label)
        except (OSError, KeyError) as exc:  # (an unknown user, not root)
            logger.warning("stdio server of %s cannot start: %s", label, exc)
            self._failed(key)
            raise ProcessExitedError("the stdio server cannot be started (see the log)") from None
        process = StdioProcess(opener, label=label, start_timeout=self.command.start_timeout)
        try:
            await process.start()
        except Exception:
            self._failed(key)
            raise
        self._processes[key] = (process, env)
        asyncio.ensure_future(self._watch(key, process))
        self._arm()
        return process

    async def _watch(self, key: str, process: StdioProcess) -> None:
        await process.exited.wait()
        if self._processes.get(key, (None,))[0] is process:
            self._forget(key)
            if time.monotonic() - process.started_at < SHORT_LIFE:
                self._failed(key)
            else:
                self._failures.pop(key, None)

    def _failed(self, key: str) -> None:
        failed = self._failures.get(key, (0, 0.0))[0] + 1
        delay = min(self.command.max_backoff, 2.0 ** (failed - 1))
        self._failures[key] = (failed, time.monotonic() + delay)
        if len(self._failures) > 4 * self.command.max_processes:  # (bounded: forget the oldest user's record)
            self._failures.pop(next(iter(self._failures)))
        logger.warning("stdio server of %s failed to start or died early; next start in %.0fs", self.route, delay)

    def _opener(self, env: dict[str, str], label: str) -> Opener:
        """A command's process with `env` in its environment, or a connection to the HTTP+SSE server sending `env`
        as its headers."""
        if isinstance(self.command, StdioCommand):
            return stdio_opener(parameters(self.command, env), label)
        return sse_opener(self._config.upstream, env, timeout=self._config.timeout)

    def _forget(self, key: str) -> StdioProcess:
        return self._processes.pop(key)[0]

    def _arm(self) -> None:
        if self._sweeper is None:
            every = min(self.command.idle_timeout / 2, 5.0)
            self._sweeper = asyncio.get_running_loop().call_later(every, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        deadline = time.monotonic() - self.command.idle_timeout
        for key, (process, _) in list(self._processes.items()):
            if process.in_flight == 0 and process.last_used < deadline:
                logger.info("stdio server of %s idle for %gs: stopping it", process.label, self.command.idle_timeout)
                self._forget(key)
                asyncio.ensure_future(process.stop())
        if self._processes:
            self._arm()


def parameters(command: StdioCommand, env: dict[str, str]) -> StdioServerParameters:
    """The SDK's spawn parameters; `user`: through setpriv, which needs root (else the start fails, logged)."""
    argv = list(command.argv)
    extra = {**command.env, **env}
    if command.user is not None:
        entry = pwd.getpwnam(command.user) if os.geteuid() == 0 and shutil.which("setpriv") else None
        if entry is None:
            raise PermissionError(f"running as {command.user!r} needs the gateway to run as root, with setpriv")
        argv = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--", *argv]
        extra = {"HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name, **extra}
    return StdioServerParameters(command=argv[0], args=argv[1:], env=extra, cwd=command.cwd)
