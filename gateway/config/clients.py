"""`clients`: pre-registered OAuth clients, with their redirect URIs checked under the rules of DCR."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr

from gateway.assertions.jwk_rules import key_set_problem
from gateway.config.base import Model
from gateway.config.upstream_auth import endpoint_problem
from gateway.oauth.grant_types import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, JWT_BEARER, REFRESH_TOKEN
from gateway.oauth.redirects import DEFAULT_PRIVATE_USE_SCHEMES, redirect_uri_problem

AuthMethod = Literal["none", "client_secret_post", "client_secret_basic", "private_key_jwt"]
GrantType = Literal[
    "authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer"
]


class ClientSettings(Model):
    """A pre-registered OAuth client (ChatGPT "predefined client", Inspector --client-id …)."""

    client_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._~@-]+$",
        description="Fixed id: letters, digits and ._~@- (never a URL: those are CIMD ids).",
    )
    client_secret: SecretStr | None = Field(default=None, description="Omit for a public client (PKCE only).")
    token_endpoint_auth_method: AuthMethod | None = None
    redirect_uris: list[str] = Field(default_factory=list, description="Required for the authorization_code grant.")
    client_name: str | None = None
    grant_types: list[GrantType] = Field(
        default_factory=lambda: [AUTHORIZATION_CODE, REFRESH_TOKEN],
        description="client_credentials: a machine client, its own principal `client:<id>` (no refresh token); "
        "the jwt-bearer grant (enterprise ID-JAG) needs the client listed in enterprise.issuers[].clients.",
    )
    dpop_bound_access_tokens: bool = Field(
        default=False, description="Every token request of this client must carry a DPoP proof (RFC 9449 §5.2)."
    )
    jwks: dict[str, Any] | None = Field(default=None, description="private_key_jwt: the client's public JWK set.")
    jwks_uri: str | None = Field(default=None, description="private_key_jwt: where the client publishes it.")
    groups: list[str] = Field(
        default_factory=list, description="client_credentials: groups of `client:<id>` (rules name `client:<group>`)."
    )
    scopes: list[str] | None = Field(
        default=None, description="client_credentials: the scopes it may be given; default: any of the route's."
    )


def client_problems(data: dict[str, Any]) -> list[str]:
    """Pre-registered clients: redirect URIs under the same rules as DCR's, and an auth method that matches the
    presence of a secret (a client_secret_* method without a secret would authenticate with nothing)."""
    problems: list[str] = []
    oauth = data.get("oauth")
    schemes = oauth.get("private_use_schemes") if isinstance(oauth, dict) else None
    schemes = schemes if isinstance(schemes, list) else list(DEFAULT_PRIVATE_USE_SCHEMES)
    clients = data.get("clients")
    for i, entry in enumerate(clients if isinstance(clients, list) else []):
        if not isinstance(entry, dict):
            continue
        where = f"clients[{i}]"
        uris = entry.get("redirect_uris")
        for j, uri in enumerate(uris if isinstance(uris, list) else []):
            problem = redirect_uri_problem(uri, private_use_schemes=schemes) if isinstance(uri, str) else None
            if problem:
                problems.append(f"{where}.redirect_uris[{j}]: {problem}")
        method, secret = entry.get("token_endpoint_auth_method"), entry.get("client_secret")
        if method in ("client_secret_basic", "client_secret_post") and not secret:
            problems.append(f"{where}.client_secret: required for token_endpoint_auth_method {method}")
        problems += machine_client_problems(entry, where)
    return problems


def machine_client_problems(entry: dict[str, Any], where: str) -> list[str]:
    """private_key_jwt keys, and the grants a client may use without a person (client_credentials, jwt-bearer):
    for `clients[]` and `clients add` alike."""
    problems: list[str] = []
    method, secret = entry.get("token_endpoint_auth_method"), entry.get("client_secret")
    grants = entry.get("grant_types", [AUTHORIZATION_CODE, REFRESH_TOKEN])
    grants = grants if isinstance(grants, list) else []
    jwks, jwks_uri = entry.get("jwks"), entry.get("jwks_uri")
    if method == "private_key_jwt":
        if secret:
            problems.append(f"{where}.client_secret: a private_key_jwt client authenticates with its key, not a secret")
        if (jwks is None) == (jwks_uri is None):
            problems.append(f"{where}: private_key_jwt needs exactly one of jwks and jwks_uri")
    elif jwks is not None or jwks_uri is not None:
        problems.append(f"{where}: jwks and jwks_uri are for token_endpoint_auth_method private_key_jwt")
    problems += key_set_problems(jwks, jwks_uri, where)
    if AUTHORIZATION_CODE in grants and not entry.get("redirect_uris"):
        problems.append(f"{where}.redirect_uris: required for the authorization_code grant")
    machine = CLIENT_CREDENTIALS in grants or JWT_BEARER in grants
    if method == "none" and secret:
        problems.append(f"{where}.token_endpoint_auth_method: none (a public client) cannot have a client_secret")
    if machine and method in (None, "none") and not secret:
        problems.append(f"{where}: client_credentials and jwt-bearer are for confidential clients (a secret or a key)")
    if (entry.get("groups") or entry.get("scopes") is not None) and CLIENT_CREDENTIALS not in grants:
        problems.append(f"{where}: groups and scopes describe a client_credentials client's own principal")
    return problems


def key_set_problems(jwks: Any, jwks_uri: Any, where: str) -> list[str]:
    """An inline key set that is a public JWK set for signatures, a key set URL the gateway may fetch: for clients'
    and enterprise issuers' keys alike."""
    problems: list[str] = []
    if jwks is not None and (problem := key_set_problem(jwks)):
        problems.append(f"{where}.jwks: {problem}")
    if isinstance(jwks_uri, str) and (problem := endpoint_problem(jwks_uri)):
        problems.append(f"{where}.jwks_uri: {problem}")
    return problems
