"""Before `serve` or `demo` starts anything: command-line values checked like the YAML ones, every socket bound, and
warnings about a `public_url` that clients would not reach (gateway.config.warnings, imported here for callers)."""

from __future__ import annotations

import socket
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from gateway.config import Listen
from gateway.config.warnings import WILDCARDS, public_url_warnings  # noqa: F401 (callers import them here)
from gateway.ports import BindError, bind_listeners

MAX_WORKERS = 128
_WORKERS = TypeAdapter(Annotated[int, Field(ge=1, le=MAX_WORKERS)])
_PORT = TypeAdapter(Annotated[int, Field(ge=1, le=65535)])


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
