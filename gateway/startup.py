"""Before `serve` or `demo` starts anything: command-line values checked like the YAML ones, every socket bound, and
warnings about a `public_url` that clients would not reach."""

from __future__ import annotations

import ipaddress
import socket
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, TypeAdapter, ValidationError

from gateway.config import Listen, Settings
from gateway.ports import BindError, bind_listeners

MAX_WORKERS = 128
_WORKERS = TypeAdapter(Annotated[int, Field(ge=1, le=MAX_WORKERS)])
_PORT = TypeAdapter(Annotated[int, Field(ge=1, le=65535)])
WILDCARDS = ("0.0.0.0", "::")


class OptionError(Exception):
    """A command-line value that the configuration would refuse: `--port: Input should be …`."""


def cli_listen(listen: Listen, **options: str | None) -> Listen:
    """`listen` with the given command-line values (`host`, `port`), validated by the same model as the YAML.

    Raises:
        OptionError: naming the option, with the YAML's message.
    """
    given = {key: value for key, value in options.items() if value is not None}
    try:
        return Listen.model_validate({**listen.model_dump(), **given})
    except ValidationError as exc:
        raise OptionError(_describe(exc, given)) from None


def cli_workers(value: str) -> int:
    """`--workers N`: 1..MAX_WORKERS.

    Raises:
        OptionError: with the configuration's message.
    """
    return _checked("--workers", _WORKERS, value)


def cli_port(option: str, value: str) -> int:
    """A port option other than `--port` (`demo --upstream-port`): 1..65535.

    Raises:
        OptionError: with the configuration's message.
    """
    return _checked(option, _PORT, value)


def _checked(option: str, adapter: TypeAdapter[int], value: str) -> int:
    try:
        return adapter.validate_python(value.strip())
    except ValidationError as exc:
        raise OptionError(f"{option}: {exc.errors()[0]['msg']}") from None


def _describe(exc: ValidationError, given: dict[str, Any]) -> str:
    problems = []
    for error in exc.errors():
        key = str(error["loc"][0]) if error["loc"] else next(iter(given), "listen")
        name = f"--{key.replace('_', '-')}" if key in given else f"listen.{key}"
        problems.append(f"{name}: {error['msg']}")
    return "; ".join(problems)


def bind_all(listen: Listen, workers: int) -> tuple[list[socket.socket], list[list[socket.socket]]]:
    """The public sockets, and each worker's metrics sockets (`metrics_port + i`), all bound or none.

    Raises:
        BindError: the first address that cannot be bound (busy, unknown host, not ours).
        OptionError: metrics ports beyond 65535.
    """
    if listen.metrics_port is not None and listen.metrics_port + workers - 1 > 65535:
        raise OptionError(
            f"--workers: {workers} workers need metrics ports up to {listen.metrics_port + workers - 1}"
            f" (listen.metrics_port + i), beyond 65535"
        )
    bound: list[socket.socket] = []
    try:
        public = bind_listeners(listen.host, listen.port)
        bound += public
        metrics: list[list[socket.socket]] = []
        if listen.metrics_port is not None:
            host = listen.metrics_host or listen.host
            for index in range(workers):
                metrics.append(bind_listeners(host, listen.metrics_port + index))
                bound += metrics[-1]
    except BindError:
        for sock in bound:
            sock.close()
        raise
    return public, metrics


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


def _unreachable(public_host: str, listen_host: str) -> bool:
    """True when both are addresses (or localhost) and a connection to the first cannot reach the second."""
    if listen_host in WILDCARDS:
        return False
    public, bound = _address(public_host), _address(listen_host)
    if public is None or bound is None:
        return False  # a name: only DNS knows
    return public != bound and not (public.is_loopback and bound.is_loopback)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if host.lower() == "localhost":
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
