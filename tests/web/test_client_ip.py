"""The client's address, `gateway.web.client_ip` (our choice: nginx `real_ip_recursive` semantics for
X-Forwarded-For behind `trusted_proxies`; MDN X-Forwarded-For "selecting an IP address")."""

from __future__ import annotations

import ipaddress

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from gateway.app_state import SETTINGS_KEY
from gateway.config import Settings
from gateway.web.client_ip import client_ip


def settings(trusted: list[str]) -> Settings:
    return Settings(
        public_url="http://127.0.0.1:8080",
        trusted_proxies=trusted,
        routes=[{"name": "alpha", "path": "/alpha/mcp", "upstream": "http://127.0.0.1:9/mcp"}],
    )


def request(peer: str, *xff: str, trusted: list[str] | None = None) -> web.Request:
    app = web.Application()
    app[SETTINGS_KEY] = settings(trusted or [])
    headers = CIMultiDict[str]()
    for value in xff:
        headers.add("X-Forwarded-For", value)
    return make_mocked_request("POST", "/alpha/mcp", headers=headers, app=app).clone(remote=peer)


LOOPBACK = ["127.0.0.0/8"]


def test_without_trusted_proxies_the_socket_peer_is_the_client_whatever_x_forwarded_for_says() -> None:
    """trusted_proxies empty (the default): X-Forwarded-For is anyone's to forge, so it is ignored."""
    assert client_ip(request("198.51.100.7", "203.0.113.1")) == "198.51.100.7"


def test_an_untrusted_peer_is_the_client_even_when_proxies_are_configured() -> None:
    """Only a configured proxy's X-Forwarded-For is believed."""
    assert client_ip(request("198.51.100.7", "203.0.113.1", trusted=LOOPBACK)) == "198.51.100.7"


def test_a_trusted_peer_without_x_forwarded_for_is_the_client() -> None:
    """A request from the proxy itself (health check) or a proxy that does not set the header."""
    assert client_ip(request("127.0.0.1", trusted=LOOPBACK)) == "127.0.0.1"


@pytest.mark.parametrize(
    ("xff", "expected"),
    [
        pytest.param(("203.0.113.1",), "203.0.113.1", id="one-hop"),
        pytest.param(("6.6.6.6, 203.0.113.1",), "203.0.113.1", id="forged-left-hop-ignored"),
        pytest.param(("6.6.6.6, 203.0.113.1, 127.0.0.5",), "203.0.113.1", id="skips-trusted-hops"),
        pytest.param(("6.6.6.6,203.0.113.1,127.0.0.5, 127.0.0.9",), "203.0.113.1", id="no-spaces-and-spaces"),
        pytest.param(("6.6.6.6", "203.0.113.1, 127.0.0.5"), "203.0.113.1", id="several-header-lines"),
        pytest.param(("203.0.113.1, , 127.0.0.5,",), "203.0.113.1", id="empty-hops-ignored"),
    ],
)
def test_a_trusted_peer_yields_the_rightmost_untrusted_x_forwarded_for_hop(xff: tuple[str, ...], expected: str) -> None:
    """nginx real_ip_recursive: read right to left, skip trusted proxies, stop at the first address we do not
    trust; anything to its left may be forged by the client."""
    assert client_ip(request("127.0.0.1", *xff, trusted=LOOPBACK)) == expected


def test_when_every_hop_is_trusted_the_leftmost_is_the_client() -> None:
    """nginx real_ip_recursive: a chain made only of trusted addresses ends at its origin, the leftmost."""
    assert client_ip(request("127.0.0.1", "127.0.0.3, 127.0.0.2", trusted=LOOPBACK)) == "127.0.0.3"


def test_several_trusted_networks_are_all_honoured() -> None:
    """trusted_proxies is a list of CIDRs: a hop in any of them is skipped."""
    trusted = ["127.0.0.0/8", "10.0.0.0/8"]
    assert client_ip(request("10.1.2.3", "203.0.113.1, 10.0.0.8, 127.0.0.1", trusted=trusted)) == "203.0.113.1"


@pytest.mark.parametrize(
    ("xff", "expected"),
    [
        pytest.param("garbage", "127.0.0.1", id="only-hop"),
        pytest.param("unknown", "127.0.0.1", id="unknown-keyword"),
        pytest.param("203.0.113.1, garbage", "127.0.0.1", id="rightmost-hop"),
        pytest.param("garbage, 127.0.0.2", "127.0.0.2", id="behind-a-trusted-hop"),
        pytest.param("<script>, 127.0.0.2", "127.0.0.2", id="markup"),
    ],
)
def test_a_hop_that_is_not_an_address_ends_the_walk_at_the_last_address_read(xff: str, expected: str) -> None:
    """nginx real_ip_recursive (ngx_http_get_forwarded_addr_internal): a hop that does not parse stops the walk and
    the last valid address stands. Pinned gap: the garbage itself is returned and then used as the rate-limit
    bucket, the audit `client_ip` and the X-Forwarded-For sent upstream."""
    address = client_ip(request("127.0.0.1", xff, trusted=LOOPBACK))
    assert address == expected
    ipaddress.ip_address(address)


def test_garbage_left_of_an_untrusted_hop_is_never_reached() -> None:
    """The walk stops at the first untrusted address, so forged junk further left does not matter."""
    assert client_ip(request("127.0.0.1", "garbage, 203.0.113.1", trusted=LOOPBACK)) == "203.0.113.1"


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        pytest.param("::1", "2001:db8::7", ["::1/128"], "2001:db8::7", id="v6-peer-v6-hop"),
        pytest.param("fd00::1", "2001:db8::7, fd00::2", ["fd00::/8"], "2001:db8::7", id="v6-trusted-hops-skipped"),
        pytest.param("::1", "203.0.113.1", ["::1/128"], "203.0.113.1", id="v6-proxy-v4-client"),
        pytest.param("127.0.0.1", "2001:db8::7", LOOPBACK, "2001:db8::7", id="v4-proxy-v6-client"),
        pytest.param("2001:db8::9", "203.0.113.1", ["::1/128"], "2001:db8::9", id="untrusted-v6-peer"),
        pytest.param(
            "::1", "2001:db8::7, 127.0.0.2", ["::1/128", "127.0.0.0/8"], "2001:db8::7", id="mixed-families-trusted"
        ),
        pytest.param("::1", "fd00::3, fd00::2", ["::1/128", "fd00::/8"], "fd00::3", id="v6-all-trusted-leftmost"),
    ],
)
def test_ipv6_peers_hops_and_networks_work_like_ipv4(peer: str, xff: str, trusted: list[str], expected: str) -> None:
    """trusted_proxies holds IPv4 and IPv6 networks; an address only matches networks of its own family."""
    assert client_ip(request(peer, xff, trusted=trusted)) == expected
