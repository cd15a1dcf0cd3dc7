"""`routes[].upstream_auth`: the credential the gateway presents to a route's upstream. The client never sees it
and never supplies it: a copy of the header in a client's request is dropped, the gateway's line replaces it.

`static`: one header, the same for every user (an upstream that knows only an API key, or one service token), its
value in the configuration (`value: "Bearer ${UPSTREAM_KEY}"`, from the environment) or read from a file
(`value_file`, e.g. a mounted secret; read when the configuration is loaded, so a reload picks up a rotated
secret). The value is never logged nor shown by `check-config`: a SecretStr, and no message quotes it.

`token_exchange`: a credential per user, from an RFC 8693 token service (Keycloak, Okta, an STS of your own): the
subject token is a gateway-signed assertion of the user (the identity JWT, `aud` = the token endpoint, verifiable
at the gateway's `/.well-known/jwks.json`), the gateway authenticates as `client_id` / `client_secret`, and the
token it gets is cached per (route, user, client) until shortly before it expires (gateway.upstream_credentials).

The other per-user modes of the contract (`oauth`, `provider_token`) are not in this version yet: a route that
names one is refused when the configuration is loaded, with a message that says so."""

from __future__ import annotations

import os
import stat
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, model_validator

from gateway.config.base import Model, url_problems
from gateway.proxy import header_names

NOT_YET_TYPES = ("oauth", "provider_token")  # in the contract, not in this version
MAX_VALUE_CHARS = 8192  # a header line the upstream's server accepts (aiohttp: 8190 per line; nginx: 8 KiB)
MAX_FILE_BYTES = 64 * 1024


class StaticUpstreamAuth(Model):
    type: Literal["static"] = Field(description="The same credential for every user of the route.")
    header: str = Field(default="Authorization", description="Header that carries it to the upstream.")
    value: SecretStr | None = Field(default=None, description="The header's value (`${VAR}`: from the environment).")
    value_file: str | None = Field(
        default=None, description="Read the value from this file instead (trailing newline dropped)."
    )
    _secret: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _resolve(self) -> StaticUpstreamAuth:
        if (self.value is None) == (self.value_file is None):
            raise ValueError("give exactly one of value and value_file")
        secret = self.value.get_secret_value() if self.value is not None else _read_secret(self.value_file or "")
        if not secret or len(secret) > MAX_VALUE_CHARS:
            raise ValueError(f"the value must be 1 to {MAX_VALUE_CHARS} characters")
        if secret != secret.strip(" \t") or not all(c == "\t" or " " <= c <= "~" for c in secret):
            raise ValueError("the value may hold visible ASCII, spaces and tabs only, not at its ends (no line breaks)")
        if set(secret) == {"*"}:
            raise ValueError("the value is the mask check-config --print shows for a secret: give the secret itself")
        self._secret = secret
        return self

    def header_line(self) -> tuple[str, str]:
        """The (name, value) the upstream request carries."""
        return self.header, self._secret


ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class TokenExchangeUpstreamAuth(Model):
    type: Literal["token_exchange"] = Field(description="A credential per user from an RFC 8693 token service.")
    token_endpoint: str = Field(description="The token service's token endpoint (https; http on loopback only).")
    client_id: str = Field(min_length=1, max_length=512, description="The gateway's client at the token service.")
    client_secret: SecretStr | None = Field(default=None, description="Sent as HTTP Basic (client_secret_basic).")
    audience: str | None = Field(default=None, description="RFC 8693 `audience`: the upstream, as the STS names it.")
    resource: str | None = Field(default=None, description="RFC 8707 `resource` of the token asked for.")
    scopes: list[str] = Field(default_factory=list, description="`scope` of the token asked for.")
    requested_token_type: str = Field(default=ACCESS_TOKEN_TYPE, description="RFC 8693 `requested_token_type`.")
    header: str = Field(default="Authorization", description="Header that carries it to the upstream.")
    timeout: float = Field(default=10.0, gt=0, le=60, description="Seconds for one exchange.")
    max_cache_seconds: int = Field(default=3600, ge=0, description="Longest a token is reused (0: never cached).")

    @model_validator(mode="after")
    def _endpoint(self) -> TokenExchangeUpstreamAuth:
        if url_problems(self.token_endpoint, origin_only=False):  # (not quoted: it may carry a password)
            raise ValueError("token_endpoint: an absolute http(s) URL without user info, query or fragment")
        parts = urlsplit(self.token_endpoint)
        if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("token_endpoint: https is required (http only on loopback)")
        return self


UpstreamAuth = Annotated[StaticUpstreamAuth | TokenExchangeUpstreamAuth, Field(discriminator="type")]


def _read_secret(path: str) -> str:
    """The file's text. Opened without blocking and only when it is a regular file (a FIFO or a device would hold
    start-up, or a reload and every request with it, until something writes to it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ValueError(f"value_file {path!r} cannot be read ({type(exc).__name__})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"value_file {path!r} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"value_file {path!r} cannot be read ({type(exc).__name__})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"value_file {path!r} is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"value_file {path!r} holds more than ASCII text") from None
    return text.removesuffix("\n").removesuffix("\r")


def _names(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def upstream_auth_problems(route: dict[str, Any], where: str, own_names: set[str]) -> list[str]:
    """The header names one the gateway may send for its credential (not one it sets or guards otherwise, not one the
    route forwards from clients); a per-user type named clearly as not yet available."""
    auth = route.get("upstream_auth")
    if not isinstance(auth, dict):
        return []
    kind = auth.get("type")
    if kind in NOT_YET_TYPES:
        return [f"{where}.upstream_auth.type: {kind!r} is not available in this version (static, token_exchange)"]
    header = auth.get("header", "Authorization")
    if not isinstance(header, str):
        return []
    name = header_names.canonical(header)
    h = header_names
    if not h.TOKEN.match(header):
        return [f"{where}.upstream_auth.header: {header!r} is not a valid name"]
    reserved = (h.GATEWAY_REQUEST - {"authorization"}) | h.HOP_BY_HOP | h.FORWARDED_REQUEST | own_names
    if name in reserved or name.startswith((*h.GATEWAY_REQUEST_PREFIXES, h.MCP_PARAM_PREFIX)):
        return [f"{where}.upstream_auth.header: {header!r} is set or guarded by the gateway for another purpose"]
    forwarded = [*_names(route.get("forward_headers")), *_names(route.get("forward_response_headers"))]
    if name in {h.canonical(str(f)) for f in forwarded}:
        return [f"{where}.upstream_auth.header: {header!r} is also in forward_headers or forward_response_headers"]
    return []
