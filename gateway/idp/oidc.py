"""Generic OpenID Connect relying party with presets (Google, Microsoft Entra ID, Keycloak, Okta, Auth0).

Authorization code + PKCE S256 + state + nonce; the id_token is verified against the provider's JWKS (refetched
once when an unknown `kid` appears: key rotation); iss/aud/exp/nonce checked; userinfo optionally merged.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any
from urllib.parse import quote_plus, urlencode

import aiohttp
from joserfc.jwk import KeySet

from gateway.config import ProviderSettings
from gateway.idp.base import AuthorizationStart, ProviderError, TokenClient
from gateway.idp.http import fetch_json, provider_session
from gateway.idp.id_token import IdTokenError, UnknownKeyError, validate_id_token
from gateway.oauth.pkce import s256
from gateway.store.records import Principal

DISCOVERY_TTL = 3600
JWKS_MIN_REFRESH = 30  # seconds between forced JWKS refetches (forged kids cannot make us hammer the IdP)
PRESET_ISSUERS = {"google": "https://accounts.google.com"}
PRESET_LABELS = {
    "google": "Google",
    "entra": "Microsoft",
    "keycloak": "Keycloak",
    "okta": "Okta",
    "auth0": "Auth0",
    "oidc": "single sign-on",
}
ENTRA_TEMPLATE = "{tenantid}"


def issuer_for(settings: ProviderSettings) -> str:
    """The discovery base: configured, or a preset's (Entra: per tenant)."""
    if settings.type == "entra":
        return f"https://login.microsoftonline.com/{settings.tenant or 'organizations'}/v2.0"
    if settings.issuer:
        return settings.issuer.rstrip("/") if settings.type != "auth0" else settings.issuer
    if settings.type in PRESET_ISSUERS:
        return PRESET_ISSUERS[settings.type]
    raise ProviderError(f"provider {settings.name} needs an issuer")


