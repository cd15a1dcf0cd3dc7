"""GitHub sign-in: plain OAuth 2.0 (with PKCE and state) plus the REST API for the person's identity:
the numeric user id (stable, unlike the login), the verified primary email, org and team membership."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

import aiohttp

from gateway.config import ProviderSettings
from gateway.idp.base import AuthorizationStart, ProviderError, TokenClient
from gateway.idp.http import fetch_json, provider_session
from gateway.oauth.pkce import s256
from gateway.store.records import Principal

DEFAULT_SCOPES = ["read:user", "user:email", "read:org"]


class GitHubProvider:
    def __init__(self, settings: ProviderSettings) -> None:
        self.name = settings.name
        self.label = settings.label or "GitHub"
        self._settings = settings
        self._web = settings.github_url.rstrip("/")
        self._api = settings.github_api_url.rstrip("/")
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def start(self, redirect_uri: str) -> AuthorizationStart:
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        params = {
            "client_id": self._settings.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": " ".join(self._settings.scopes or DEFAULT_SCOPES),
            "allow_signup": "false",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
        return AuthorizationStart(f"{self._web}/login/oauth/authorize?{urlencode(params)}", state, "", verifier)

    async def token_client(self) -> TokenClient:
        secret = self._settings.client_secret.get_secret_value()
        return TokenClient(f"{self._web}/login/oauth/access_token", self._settings.client_id, secret)

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
        http = self._session()
        tokens = await fetch_json(
            http,
            "POST",
            f"{self._web}/login/oauth/access_token",
            "token",
            data={
                "client_id": self._settings.client_id,
                "client_secret": self._settings.client_secret.get_secret_value(),
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
            headers={"Accept": "application/json"},
        )
        token = tokens.get("access_token") if isinstance(tokens, dict) else None
        if not isinstance(token, str):  # GitHub reports errors with 200 and an `error` field
            raise ProviderError("GitHub did not issue a token (the sign-in was refused or expired)")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}
        user = await fetch_json(http, "GET", f"{self._api}/user", "user", headers=headers)
        emails = await fetch_json(http, "GET", f"{self._api}/user/emails", "emails", headers=headers)
        orgs = await fetch_json(http, "GET", f"{self._api}/user/orgs", "orgs", headers=headers)
        teams = await fetch_json(http, "GET", f"{self._api}/user/teams", "teams", headers=headers)
        if not isinstance(user, dict) or not isinstance(user.get("id"), int):
            raise ProviderError("GitHub returned no user")
        if tokens_out is not None:
            tokens_out.update(tokens)
        return Principal(
            user_id=f"{self.name}:{user['id']}",
            email=_verified_primary(emails),
            preferred_username=user.get("login") if isinstance(user.get("login"), str) else None,
            name=user.get("name") if isinstance(user.get("name"), str) else None,
            groups=_groups(orgs, teams),
            authenticated_at=now,
        )

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = provider_session(self._settings.ca_file)
        return self._http


def _verified_primary(emails: Any) -> str | None:
    for entry in emails if isinstance(emails, list) else []:
        if isinstance(entry, dict) and entry.get("primary") and entry.get("verified"):
            email = entry.get("email")
            return email if isinstance(email, str) else None
    return None


def _groups(orgs: Any, teams: Any) -> tuple[str, ...]:
    """`org` for each organisation and `org/team-slug` for each team (oauth2-proxy's github-org/-team)."""
    groups = (
        [o["login"] for o in orgs if isinstance(o, dict) and isinstance(o.get("login"), str)]
        if isinstance(orgs, list)
        else []
    )
    for team in teams if isinstance(teams, list) else []:
        org = team.get("organization", {}).get("login") if isinstance(team, dict) else None
        if isinstance(org, str) and isinstance(team.get("slug"), str):
            groups.append(f"{org}/{team['slug']}")
    return tuple(dict.fromkeys(groups))
