"""`identity_jwt`: the gateway-signed identity JWT some routes send upstream."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gateway.config.base import Model


class IdentityJwtSettings(Model):
    lifetime: int = Field(default=60, gt=0, le=3600, description="Seconds an identity JWT is valid.")
    key_file: Path | None = Field(
        default=None,
        description="Private JWK set (JSON) to sign with; first key signs. "
        "Default: keys kept in the store, made on first use, `keys rotate` adds one.",
    )
