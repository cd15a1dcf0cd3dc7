"""The configured routes with their live status: each HTTP upstream probed (HEAD, 2 s), each stdio route's process
host reached on its socket (only in the running gateway: the socket is its own), a virtual server reachable when
all its members are; and how many MCP requests are in flight in the process answering."""

from __future__ import annotations

import asyncio
from typing import Literal

import aiohttp

from gateway.admin.target import AdminTarget
from gateway.admin.views import MAX_LISTED, RouteList, RouteStatus
from gateway.routing import RouteInfo, RouteTable

PROBE_TIMEOUT = 2.0  # seconds a probe may take; a slower upstream counts as unreachable
Probe = tuple[bool | None, int | None, str | None]  # reachable, HTTP status, why not


async def _probe_http(http: aiohttp.ClientSession, url: str) -> Probe:
    """Any HTTP answer means reachable (an MCP endpoint may refuse HEAD: 405 is still an answer)."""
    try:
        async with http.head(url, allow_redirects=False) as response:
            return True, response.status, None
    except TimeoutError:
        return False, None, f"no answer within {PROBE_TIMEOUT:g} s"
    except (aiohttp.ClientError, OSError) as exc:
        return False, None, type(exc).__name__


async def _probe_socket(path: str) -> Probe:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            _, writer = await asyncio.open_unix_connection(path)
    except (TimeoutError, OSError) as exc:
        return False, None, f"process host not listening ({type(exc).__name__})"
    writer.close()
    await writer.wait_closed()
    return True, None, None


def _kind(info: RouteInfo) -> Literal["http", "sse", "stdio", "virtual"]:
    route = info.route
    if route.aggregate is not None:
        return "virtual"
    if route.command is not None:
        return "stdio"
    return "sse" if route.upstream_transport == "sse" else "http"


async def _probe(info: RouteInfo, http: aiohttp.ClientSession, running: bool) -> Probe:
    kind = _kind(info)
    if kind == "stdio":
        if not running:
            return None, None, "not probed: the stdio host lives in the running gateway"
        from gateway.stdio.sockets import socket_path

        return await _probe_socket(socket_path(info.route.name))
    return await _probe_http(http, info.route.upstream)


def _status(info: RouteInfo, probe: Probe) -> RouteStatus:
    route, kind = info.route, _kind(info)
    command = " ".join(route.command.argv)[:200] if route.command is not None else None
    members = list(route.aggregate.members) if route.aggregate is not None else []
    upstream = route.upstream if kind in ("http", "sse") else None
    return RouteStatus(route.name, route.path, info.resource, kind, upstream, command, members, *probe)


async def route_status(target: AdminTarget) -> RouteList:
    """Every route, probed at once (the answer takes at most PROBE_TIMEOUT)."""
    table = RouteTable(target.settings)
    infos = table.routes[:MAX_LISTED]
    running = target.public_app is not None
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
    plain = [info for info in infos if _kind(info) != "virtual"]
    async with aiohttp.ClientSession(timeout=timeout) as http:
        found = await asyncio.gather(*(_probe(info, http, running) for info in plain))
    probes = {info.route.name: probe for info, probe in zip(plain, found, strict=True)}
    statuses = []
    for info in infos:
        if info.route.aggregate is not None:
            found = [probes.get(m, (None, None, None))[0] for m in info.route.aggregate.members]
            reachable = None if None in found else all(found)
            down = [m for m, ok in zip(info.route.aggregate.members, found, strict=True) if ok is False]
            statuses.append(_status(info, (reachable, None, f"unreachable: {', '.join(down)}" if down else None)))
        else:
            statuses.append(_status(info, probes[info.route.name]))
    statuses = [_live(target, status) for status in statuses]
    return RouteList(statuses, _open_streams(target), len(table.routes) > MAX_LISTED)


def _live(target: AdminTarget, status: RouteStatus) -> RouteStatus:
    """The running gateway's own counts for the route: its open SSE streams (the `mcpgw_sse_streams_open` gauge)
    and, for a bridged route, its processes or connections running."""
    from dataclasses import replace

    from gateway.app_state import METRICS_KEY, STDIO_HOSTS_KEY

    app = target.public_app
    if app is None or METRICS_KEY not in app:
        return status
    gauge = app[METRICS_KEY].sse_streams.children.get((status.name,))
    streams = int(gauge.value) if gauge is not None else 0
    hosts = app.get(STDIO_HOSTS_KEY)
    running = [h.servers.running() for h in hosts.hosts if h.route.name == status.name] if hosts is not None else []
    return replace(status, streams=streams, processes=running[0] if running else None)


def _open_streams(target: AdminTarget) -> int | None:
    from gateway.app_state import STREAMS_KEY

    app = target.public_app
    return len(app[STREAMS_KEY]) if app is not None and STREAMS_KEY in app else None
