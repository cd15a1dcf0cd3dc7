"""Running the gateway: listen, reload on SIGHUP, drain on SIGTERM, optionally several worker processes.

The listening sockets are bound once, before anything starts (`gateway.ports.bind_listeners`): a busy port or an
unbindable host fails at once with one line, and no other process can join the port (no SO_REUSEPORT). Reloads
and `--workers` share those sockets among our own processes: a reload (SIGHUP, or a changed file with
--watch-config) starts a new application accepting on the same sockets and then retires the old one, so new
connections go to the new configuration at once while requests and SSE streams already open finish on the old
one (up to `listen.shutdown_grace`); workers inherit the sockets from the parent. An invalid configuration is
refused and the running one kept. `/metrics` has a listener of its own (`listen.metrics_port`), which always shows
the current application's metrics; so has the admin API (`admin.listen`, gateway.admin: worker 0 alone serves it
under --workers), which works on the current application's settings and store. Every connection gets the deadlines
and the per-IP cap of `gateway.web.connections`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web

from gateway.app import create_app
from gateway.app_state import METRICS_KEY, SETTINGS_KEY, STORE_KEY
from gateway.config import ConfigError, Settings, load_settings
from gateway.fd_limit import raise_descriptor_limit
from gateway.store.errors import StoreUnavailableError
from gateway.web.connections import ConnectionGuard, GatewayRunner
from gateway.web.health import metrics_response
from gateway.web.mcp import dispatcher
from gateway.web.middleware import AccessLogger

logger = logging.getLogger("gateway")
WORKER_INDEX_ENV = "MCP_GATEWAY_WORKER_INDEX"  # set by run_workers: 0..N-1
LISTEN_FDS_ENV = "MCP_GATEWAY_LISTEN_FDS"  # set by run_workers: "3,4" (public), "3,4;5" (public; metrics), "3,4;5;6"
# (public; metrics; admin: worker 0 only)
WATCH_INTERVAL = 1.0  # seconds between looks at the configuration file (--watch-config)
WORKER_POLL = 0.2  # seconds between looks at the workers (one that dies stops the others)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (a dependency on Linux and macOS): the same asyncio API with the
    loop and socket transports in C, where the proxy's per-request reads and writes spend much of their time."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def guard_for(settings: Settings) -> ConnectionGuard:
    return ConnectionGuard(settings.listen.max_connections_per_ip, settings.trusted_proxies)


async def _runner(
    app: web.Application,
    settings: Settings,
    guard: ConnectionGuard,
    sockets: Sequence[socket.socket],
    ssl_context: ssl.SSLContext | None = None,
    **options: object,
) -> GatewayRunner:
    """Start `app` accepting on (copies of) `sockets` (HTTPS with `ssl_context`); on failure everything started is
    cleaned up again."""
    listen = settings.listen
    runner = GatewayRunner(
        app,
        guard=guard,
        header_timeout=listen.header_timeout,
        keepalive_timeout=listen.keepalive_timeout,
        shutdown_timeout=listen.shutdown_grace,
        **options,
    )
    try:
        await runner.setup()
        for sock in sockets:  # a copy each: a retired runner closes its own, the listening socket stays open
            await web.SockSite(runner, sock.dup(), ssl_context=ssl_context).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def _start(settings: Settings, sockets: Sequence[socket.socket], guard: ConnectionGuard) -> GatewayRunner:
    return await _runner(
        create_app(settings),
        settings,
        guard,
        sockets,
        dispatch=dispatcher,  # MCP requests before the application's router (gateway.web.mcp)
        access_log_class=AccessLogger,
        handler_cancellation=True,
    )


async def _start_metrics(
    settings: Settings, sockets: Sequence[socket.socket], guard: ConnectionGuard, current: list[GatewayRunner]
) -> GatewayRunner | None:
    """The /metrics listener on `sockets`, serving `current[0]`'s registry with its metrics token: both are the
    current application's, so a reload that changes or removes `listen.metrics_token` applies here at once."""
    if not sockets:
        return None

    async def handle(request: web.Request) -> web.Response:
        app = current[0].app  # never `settings`: that is the configuration this listener started with
        return metrics_response(request, app[METRICS_KEY].registry, app[SETTINGS_KEY].listen.metrics_token)

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = await _runner(app, settings, guard, sockets, access_log=None)
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        logger.info("metrics on http://%s:%s/metrics", f"[{host}]" if ":" in host else host, port)
    return runner


