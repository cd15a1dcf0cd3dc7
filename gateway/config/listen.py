"""`listen`: where the gateway binds, its connection deadlines and the metrics listener."""

from __future__ import annotations

import re
from ipaddress import ip_address

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.config.base import Model


class Listen(Model):
    host: str = Field(default="0.0.0.0", description="Interface to bind: an IP address or a host name.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port to bind.")
    shutdown_grace: float = Field(
        default=30.0,
        ge=0,
        description="On SIGTERM or reload: seconds in-flight "
        "requests and open streams may take to finish before they are cut.",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has to send a request's "
        "headers: from the connection's start, or on a kept-alive connection from the "
        "next request's first byte; else 408 and the connection is closed.",
    )
    body_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds without a byte while a request body is "
        "being read; else 408. Responses (SSE streams) are not subject to it.",
    )
    body_total_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a request body may take in all, "
        "however steadily it trickles in; else 408. Responses are not subject to it.",
    )
    keepalive_timeout: float = Field(
        default=75.0,
        gt=0,
        description="Seconds an idle kept-alive connection stays "
        "open waiting for its next request (behind a load balancer: longer than its "
        "idle timeout).",
    )
    max_connections_per_ip: int = Field(
        default=256,
        ge=0,
        description="Most connections open at once from one "
        "client address (0: no limit); peers in trusted_proxies are exempt.",
    )
    metrics_port: int | None = Field(
        default=9464,
        ge=1,
        le=65535,
        description="Serve /metrics on this port "
        "(not on the public one); with --workers N, worker i listens on metrics_port + "
        "i; null: no metrics listener.",
    )
    metrics_host: str | None = Field(
        default="127.0.0.1", description="Interface for metrics_port (loopback by default); null: listen.host."
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that /metrics requires; when set, /metrics is also served on the public port. "
        "A reload changes it on both listeners.",
    )

    @field_validator("host", "metrics_host")
    @classmethod
    def _bindable(cls, value: str | None) -> str | None:
        problem = host_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("needs at least 16 characters")
        return value

    @model_validator(mode="after")
    def _metrics_port_differs(self) -> Listen:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("metrics_port must differ from port")
        return self


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def host_problem(host: str) -> str | None:
    """Why `host` cannot be bound (None when it is an IP address or a syntactically valid host name)."""
    try:
        ip_address(host)
        return None
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if not host or len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        return f"{host!r} is neither an IP address nor a host name"
    return None
