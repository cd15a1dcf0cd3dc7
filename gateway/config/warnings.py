"""What a valid configuration may still get wrong: said, not refused (`check-config` prints each on standard error,
`serve` logs each at start). One function per concern; `config_warnings` gives them all."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from gateway.config.admin import admin_warnings
from gateway.config.listen import Listen
from gateway.config.settings import Settings

WILDCARDS = ("0.0.0.0", "::")


def config_warnings(settings: Settings, listen: Listen | None = None) -> list[str]:
    """Every warning about `settings`, served on `listen` (default: its own `listen`, before command-line options)."""
    return [
        *plain_http_warnings(settings),
        *public_url_warnings(settings, listen or settings.listen),
        *admin_warnings(settings.admin),
    ]


def plain_http_warnings(settings: Settings) -> list[str]:
    """A plain-http `public_url` on a host other than this machine: passwords, codes and tokens cross the network
    unencrypted (OAuth 2.1 §1.5 requires TLS; loopback is the one exception, for development)."""
    public = urlsplit(settings.public_url)
    if public.scheme != "http" or public.hostname is None or is_loopback(public.hostname):
        return []
    return [
        f"public_url {settings.public_url} is plain http on a host that is not this machine: passwords and tokens "
        "cross the network unencrypted; use https (a TLS proxy in front, public_url https://…)"
    ]


def public_url_warnings(settings: Settings, listen: Listen) -> list[str]:
    """Where `public_url` and the listener disagree so that clients could not reach the gateway directly.

    Only a warning: a reverse proxy in front may map one to the other. A public_url on the default port (80/443)
    or a configured `trusted_proxies` says there is one, so only an explicit other port, or an address the
    listener does not bind, is worth a line.
    """
    public = urlsplit(settings.public_url)
    warnings = []
    if public.port is not None and public.port != listen.port and not settings.trusted_proxies:
        warnings.append(
            f"public_url {settings.public_url} names port {public.port} but the gateway listens on "
            f"{listen.port}: clients will not reach it unless a proxy forwards {public.port} to "
            f"{listen.port}"
        )
    if public.hostname and _unreachable(public.hostname, listen.host):
        warnings.append(
            f"public_url {settings.public_url} names {public.hostname} but the gateway listens on "
            f"{listen.host}: clients will not reach it unless a proxy forwards it"
        )
    return warnings


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1."""
    address = _address(host)
    return address is not None and address.is_loopback


def _unreachable(public_host: str, listen_host: str) -> bool:
    """True when both are addresses (or localhost) and a connection to the first cannot reach the second."""
    if listen_host in WILDCARDS:
        return False
    public, bound = _address(public_host), _address(listen_host)
    if public is None or bound is None:
        return False  # a name: only DNS knows
    return public != bound and not (public.is_loopback and bound.is_loopback)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if host.lower() in ("localhost", "localhost."):
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