async def _start_admin(
    settings: Settings, sockets: Sequence[socket.socket], guard: ConnectionGuard, current: list[GatewayRunner]
) -> GatewayRunner | None:
    """The admin API's listener (gateway.admin) on `sockets`, working on `current[0]`'s settings and store, as the
    metrics listener does: a reload's new store and admin token apply at once; its TLS is the one it started with."""
    if not sockets:
        return None
    from gateway.admin.listener import admin_ssl_context, build_admin_app, following

    context = admin_ssl_context(settings.admin)
    app = build_admin_app(following(lambda: current[0].app))
    runner = await _runner(app, settings, guard, sockets, context, access_log=None)
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        scheme = "https" if context is not None else "http"
        logger.info("admin API on %s://%s:%s/api/", scheme, f"[{host}]" if ":" in host else host, port)
    return runner


async def _start_extras(
    settings: Settings,
    metrics_sockets: Sequence[socket.socket],
    admin_sockets: Sequence[socket.socket],
    guard: ConnectionGuard,
    current: list[GatewayRunner],
) -> list[GatewayRunner]:
    """The metrics and admin listeners (those with sockets), all started or none."""
    started: list[GatewayRunner] = []
    try:
        for start, sockets in ((_start_metrics, metrics_sockets), (_start_admin, admin_sockets)):
            extra = await start(settings, sockets, guard, current)
            if extra is not None:
                started.append(extra)
    except BaseException:
        for extra in started:
            await extra.cleanup()
        raise
    return started


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


async def serve(
    config: Path | None,
    settings: Settings,
    sockets: Sequence[socket.socket],
    metrics_sockets: Sequence[socket.socket] = (),
    watch_config: bool = False,
    admin_sockets: Sequence[socket.socket] = (),
) -> None:
    """Serve on the bound `sockets` (and the metrics and admin listeners on theirs) until SIGTERM/SIGINT (then drain
    and return); SIGHUP (or, with `watch_config`, an edit) reloads `config` (None: no reloads). Each process raises
    its own descriptor limit first (gateway.fd_limit: every open SSE stream holds two sockets)."""
    before, after = raise_descriptor_limit()
    if after != before:
        logger.info("descriptor limit raised from %d to %d", before, after)
    loop = asyncio.get_running_loop()
    stop, reload = asyncio.Event(), asyncio.Event()
    signals = {signal.SIGTERM: stop.set, signal.SIGINT: stop.set, signal.SIGHUP: reload.set}
    for signum, action in signals.items():
        loop.add_signal_handler(signum, action)
    try:
        listeners = (sockets, metrics_sockets, admin_sockets)
        await _serve_until_stopped(config, settings, listeners, watch_config, stop, reload)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def settle_heap() -> None:
    """Move what is alive now (modules, the application, the configuration: some 80,000 objects) out of the
    cyclic collector's view (`gc.freeze`): a full collection otherwise walks them all, a pause of tens of ms in the
    middle of requests, for objects that live as long as the process. Called once serving starts and again when a
    reload has retired the previous configuration (unfrozen first, so that its cycles can be collected)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


async def _serve_until_stopped(
    config: Path | None,
    settings: Settings,
    listeners: tuple[Sequence[socket.socket], Sequence[socket.socket], Sequence[socket.socket]],
    watch_config: bool,
    stop: asyncio.Event,
    reload: asyncio.Event,
) -> None:
    sockets, metrics_sockets, admin_sockets = listeners
    guard = guard_for(settings)
    runner = await _start(settings, sockets, guard)
    current = [runner]
    try:
        extras = await _start_extras(settings, metrics_sockets, admin_sockets, guard, current)
    except BaseException:
        await runner.cleanup()
        raise
    watcher = asyncio.ensure_future(_watch(config, reload)) if watch_config and config is not None else None
    logger.info(
        "%s (pid %s); %sSIGTERM drains for %ss",
        "ready" if await _store_reachable(runner) else "accepting connections, waiting for the store",
        os.getpid(),
        "" if config is None else f"SIGHUP{' or an edit' if watcher else ''} reloads {config}, ",
        settings.listen.shutdown_grace,
    )
    settle_heap()
    retiring: set[asyncio.Task[None]] = set()
    while True:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(reload.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if stop.is_set():
            break
        reload.clear()
        if config is None:
            continue
        try:
            fresh = await asyncio.to_thread(load_settings, config)  # (off the loop: files it reads may be slow)
        except ConfigError as exc:
            logger.error("reload refused, keeping the running configuration: %s", "; ".join(exc.problems))
            continue
        try:
            new_runner = await _start(fresh, sockets, guard)
        except Exception as exc:  # noqa: BLE001 - whatever stops the new configuration, the old one keeps serving
            logger.error("reload refused, the new configuration did not start: %s", exc)
            continue
        _warn_restart_only(settings, fresh)
        guard.configure(fresh.listen.max_connections_per_ip, fresh.trusted_proxies)
        old, runner = runner, new_runner
        current[0] = runner
        task = asyncio.ensure_future(old.cleanup())  # stops accepting, lets open streams finish
        retiring.add(task)
        task.add_done_callback(retiring.discard)
        task.add_done_callback(lambda _: settle_heap())  # (the old configuration's objects, freed or collected)
        logger.info(
            "reloaded %s: %d route(s); the previous configuration drains its open requests", config, len(fresh.routes)
        )
    logger.info("draining: no new connections; open requests get up to %ss", settings.listen.shutdown_grace)
    for sock in (*sockets, *metrics_sockets, *admin_sockets):  # with the runners' copies closed next: refused
        sock.close()
    if watcher is not None:
        watcher.cancel()
    await asyncio.gather(runner.cleanup(), *retiring)
    for extra in extras:
        await extra.cleanup()
    logger.info("stopped")


async def _store_reachable(runner: GatewayRunner) -> bool:
    try:
        await runner.app[STORE_KEY].ping()
    except StoreUnavailableError:
        return False
    return True


def _warn_restart_only(running: Settings, fresh: Settings) -> None:
    """Keys bound to the sockets bound at start: a reload cannot move them."""
    before, after = running.listen, fresh.listen
    for key in ("host", "port", "metrics_host", "metrics_port"):
        if getattr(before, key) != getattr(after, key):
            logger.warning("listen.%s changed: takes effect on restart", key)
    if (running.admin.listen, running.admin.tls) != (fresh.admin.listen, fresh.admin.tls):
        logger.warning("admin.listen or admin.tls changed: takes effect on restart")


def inherited_sockets() -> tuple[list[socket.socket], list[socket.socket]] | None:
    """The (public, metrics) sockets a `run_workers` parent passed to this worker, if it is one."""
    value = os.environ.get(LISTEN_FDS_ENV)
    if not value:
        return None
    public, _, rest = value.partition(";")
    return _adopt(public), _adopt(rest.partition(";")[0])


def inherited_admin_sockets() -> list[socket.socket]:
    """The admin listener's sockets a `run_workers` parent passed to this worker (worker 0 only; else none)."""
    parts = os.environ.get(LISTEN_FDS_ENV, "").split(";")
    return _adopt(parts[2]) if len(parts) > 2 else []


