"""`store`: the Redis that holds tokens, sessions and limits (a URL, or the embedded one under data_dir)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from gateway.config.base import Model

STORE_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster", "rediss+cluster")


class StoreSettings(Model):
    url: SecretStr | None = Field(
        default=None,
        description="redis://, rediss://, unix://, redis+sentinel:// or redis+cluster:// URL; omit "
        "for the embedded Redis under data_dir.",
    )
    data_dir: Path = Field(default=Path("./data"), description="Where the embedded Redis keeps its files.")
    key_prefix: str = Field(
        default="mcpgw", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$", description="Prefix of every Redis key."
    )
    timeout: float = Field(default=2.0, gt=0, description="Seconds before a Redis call fails (then 503).")
    pool_size: int = Field(
        default=256,
        gt=0,
        description="Redis connections per process; a burst beyond it waits up to `timeout` for a free one.",
    )
    token_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Keep validated access tokens in memory "
        "this long (0: off); revocations reach every instance at once (pub/sub).",
    )

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        scheme = urlsplit(value.get_secret_value()).scheme if value is not None else ""
        if value is not None and scheme not in STORE_SCHEMES:
            raise ValueError(f"the scheme must be one of {', '.join(s + '://' for s in STORE_SCHEMES)}")
        return value
