"""The client's address: the socket peer, or, behind configured trusted proxies, the first untrusted address
in X-Forwarded-For read from the right (what nginx's real_ip_recursive does)."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from gateway.app_state import SETTINGS_KEY

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(request: web.Request) -> str:
    return client_ip_behind(request, request.app[SETTINGS_KEY].trusted_proxies)


def client_ip_behind(request: web.BaseRequest, trusted: list[Network]) -> str:
    """`client_ip` with the trusted proxies given (the MCP route holds them: its requests carry no application)."""
    peer = request.remote or ""
    if not trusted or not _within(peer, trusted):
        return peer
    hops = [h.strip() for v in request.headers.getall("X-Forwarded-For", []) for h in v.split(",") if h.strip()]
    last = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return last  # junk ("unknown", a hostname): stop at the last address read, as nginx does
        if not _within(address, trusted):
            return address
        last = address
    return last


def _address(hop: str) -> str | None:
    """The IP in an X-Forwarded-For hop, without a port some proxies append (1.2.3.4:80, [2001:db8::1]:80)."""
    candidate = hop
    if candidate.startswith("[") and "]" in candidate:
        candidate = candidate[1 : candidate.index("]")]
    elif candidate.count(":") == 1:
        candidate = candidate.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def _within(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