def _adopt(fds: str) -> list[socket.socket]:
    return [socket.socket(fileno=int(fd)) for fd in fds.split(",") if fd]


def run_workers(
    argv: list[str],
    workers: int,
    sockets: Sequence[socket.socket],
    metrics_sockets: Sequence[Sequence[socket.socket]],
    admin_sockets: Sequence[socket.socket] = (),
) -> int:
    """Start `workers` copies of this serve command accepting on the bound `sockets` (inherited descriptors;
    worker i also gets `metrics_sockets[i]`, worker 0 the `admin_sockets`: one admin listener; this process closes
    its own copies); forward signals; if one worker exits, stop the others."""
    child_argv = [a for a in argv if not a.startswith("--workers")]
    if "--workers" in argv:
        index = argv.index("--workers")
        child_argv = argv[:index] + argv[index + 2 :]
    stopping = False
    children: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = stopping or signum in (signal.SIGTERM, signal.SIGINT)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    public = ",".join(str(sock.fileno()) for sock in sockets)
    for index in range(workers):
        own = metrics_sockets[index] if index < len(metrics_sockets) else ()
        admin = admin_sockets if index == 0 else ()
        fds = public + ";" + ",".join(str(sock.fileno()) for sock in own)
        fds += ";" + ",".join(str(sock.fileno()) for sock in admin)
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "gateway", *child_argv],
                pass_fds=[s.fileno() for s in (*sockets, *own, *admin)],
                env={**os.environ, WORKER_INDEX_ENV: str(index), LISTEN_FDS_ENV: fds},
            )
        )
        if stopping:
            break
    for sock in (*sockets, *(s for own in metrics_sockets for s in own), *admin_sockets):
        sock.close()  # the workers hold them now: when the last one drains, the port refuses connections
    while any(child.poll() is None for child in children):
        failed = [child for child in children if child.returncode not in (None, 0)]
        if failed and not stopping:
            logger.error(
                "worker (pid %s) exited with status %s: stopping the others", failed[0].pid, failed[0].returncode
            )
            forward(signal.SIGTERM, None)
        time.sleep(WORKER_POLL)
    return max((abs(child.returncode) for child in children if child.returncode), default=0)
