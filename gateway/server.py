"""Running the gateway: listen, reload on SIGHUP, drain on SIGTERM, optionally several worker processes.

Reload starts a new application on the same port (SO_REUSEPORT) and then retires the old one: new
connections go to the new configuration at once, while requests and SSE streams already open finish on the
old one (up to `listen.shutdown_grace`). An invalid configuration is refused and the running one kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from gateway.app import create_app
from gateway.config import ConfigError, Settings, load_settings
from gateway.web.middleware import AccessLogger

logger = logging.getLogger("gateway")


async def _start(settings: Settings, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(create_app(settings), access_log_class=AccessLogger, handler_cancellation=True,
                           shutdown_timeout=settings.listen.shutdown_grace)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=True, shutdown_timeout=settings.listen.shutdown_grace)
    await site.start()
    return runner


async def serve(config: Path, settings: Settings, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT (then drain and return); SIGHUP reloads `config`."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reload = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    runner = await _start(settings, host, port)
    logger.info("ready (pid %s); SIGHUP reloads %s, SIGTERM drains for %ss", os.getpid(), config,
                settings.listen.shutdown_grace)
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
        task = asyncio.ensure_future(old.cleanup())  # stops accepting, lets open streams finish
        retiring.add(task)
        task.add_done_callback(retiring.discard)
        logger.info("reloaded %s: %d route(s); the previous configuration drains its open requests", config,
                    len(fresh.routes))
    logger.info("draining: no new connections; open requests get up to %ss", settings.listen.shutdown_grace)
    await asyncio.gather(runner.cleanup(), *retiring)
    logger.info("stopped")


def run_workers(argv: list[str], workers: int) -> int:
    """Start `workers` copies of this serve command sharing the port (SO_REUSEPORT); forward signals."""
    child_argv = [a for a in argv if not a.startswith("--workers")]
    if "--workers" in argv:
        index = argv.index("--workers")
        child_argv = argv[:index] + argv[index + 2:]
    children = [subprocess.Popen([sys.executable, "-m", "gateway", *child_argv]) for _ in range(workers)]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    codes = [child.wait() for child in children]
    return max(codes, default=0)
