"""`proxy`: request body limit and the upstream connection pool."""

from __future__ import annotations

from pydantic import Field

from gateway.config.base import Model


class ProxySettings(Model):
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0, description="Larger request bodies get 413.")
    connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to connect to an upstream (else 502).")
    pool_size: int = Field(
        default=0,
        ge=0,
        description="Most upstream connections open at once (0: no limit). "
        "Every open SSE stream holds one; beyond the limit a request waits up to connect_timeout, "
        "then 504.",
    )
