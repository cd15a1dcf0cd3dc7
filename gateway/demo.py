"""`mcp-auth-gateway demo`: a bundled upstream MCP server, the gateway in front of it, a demo user and token."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from pathlib import Path

from gateway.accounts import add_user, issue_service_token, set_password
from gateway.config import Listen, Route, Settings, StoreSettings
from gateway.ports import bind_listeners, wait_for_port
from gateway.routing import RouteTable
from gateway.store.open import open_store

DEMO_USER = "demo"
INSPECTOR_ORIGINS = ["http://localhost:6274", "http://127.0.0.1:6274"]  # MCP Inspector runs in the browser


def run_demo(listen: Listen, upstream_port: int, data_dir: Path) -> int:
    """Bind the ports, start everything, print how to connect, serve until Ctrl-C (or SIGTERM).

    Raises:
        BindError: a port is busy (nothing was started).
    """
    try:
        import mcp  # noqa: F401  (the demo upstream is built on the SDK)
    except ImportError:
        raise SystemExit(
            "mcp-auth-gateway: error: the demo needs the MCP SDK: pip install 'mcp-auth-gateway[demo]'"
        ) from None
    from gateway.server import event_loop_factory, serve

    host, port = listen.host, listen.port
    settings = Settings(
        public_url=f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}",
        listen=listen,
        store=StoreSettings(data_dir=data_dir),
        allowed_origins=INSPECTOR_ORIGINS,
        routes=[
            Route(
                name="demo",
                path="/demo/mcp",
                upstream=f"http://127.0.0.1:{upstream_port}/mcp",
                scopes=["demo:read", "demo:write"],
                resource_name="Demo MCP server",
            )
        ],
    )
    sockets = bind_listeners(host, port)  # before anything starts: a busy port fails with one line
    try:
        for sock in bind_listeners("127.0.0.1", upstream_port):  # the upstream binds it itself, a moment later
            sock.close()
        upstream = _start_upstream(upstream_port)
        try:
            print(f"[2/4] embedded Redis under {data_dir.resolve()}; creating user {DEMO_USER!r} …", flush=True)
            password, token = asyncio.run(_prepare_store(settings))
            _print_ready(settings, password, token)
            print(f"[4/4] gateway listening on http://{host}:{port} (Ctrl-C stops both)", flush=True)
            with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
                runner.run(serve(None, settings, sockets))
        finally:
            upstream.terminate()
            upstream.wait(timeout=10)
    finally:
        for sock in sockets:
            sock.close()
    return 0


def _start_upstream(port: int) -> subprocess.Popen[bytes]:
    print(f"[1/4] starting the demo upstream MCP server on 127.0.0.1:{port} …", flush=True)
    upstream = subprocess.Popen(
        [sys.executable, "-m", "gateway.demo_upstream", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, upstream, deadline=20)
    except (RuntimeError, TimeoutError) as exc:
        upstream.kill()
        upstream.wait()
        raise SystemExit(f"mcp-auth-gateway: error: the demo upstream did not start ({exc})") from None
    return upstream


def _print_ready(settings: Settings, password: str, token: str) -> None:
    info = RouteTable(settings).by_name("demo")
    print("[3/4] ready:", flush=True)
    print(f"      MCP URL:   {info.resource}", flush=True)
    print(f"      metadata:  {info.metadata_url}", flush=True)
    print(f"      login:     {DEMO_USER} / {password}   (asked by the gateway when a client connects)", flush=True)
    print(f"      token (8h, for scripts): {token}", flush=True)
    print(
        f"      connect:   npx @modelcontextprotocol/inspector, transport Streamable HTTP, URL {info.resource}",
        flush=True,
    )


async def _prepare_store(settings: Settings) -> tuple[str, str]:
    password = secrets.token_urlsafe(12)
    async with open_store(settings.store) as store:
        now = time.time()
        if await store.load_user(DEMO_USER) is None:
            await add_user(store, DEMO_USER, password, email="demo@example.com", groups=("demo",), now=now)
        else:
            await set_password(store, DEMO_USER, password)  # a fresh password each run: it is printed
        issued = await issue_service_token(
            store, DEMO_USER, RouteTable(settings).by_name("demo"), (), 8 * 3600, now=now
        )
    return password, issued.token