class OidcProvider:
    def __init__(self, settings: ProviderSettings) -> None:
        self.name = settings.name
        self.label = settings.label or PRESET_LABELS.get(settings.type, settings.name)
        self._settings = settings
        self._issuer = issuer_for(settings)
        self._http: aiohttp.ClientSession | None = None
        self._discovery: dict[str, Any] | None = None
        self._discovered_at = 0.0
        self._keys: KeySet | None = None
        self._forced_at = float(-JWKS_MIN_REFRESH)  # the first unknown kid may always refetch

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def start(self, redirect_uri: str) -> AuthorizationStart:
        meta = await self._metadata()
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        params = {
            "response_type": "code",
            "client_id": self._settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self._settings.scopes or ["openid", "email", "profile"]),
            "state": state,
            "nonce": nonce,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
        return AuthorizationStart(f"{meta['authorization_endpoint']}?{urlencode(params)}", state, nonce, verifier)

    async def token_client(self) -> TokenClient:
        meta = await self._metadata()
        secret = self._settings.client_secret.get_secret_value()
        return TokenClient(meta["token_endpoint"], self._settings.client_id, secret)

    async def finish(
        self,
        code: str,
        nonce: str,
        code_verifier: str,
        redirect_uri: str,
        *,
        now: float,
        tokens_out: dict[str, Any] | None = None,
    ) -> Principal:
        meta = await self._metadata()
        settings = self._settings
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        methods = meta.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        secret = settings.client_secret.get_secret_value()
        headers = {"Accept": "application/json"}
        if "client_secret_basic" in methods:  # RFC 6749 §2.3.1: form-urlencode each part, then base64
            pair = f"{quote_plus(settings.client_id)}:{quote_plus(secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        else:
            form.update(client_id=settings.client_id, client_secret=secret)
        tokens = await fetch_json(self._session(), "POST", meta["token_endpoint"], "token", data=form, headers=headers)
        id_token = tokens.get("id_token") if isinstance(tokens, dict) else None
        if not isinstance(id_token, str):
            raise ProviderError("the identity provider returned no id_token")
        claims = await self._verify(id_token, nonce, now)
        if tokens_out is not None:
            tokens_out.update(tokens)
        if settings.use_userinfo and meta.get("userinfo_endpoint") and isinstance(tokens.get("access_token"), str):
            info = await fetch_json(
                self._session(),
                "GET",
                meta["userinfo_endpoint"],
                "userinfo",
                headers={"Authorization": f"Bearer {tokens['access_token']}"},
            )
            if isinstance(info, dict) and info.get("sub") == claims["sub"]:  # OIDC Core §5.3.2
                claims = {**info, **claims}
        return self._principal(claims, now)

    # -- internals --------------------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = provider_session(self._settings.ca_file)
        return self._http

    async def _metadata(self) -> dict[str, Any]:
        if self._discovery is None or time.monotonic() - self._discovered_at > DISCOVERY_TTL:
            url = f"{self._issuer.rstrip('/')}/.well-known/openid-configuration"
            document = await fetch_json(self._session(), "GET", url, "discovery")
            if not isinstance(document, dict) or not all(
                isinstance(document.get(k), str)
                for k in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
            ):
                raise ProviderError("the identity provider's discovery document is incomplete")
            if ENTRA_TEMPLATE not in document["issuer"] and document["issuer"] != self._issuer:
                raise ProviderError("the discovery document names another issuer")  # OIDC Discovery §4.3
            self._discovery, self._discovered_at = document, time.monotonic()
        return self._discovery

    async def _jwks(self, *, force: bool = False) -> KeySet:
        refetch = force and time.monotonic() - self._forced_at > JWKS_MIN_REFRESH
        if refetch:
            self._forced_at = time.monotonic()
        if self._keys is None or refetch:
            document = await fetch_json(self._session(), "GET", (await self._metadata())["jwks_uri"], "JWKS")
            try:
                self._keys = KeySet.import_key_set(document)
            except (ValueError, TypeError, KeyError) as exc:
                raise ProviderError(f"the identity provider's JWKS is unusable ({type(exc).__name__})") from None
        return self._keys

    async def _verify(self, id_token: str, nonce: str, now: float) -> dict[str, Any]:
        issuers = await self._expected_issuers(id_token)
        try:
            try:
                return validate_id_token(
                    id_token,
                    await self._jwks(),
                    issuer=issuers,
                    client_id=self._settings.client_id,
                    nonce=nonce,
                    now=now,
                )
            except UnknownKeyError:  # the provider rotated its keys
                return validate_id_token(
                    id_token,
                    await self._jwks(force=True),
                    issuer=issuers,
                    client_id=self._settings.client_id,
                    nonce=nonce,
                    now=now,
                )
        except IdTokenError as exc:
            raise ProviderError(f"the sign-in could not be verified: {exc}") from None

    async def _expected_issuers(self, id_token: str) -> list[str]:
        issuer = (await self._metadata())["issuer"]
        if ENTRA_TEMPLATE in issuer:  # Entra multi-tenant: https://login.microsoftonline.com/{tenantid}/v2.0
            tid = _unverified_claims(id_token).get("tid")
            return [issuer.replace(ENTRA_TEMPLATE, tid)] if isinstance(tid, str) and tid else []
        return [issuer]

    def _principal(self, claims: dict[str, Any], now: float) -> Principal:
        settings = self._settings
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        verified = claims.get("email_verified") in (True, "true")
        if settings.type == "entra":  # Entra sends no email_verified; trust only domain-owner-verified email
            verified = claims.get("xms_edov") in (True, "true", 1, "1")
        groups_value = claims.get(settings.groups_claim) if settings.groups_claim else None
        groups = (
            [groups_value] if isinstance(groups_value, str) else groups_value if isinstance(groups_value, list) else []
        )
        username = next(
            (claims[k] for k in ("preferred_username", "nickname", "login") if isinstance(claims.get(k), str)), None
        )
        return Principal(
            user_id=f"{self.name}:{claims['sub']}",
            email=email if verified else None,
            preferred_username=username or (email.split("@")[0] if email and verified else None),
            name=claims.get("name") if isinstance(claims.get("name"), str) else None,
            groups=tuple(str(g) for g in groups if isinstance(g, (str, int))),
            authenticated_at=now,
        )


def _unverified_claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        decoded: Any = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return decoded if isinstance(decoded, dict) else {}
    except (IndexError, ValueError):
        return {}
