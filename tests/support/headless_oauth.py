"""A headless stand-in for the person at the browser: the SDK's OAuthClientProvider hands it the authorization
URL; it follows it over plain HTTP, fills the login form (contract field names), approves consent and hands the
code back. Cookies persist across flows, like a real browser (session reuse, remembered consent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken


class Forms(HTMLParser):
    """Every <form>: action and its fields (hidden/text inputs; the first option of a select)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"), "fields": {},
                               "buttons": []})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms and a.get("name"):
            self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))
        elif tag == "select" and self.forms:
            self._select = a.get("name")
            self.forms[-1].setdefault("options", {})[self._select] = []
        elif tag == "option" and self.forms and self._select:
            self.forms[-1]["options"][self._select].append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def parse_forms(html: str) -> list[dict[str, Any]]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


@dataclass
class Browser:
    """Logs in as `username` and answers consent with `decision`; records every page it saw."""

    username: str
    password: str
    decision: str = "approve"
    resource: str | None = None  # which route to pick when the consent page offers several
    jar: aiohttp.CookieJar = field(default_factory=lambda: aiohttp.CookieJar(unsafe=True))
    pages: list[str] = field(default_factory=list)
    result: dict[str, str] | None = None
    last_location: str | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.result = await self.authorize(authorization_url)

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self.result is not None and "code" in self.result, f"no code: {self.result}"
        return AuthorizationCodeResult(code=self.result["code"], state=self.result.get("state"),
                                       iss=self.result.get("iss"))

    async def authorize(self, url: str) -> dict[str, str]:
        """Walk login and consent; return the redirect's query parameters (code/state/iss or error)."""
        async with aiohttp.ClientSession(cookie_jar=self.jar) as http:
            response = await http.get(url, allow_redirects=False)
            for _ in range(4):
                if response.status in (302, 303):
                    self.last_location = response.headers["Location"]
                    query = parse_qs(urlsplit(self.last_location).query)
                    return {k: v[0] for k, v in query.items()}
                html = await response.text()
                self.pages.append(html)
                assert response.status == 200, f"{response.status}: {html[:500]}"
                form = parse_forms(html)[0]
                data = dict(form["fields"])
                if "password" in data:
                    data.update(username=self.username, password=self.password)
                else:
                    data["decision"] = self.decision
                    options = form.get("options", {}).get("resource")
                    if options:
                        data["resource"] = self.resource or options[0]
                response = await http.post(urljoin(str(response.url), form["action"]), data=data,
                                           allow_redirects=False)
            raise AssertionError("too many pages")


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def oauth_provider(server_url: str, browser: Browser, storage: MemoryStorage, *, client_metadata_url: str | None = None,
                   auth_method: str = "none", redirect_uri: str = "http://127.0.0.1:33418/callback",
                   scope: str | None = None) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(
        client_name="headless test client", redirect_uris=[redirect_uri], grant_types=["authorization_code",
                                                                                      "refresh_token"],
        token_endpoint_auth_method=auth_method, scope=scope,
    )
    return OAuthClientProvider(server_url, metadata, storage, redirect_handler=browser.redirect_handler,
                               callback_handler=browser.callback_handler, client_metadata_url=client_metadata_url)
