"""What `serve` checks before it starts anything (gateway/startup.py; issue 10 #21-#23, #25)."""

from __future__ import annotations

import socket

import pytest

from gateway.config import Listen, Settings
from gateway.ports import BindError, bind_listeners
from gateway.startup import public_url_warnings

ROUTES = [{"name": "a", "path": "/a/mcp", "upstream": "http://127.0.0.1:9/mcp"}]


@pytest.mark.parametrize(
    ("public_url", "host", "port", "proxies", "warned"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1", 8080, [], None),
        ("http://127.0.0.1:8080", "127.0.0.1", 9000, [], "names port 8080 but the gateway listens on 9000"),
        ("http://localhost:8080", "0.0.0.0", 8080, [], None),
        ("http://127.0.0.1:8080", "10.1.2.3", 8080, [], "names 127.0.0.1 but the gateway listens on 10.1.2.3"),
        ("https://gw.example.com", "0.0.0.0", 8080, [], None),  # default port: a proxy terminates TLS in front
        ("https://gw.example.com:8443", "0.0.0.0", 8080, ["10.0.0.0/8"], None),  # a proxy is configured
        ("https://gw.example.com:8443", "0.0.0.0", 8080, [], "names port 8443"),
        ("http://localhost:8080", "::1", 8080, [], None),
    ],
)
def test_public_url_and_listener_disagreements_are_warned(public_url, host, port, proxies, warned):
    """Issue 10 #25: a warning, not a refusal, when clients following public_url would miss the listener."""
    settings = Settings(public_url=public_url, routes=ROUTES, trusted_proxies=proxies)
    warnings = public_url_warnings(settings, Listen(host=host, port=port))
    if warned is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warned in warnings[0]


def test_a_port_bound_by_another_process_with_so_reuseport_is_refused():
    """Issue 10 #22: the old gateway bound with SO_REUSEPORT, so a second one could join; the sockets bound
    now never set it, and a listener that did (an older gateway) cannot be joined either."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(BindError, match=f"^cannot bind 127.0.0.1:{port}: address already in use$"):
            bind_listeners("127.0.0.1", port)
    mine = bind_listeners("127.0.0.1", 0)
    try:
        assert all(not sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for sock in mine)
    finally:
        for sock in mine:
            sock.close()
