"""`tracing`: what the OpenTelemetry spans say (whether they are exported is the `OTEL_*` environment's call)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.config.base import Model


class TracingSettings(Model):
    user_id: Literal["hashed", "plain", "omit"] = Field(
        default="hashed",
        description="The user id as the `enduser.id` span attribute: 'hashed' (HMAC-SHA256 under the deployment's "
        "secret, as the audit log's argument digests), 'plain', or 'omit'.",
    )
    step_spans: bool = Field(
        default=True,
        description="A span per step of an MCP request (bearer, policy, limiter, upstream, relay) under the "
        "request's; false: only the request's and the upstream's (about a third of the cost).",
    )
