"""`cimd`: Client ID Metadata Documents, fetched on first use of an https client_id."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gateway.config.base import Model


class CimdSettings(Model):
    """Client ID Metadata Documents: https client_ids fetched on first use."""

    enabled: bool = True
    allow_hosts: list[str] = Field(
        default_factory=list, description="Hosts exempt from the private/special-use address refusal."
    )
    ca_file: Path | None = Field(default=None, description="Extra CA bundle to trust when fetching documents.")
    timeout: float = Field(default=5.0, gt=0, description="One deadline per fetch: DNS, connect, headers and body.")
    max_bytes: int = Field(default=5120, gt=0, description="Largest document, counted while reading (never inflated).")
    max_concurrent_fetches: int = Field(
        default=10, ge=1, description="Fetches at once per process; one more is refused (503), never queued."
    )
    max_fetches_per_host: int = Field(default=2, ge=1, description="Fetches at once to one host; one more is refused.")
    failure_cache_seconds: int = Field(
        default=60,
        ge=0,
        description="A bad document (status, type, size, content, private address) is remembered this long per"
        " URL (0: retry at once); timeouts and unreachable hosts are not remembered.",
    )
    cache_min_seconds: int = Field(default=300, ge=0)
    cache_max_seconds: int = Field(default=86400, ge=0)
