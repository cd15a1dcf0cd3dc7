"""`oauth`: token, code and session lifetimes, DCR, /introspect credentials, private-use redirect schemes."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from gateway.config.base import Model
from gateway.oauth.redirects import DEFAULT_PRIVATE_USE_SCHEMES, private_use_scheme_problem

REVOCATIONS_KEPT_SECONDS = 90 * 86400  # revocation marks of refresh-token families outlive every refresh token


class IntrospectionCredential(Model):
    name: str = Field(min_length=1, pattern=r"^[^:]+$")
    secret: SecretStr


class OAuthSettings(Model):
    access_token_ttl: int = Field(default=3600, gt=0, description="Access token lifetime, seconds.")
    refresh_token_ttl: int = Field(
        default=30 * 86400,
        gt=0,
        le=REVOCATIONS_KEPT_SECONDS,
        description="Refresh token idle lifetime, seconds; at most 90 days, as long as revocations are kept.",
    )
    refresh_grace: int = Field(default=60, ge=0, description="Seconds a just-rotated refresh token still works.")
    code_ttl: int = Field(default=600, gt=0, le=600, description="Authorization code lifetime (at most 10 min).")
    consent_ttl: int = Field(default=30 * 86400, ge=0, description="How long an approval is remembered; 0: ask always.")
    session_idle_ttl: int = Field(default=12 * 3600, gt=0, description="Login session idle expiry, seconds.")
    session_max_age: int = Field(default=7 * 86400, gt=0, description="Login session absolute expiry, seconds.")
    dcr_enabled: bool = Field(default=True, description="Accept RFC 7591 registrations at /register.")
    dcr_client_idle_ttl: int = Field(default=30 * 86400, gt=0, description="Unused DCR clients expire after this.")
    register_rate_per_minute: int = Field(default=20, gt=0, description="Registrations per client IP per minute.")
    introspection: list[IntrospectionCredential] = Field(
        default_factory=list, description="HTTP Basic credentials allowed to call /introspect; empty: no /introspect."
    )
    dpop_nonce: bool = Field(
        default=False,
        description="Require the server nonce in DPoP proofs (RFC 9449 §8, §9): at /token and on MCP routes.",
    )
    dpop_require_content_digest: bool = Field(
        default=False,
        description="Require the content_digest claim (the body's SHA-256) in DPoP proofs of MCP requests with a "
        "body (an ext-auth DPoP draft; SEP-1932 dropped it). Checked whenever present.",
    )
    dpop_iat_window: int = Field(
        default=300, gt=0, le=600, description="Seconds a DPoP proof's iat may be off the gateway's clock."
    )
    private_use_schemes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PRIVATE_USE_SCHEMES),
        description="Private-use redirect URI schemes without a period that clients may register (RFC 8252 §7.1 "
        "asks for reverse-DNS schemes such as com.example.app, which are always accepted).",
    )

    @field_validator("private_use_schemes")
    @classmethod
    def _schemes(cls, schemes: list[str]) -> list[str]:
        problems = [p for p in map(private_use_scheme_problem, schemes) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return schemes
