"""The admin API's JSON request bodies (pydantic: unknown fields refused, inputs never echoed in errors)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gateway.config.clients import AuthMethod, GrantType
from gateway.oauth.client_metadata import MAX_REDIRECT_URIS

Text = Annotated[str, Field(min_length=1, max_length=2048)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class UserCreateRequest(_Body):
    """A local account (`users add`)."""

    name: str = Field(min_length=1, max_length=64, description="Letters, digits and _ . @ - only.")
    password: SecretStr = Field(min_length=1, max_length=1024, description="At least 8 characters.")
    email: str | None = Field(default=None, max_length=320)
    groups: list[Annotated[str, Field(max_length=128)]] = Field(default_factory=list, max_length=64)


class GroupsRequest(_Body):
    """The user's groups, replacing the ones they have (`users groups NAME --set a,b`)."""

    groups: list[Annotated[str, Field(max_length=128)]] = Field(max_length=64)


class ClientCreateRequest(_Body):
    """A pre-registered client (`clients add`), with the field names of RFC 7591."""

    client_id: str | None = Field(default=None, max_length=200, description="Fixed id (default: generated).")
    redirect_uris: list[Text] = Field(default_factory=list, max_length=MAX_REDIRECT_URIS)
    client_name: str | None = Field(default=None, max_length=200, description="Shown on the consent page.")
    token_endpoint_auth_method: AuthMethod = Field(
        default="none", description="none: a public client with PKCE; client_secret_*: a secret is returned once."
    )
    client_secret: SecretStr | None = Field(
        default=None, min_length=16, max_length=512, description="A fixed secret (default: generated)."
    )
    grant_types: list[GrantType] | None = Field(default=None, max_length=8)
    jwks: dict[str, Any] | None = Field(default=None, description="private_key_jwt: the client's public JWK set.")
    jwks_uri: Text | None = None
    groups: list[Annotated[str, Field(max_length=128)]] = Field(default_factory=list, max_length=64)
    scopes: list[Annotated[str, Field(max_length=200)]] | None = Field(default=None, max_length=64)
