"""A DPoP client for tests (RFC 9449 §4): an ES256 key that signs proofs (with the ext-auth DPoP draft's
`content_digest` claim when given a body: optional under MCP's SEP-1932, checked when present), forged proofs, an
httpx2.Auth that signs one proof per request (GET and DELETE included), and a parser for the `WWW-Authenticate`
challenges a resource answers with (§7.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
from joserfc import jwt
from joserfc.jwk import ECKey

OMIT: Any = object()  # an override that removes a claim or a header member instead of setting it
_PARAM = re.compile(r'\s*([A-Za-z_]+)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def ath(token: str) -> str:
    """§4.2: base64url of the SHA-256 of the access token's ASCII."""
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


def content_digest(body: bytes) -> str:
    """The ext-auth DPoP draft's claim: RFC 9530 `sha-256=:<standard base64>:` of the request body."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def htu(url: str) -> str:
    """§4.2: the target URI without query and fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **overrides}
    return {name: value for name, value in merged.items() if value is not OMIT}


@dataclass
class DpopKey:
    """One client's DPoP key pair. `now` is the clock proofs take their `iat` from (a test passes the gateway's)."""

    now: Callable[[], float] = time.time
    key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256"))

    @property
    def public_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    @property
    def thumbprint(self) -> str:
        """RFC 7638: what a token bound to this key carries as `cnf.jkt`."""
        return str(self.key.thumbprint())

    def claims(
        self,
        method: str,
        url: str,
        token: str | None = None,
        body: bytes | None = None,
        nonce: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """§4.2 claims: a fresh jti, htm, htu, iat; `ath` with a token, `content_digest` with a body, `nonce`."""
        claims: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(self.now())}
        if token is not None:
            claims["ath"] = ath(token)
        if body:
            claims["content_digest"] = content_digest(body)
        if nonce is not None:
            claims["nonce"] = nonce
        return _merged(claims, overrides)

    def header(self, **overrides: Any) -> dict[str, Any]:
        return _merged({"alg": "ES256", "typ": "dpop+jwt", "jwk": self.public_jwk}, overrides)

    def proof(
        self,
        method: str,
        url: str,
        token: str | None = None,
        body: bytes | None = None,
        nonce: str | None = None,
        *,
        header: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        """A proof signed by this key; `header` overrides JOSE header members, other keywords claims (OMIT drops)."""
        claims = self.claims(method, url, token, body, nonce, **overrides)
        return jwt.encode(self.header(**(header or {})), claims, self.key)

    def forged(self, alg: str, method: str, url: str, token: str | None = None, body: bytes | None = None) -> str:
        """A proof not signed by this key: `none` (no signature) or HS256 keyed with the public JWK itself (the
        algorithm-confusion forgery §11.6 rules out by accepting asymmetric algorithms only)."""
        parts = (self.header(alg=alg), self.claims(method, url, token, body))
        signing_input = ".".join(b64url(json.dumps(part).encode()) for part in parts)
        if alg == "none":
            return signing_input + "."
        secret = json.dumps(self.public_jwk, sort_keys=True).encode()
        return signing_input + "." + b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


class DpopAuth(httpx2.Auth):
    """`Authorization: DPoP <token>` and a fresh proof on every request (§7.1), with the body's `content_digest`
    unless `digest` is off; a `use_dpop_nonce` answer is retried once with the nonce it carried (§9). Records
    (method, status) of every exchange."""

    requires_request_body = True

    def __init__(self, key: DpopKey, token: str, *, digest: bool = True) -> None:
        self.key, self.token, self.digest = key, token, digest
        self.nonce: str | None = None
        self.exchanges: list[tuple[str, int]] = []

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        self._sign(request)
        response = yield request
        if response.status_code == 401 and "DPoP-Nonce" in response.headers:
            scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            if scheme == "DPoP" and params.get("error") == "use_dpop_nonce":
                self.nonce = response.headers["DPoP-Nonce"]
                self._sign(request)
                response = yield request
        self.exchanges.append((request.method, response.status_code))

    def _sign(self, request: httpx2.Request) -> None:
        request.headers["Authorization"] = f"DPoP {self.token}"
        request.headers["DPoP"] = self.key.proof(
            request.method, htu(str(request.url)), self.token, request.content if self.digest else None, self.nonce
        )


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """(scheme, parameters) of a `WWW-Authenticate` challenge (RFC 9110 §11.6.1); a repeated parameter fails."""
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        assert match, f"unparseable challenge at {rest[pos:]!r}"
        assert match.group(1) not in params, f"{match.group(1)} twice in {header!r}"
        params[match.group(1)] = match.group(2)
        pos = match.end()
    return scheme, params
