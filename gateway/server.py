"""Running the gateway: listen, reload on SIGHUP, drain on SIGTERM, optionally several worker processes.

Reload (SIGHUP, or a changed file with --watch-config) starts a new application on the same port (SO_REUSEPORT)
and then retires the old one: new connections go to the new configuration at once, while requests and SSE
streams already open finish on the old one (up to `listen.shutdown_grace`). An invalid configuration is refused
and the running one kept. With `listen.metrics_port`, /metrics has a listener of its own, which always shows the
current application's metrics.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.app import create_app
from gateway.config import ConfigError, Settings, load_settings
from gateway.keys import METRICS_KEY
from gateway.web.middleware import AccessLogger

logger = logging.getLogger("gateway")
WORKER_INDEX_ENV = "MCP_GATEWAY_WORKER_INDEX"  # set by run_workers: 0..N-1
WATCH_INTERVAL = 1.0  # seconds between looks at the configuration file (--watch-config)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (a dependency on Linux and macOS): the same asyncio API with the
    loop and socket transports in C, where the proxy's per-request reads and writes spend much of their time."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _start(settings: Settings, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(create_app(settings), access_log_class=AccessLogger, handler_cancellation=True,
                           shutdown_timeout=settings.listen.shutdown_grace)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=True, shutdown_timeout=settings.listen.shutdown_grace)
    await site.start()
    return runner


async def _start_metrics(settings: Settings, current: list[web.AppRunner]) -> web.AppRunner | None:
    """The /metrics listener of `listen.metrics_port` (+ this worker's index), serving `current[0]`'s registry."""
    if settings.listen.metrics_port is None:
        return None

    async def handle(request: web.Request) -> web.Response:
        body = generate_latest(current[0].app[METRICS_KEY].registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = settings.listen.metrics_port + int(os.environ.get(WORKER_INDEX_ENV, "0"))
    host = settings.listen.metrics_host or settings.listen.host
    await web.TCPSite(runner, host, port).start()
    logger.info("metrics on http://%s:%s/metrics", host, port)
    return runner


def _file_version(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file is edited or replaced (a Kubernetes ConfigMap swaps a symlink)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


async def _watch(path: Path, reload: asyncio.Event) -> None:
    """Ask for a reload whenever the configuration file changes (polled: works on every filesystem and mount)."""
    seen = _file_version(path)
    while True:
        await asyncio.sleep(WATCH_INTERVAL)
        version = _file_version(path)
        if version is not None and version != seen:
            logger.info("%s changed: reloading", path)
            reload.set()
        seen = version if version is not None else seen


async def serve(config: Path, settings: Settings, host: str, port: int, watch_config: bool = False) -> None:
    """Serve until SIGTERM/SIGINT (then drain and return); SIGHUP (or, with `watch_config`, an edit) reloads
    `config`."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reload = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    runner = await _start(settings, host, port)
    current = [runner]
    metrics_runner = await _start_metrics(settings, current)
    watcher = asyncio.ensure_future(_watch(config, reload)) if watch_config else None
    logger.info("ready (pid %s); SIGHUP%s reloads %s, SIGTERM drains for %ss", os.getpid(),
                " or an edit" if watch_config else "", config, settings.listen.shutdown_grace)
    retiring: set[asyncio.Task[None]] = set()
    while True:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(reload.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if stop.is_set():
            break
        reload.clear()
        try:
            fresh = load_settings(config)
        except ConfigError as exc:
            logger.error("reload refused, keeping the running configuration: %s", "; ".join(exc.problems))
            continue
        try:
            new_runner = await _start(fresh, host, port)
        except OSError as exc:
            logger.error("reload refused, could not listen with the new configuration: %s", exc)
            continue
        old, runner = runner, new_runner
        current[0] = runner
        if fresh.listen.metrics_port != settings.listen.metrics_port:
            logger.warning("listen.metrics_port changed: takes effect on restart")
        task = asyncio.ensure_future(old.cleanup())  # stops accepting, lets open streams finish
        retiring.add(task)
        task.add_done_callback(retiring.discard)
        logger.info("reloaded %s: %d route(s); the previous configuration drains its open requests", config,
                    len(fresh.routes))
    logger.info("draining: no new connections; open requests get up to %ss", settings.listen.shutdown_grace)
    if watcher is not None:
        watcher.cancel()
    await asyncio.gather(runner.cleanup(), *retiring)
    if metrics_runner is not None:
        await metrics_runner.cleanup()
    logger.info("stopped")


def run_workers(argv: list[str], workers: int) -> int:
    """Start `workers` copies of this serve command sharing the port (SO_REUSEPORT); forward signals."""
    child_argv = [a for a in argv if not a.startswith("--workers")]
    if "--workers" in argv:
        index = argv.index("--workers")
        child_argv = argv[:index] + argv[index + 2:]
    children = [subprocess.Popen([sys.executable, "-m", "gateway", *child_argv],
                                 env={**os.environ, WORKER_INDEX_ENV: str(index)}) for index in range(workers)]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    codes = [child.wait() for child in children]
    return max(codes, default=0)
