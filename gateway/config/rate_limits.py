"""`rate_limits` and `routes[].rate_limits`: GCRA limits kept in Redis."""

from __future__ import annotations

from pydantic import Field

from gateway.config.base import Model


class RateLimit(Model):
    limit: int = Field(gt=0, description="Requests allowed per period (also the burst).")
    period: float = Field(default=60.0, gt=0, description="Seconds.")


class RouteRateLimits(Model):
    mcp_per_user: RateLimit | None = Field(default=None, description="Override: MCP requests per user.")
    tool_calls_per_user: RateLimit | None = Field(default=None, description="Override: tools/call per user per tool.")


class RateLimitSettings(Model):
    """GCRA limits kept in Redis (atomic, shared by every gateway instance); null disables one."""

    oauth_per_ip: RateLimit | None = Field(
        default_factory=lambda: RateLimit(limit=120),
        description="Per client IP on /register, /authorize, /token, /revoke, /introspect.",
    )
    mcp_per_user: RateLimit | None = Field(
        default_factory=lambda: RateLimit(limit=600), description="Per user per route on MCP requests."
    )
    tool_calls_per_user: RateLimit | None = Field(
        default_factory=lambda: RateLimit(limit=300), description="Per user per tool on tools/call."
    )
    failed_sign_ins: RateLimit | None = Field(
        default_factory=lambda: RateLimit(limit=10, period=900),
        description="Failed local password sign-ins per user name and client address, and 10 times this per user name"
        " from all addresses (then 429 until a cell frees).",
    )
