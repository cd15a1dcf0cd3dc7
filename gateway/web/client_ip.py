"""The client's address: the socket peer, or, behind configured trusted proxies, the first untrusted address
in X-Forwarded-For read from the right (what nginx's real_ip_recursive does)."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from gateway.keys import SETTINGS_KEY

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(request: web.Request) -> str:
    peer = request.remote or ""
    trusted = request.app[SETTINGS_KEY].trusted_proxies
    if not trusted or not _within(peer, trusted):
        return peer
    hops = [h.strip() for v in request.headers.getall("X-Forwarded-For", []) for h in v.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _within(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
