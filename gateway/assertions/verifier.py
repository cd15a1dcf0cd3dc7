"""The token endpoint's signed assertions, checked against their issuers' keys: a client's `private_key_jwt`
(RFC 7523 §2.2, §3) and an enterprise IdP's Identity Assertion JWT Authorization Grant (ID-JAG: the MCP
Enterprise-Managed Authorization profile §5, §7.4, §7.6). Every `jti` is single use on every instance (the store),
for as long as its assertion could be accepted; no assertion is ever logged."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from joserfc.jwk import KeySet

from gateway.assertions.key_sets import KeySetCache, KeySetError, parse_inline
from gateway.config import Settings, TrustedIssuer
from gateway.config.upstream_auth import endpoint_problem, http_hosts_of, internal_host
from gateway.oauth.errors import InvalidClientError, InvalidGrantError, TemporarilyUnavailableError
from gateway.oauth.grant_types import ID_JAG_TYP
from gateway.oauth.jwt_assertions import (
    LEEWAY_SECONDS,
    AssertionRejectedError,
    UnknownKeyError,
    audience_matches,
    unverified_parts,
    verify_assertion,
)
from gateway.store.base import KeyStore
from gateway.store.records import ClientRecord, Principal

logger = logging.getLogger(__name__)
CLIENT_ASSERTION_MAX_LIFETIME = 600  # RFC 7523 §3: short-lived; the SDK signs for 300 s


class Assertions:
    def __init__(self, settings: Settings, store: KeyStore) -> None:
        self._store = store
        self._cache = KeySetCache()
        self._issuers = {i.issuer: i for i in settings.enterprise.issuers}
        self._inline: dict[str, KeySet] = {}  # by issuer or client id: the YAML's own key sets
        for issuer in settings.enterprise.issuers:
            if issuer.jwks is not None:
                self._inline["iss:" + issuer.issuer] = parse_inline(issuer.jwks, f"enterprise issuer {issuer.issuer}")
        self._discovered: dict[str, tuple[str, str]] = {}  # issuer -> (the metadata URL that worked, its jwks_uri)
        self._public_url = settings.public_url
        self._client_audiences = (settings.public_url, settings.public_url + "/token")  # RFC 7523bis: the issuer

    @property
    def enterprise(self) -> bool:
        return bool(self._issuers)

    async def close(self) -> None:
        await self._cache.close()

    # -- private_key_jwt --------------------------------------------------------------------------------

    async def authenticate(self, assertion: str, client: ClientRecord, *, now: float) -> None:
        """`assertion` proves `client` (RFC 7523 §3): iss and sub are its id, aud this authorization server, signed
        by one of its keys, short-lived, its jti never seen.

        Raises:
            InvalidClientError: any of that fails (the description says which).
        """
        try:
            keys = await self._client_keys(client)
            claims = await self._verified(assertion, lambda force: self._client_keys(client, force=force), keys, now)
        except KeySetError as exc:  # (the caller may be anyone: no word on the client's keys or where they are)
            logger.warning("client %s: its keys cannot be used: %s", client.client_id, exc)
            raise InvalidClientError("client authentication failed") from None
        except AssertionRejectedError as exc:
            raise InvalidClientError(f"client assertion rejected: {exc}") from None
        if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
            raise InvalidClientError("client assertion rejected: iss and sub must be the client_id")
        if not audience_matches(claims, self._client_audiences):
            raise InvalidClientError(f"client assertion rejected: aud must be {self._public_url}")
        if not await self._first_use("cassert", client.client_id, claims, now):
            raise InvalidClientError("client assertion rejected: its jti was already used")

    async def _client_keys(self, client: ClientRecord, *, force: bool = False) -> KeySet:
        if client.jwks is not None:
            return parse_inline(client.jwks, f"client {client.client_id}")
        if client.jwks_uri is None:
            raise KeySetError("the client has no keys (jwks or jwks_uri)")
        return await self._cache.keys(client.jwks_uri, force=force)

    # -- ID-JAG -----------------------------------------------------------------------------------------

    async def identity_grant(
        self, assertion: str, client: ClientRecord, *, now: float
    ) -> tuple[TrustedIssuer, dict[str, Any]]:
        """The trusted issuer and the verified claims of an ID-JAG presented by `client`.

        Raises:
            InvalidGrantError: not from a trusted issuer, not for this server, not for this client, expired,
                replayed, or signed by no key of the issuer.
            TemporarilyUnavailableError: the issuer's keys cannot be fetched now.
        """
        try:
            _, unverified = unverified_parts(assertion)
        except AssertionRejectedError as exc:
            raise InvalidGrantError(f"ID-JAG rejected: {exc}") from None
        issuer = self._issuers.get(unverified.get("iss")) if isinstance(unverified.get("iss"), str) else None
        if issuer is None:
            raise InvalidGrantError("ID-JAG rejected: its issuer is not trusted here")
        if client.client_id not in issuer.clients:  # (before any key is fetched for it)
            raise InvalidGrantError("ID-JAG rejected: this client may not present this issuer's grants")
        try:
            keys = await self._issuer_keys(issuer)
            claims = await self._verified(
                assertion,
                lambda force: self._issuer_keys(issuer, force=force),
                keys,
                now,
                typ=ID_JAG_TYP,
                max_lifetime=issuer.max_lifetime,
            )
        except AssertionRejectedError as exc:
            raise InvalidGrantError(f"ID-JAG rejected: {exc}") from None
        except KeySetError as exc:
            logger.warning("enterprise issuer %s: its keys cannot be used: %s", issuer.issuer, exc)
            raise TemporarilyUnavailableError("the issuer's keys cannot be fetched right now") from None
        if claims.get("iss") != issuer.issuer:
            raise InvalidGrantError("ID-JAG rejected: its issuer is not trusted here")
        if not audience_matches(claims, (self._public_url,)):
            raise InvalidGrantError(f"ID-JAG rejected: aud must be this authorization server ({self._public_url})")
        if not isinstance(claims.get("sub"), str) or not claims["sub"] or len(claims["sub"]) > 255:
            raise InvalidGrantError("ID-JAG rejected: it names no subject")
        if claims.get("client_id") != client.client_id:
            raise InvalidGrantError("ID-JAG rejected: it was issued to another client")
        if not await self._first_use("idjag", issuer.issuer, claims, now):
            raise InvalidGrantError("ID-JAG rejected: its jti was already used")
        return issuer, claims

    async def _issuer_keys(self, issuer: TrustedIssuer, *, force: bool = False) -> KeySet:
        inline = self._inline.get("iss:" + issuer.issuer)
        if inline is not None:
            return inline
        url = issuer.jwks_uri or await self._discover(issuer)
        return await self._cache.keys(url, force=force)

    async def _discover(self, issuer: TrustedIssuer) -> str:
        """The issuer's `jwks_uri` from its OpenID or RFC 8414 metadata (the document must name the same issuer; the
        URL may be plain http or internal only where the issuer itself is). The metadata URL that worked is tried
        first next time; while the metadata cannot be fetched, the `jwks_uri` found before is used."""
        parts = urlsplit(issuer.issuer)
        candidates = [
            f"{issuer.issuer.rstrip('/')}/.well-known/openid-configuration",
            f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{parts.path.rstrip('/')}",
        ]
        known = self._discovered.get(issuer.issuer)
        if known is not None:
            candidates.sort(key=lambda url: url != known[0])
        failure = KeySetError(f"no metadata naming {issuer.issuer} with a jwks_uri")
        for url in candidates:
            try:
                document = await self._cache.document(url, "issuer metadata")
            except KeySetError as exc:
                failure = exc
                continue
            jwks_uri = document.get("jwks_uri")
            if document.get("issuer") != issuer.issuer or not isinstance(jwks_uri, str):
                self._cache.refuse(url, f"the metadata at {url} names another issuer or no jwks_uri")
                continue
            internal = internal_host(parts.hostname or "")
            problem = endpoint_problem(jwks_uri, http_hosts=http_hosts_of(issuer.issuer), internal_ok=internal)
            if problem is not None:
                self._cache.refuse(url, f"the issuer's jwks_uri {jwks_uri}: {problem}")
                raise KeySetError(f"the issuer's jwks_uri {jwks_uri}: {problem}")
            self._discovered[issuer.issuer] = (url, jwks_uri)
            return jwks_uri
        if known is not None and failure.transient:
            return known[1]  # the metadata is unreachable now: the key set found before (its own cache decides)
        raise failure

    # -- shared -----------------------------------------------------------------------------------------

    async def _verified(
        self,
        assertion: str,
        refetch: Any,
        keys: KeySet,
        now: float,
        *,
        typ: str | None = None,
        max_lifetime: float = CLIENT_ASSERTION_MAX_LIFETIME,
    ) -> dict[str, Any]:
        try:
            return verify_assertion(assertion, keys, now=now, max_lifetime=max_lifetime, typ=typ)
        except UnknownKeyError:  # the issuer rotated its keys (refetched at most every 30 s)
            return verify_assertion(assertion, await refetch(True), now=now, max_lifetime=max_lifetime, typ=typ)

    async def _first_use(self, kind: str, scope: str, claims: dict[str, Any], now: float) -> bool:
        """Record the jti (scoped by who issued it) until the assertion can no longer be accepted."""
        digest = hashlib.sha256(json.dumps([scope, claims.get("iss"), claims["jti"]]).encode()).hexdigest()
        return await self._store.claim_once(kind, digest, int(claims["exp"] + LEEWAY_SECONDS - now) + 1)


def grant_principal(issuer: TrustedIssuer, claims: dict[str, Any], *, now: float) -> Principal:
    """The person an ID-JAG names, in the issuer's identity namespace (`<provider>:<sub>`)."""
    email = claims.get(issuer.email_claim)
    verified = issuer.trust_email or claims.get("email_verified") in (True, "true")
    email = email if isinstance(email, str) and "@" in email and verified else None
    groups_value = claims.get(issuer.groups_claim) if issuer.groups_claim else None
    groups = [groups_value] if isinstance(groups_value, str) else groups_value if isinstance(groups_value, list) else []
    username = claims.get(issuer.username_claim)
    name = claims.get("name")
    return Principal(
        user_id=f"{issuer.provider}:{claims['sub']}",
        email=email,
        preferred_username=username if isinstance(username, str) else (email.split("@")[0] if email else None),
        name=name if isinstance(name, str) else None,
        groups=tuple(str(g)[:200] for g in groups[:100] if isinstance(g, (str, int)) and not isinstance(g, bool)),
        authenticated_at=now,
    )
