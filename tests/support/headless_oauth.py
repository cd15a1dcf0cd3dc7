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
            self.forms.append(
                {"action": a.get("action", ""), "method": a.get("method", "get"), "fields": {}, "buttons": []}
            )
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
    provider: str | None = None  # click this provider's button instead of the password form
    idp_subject: str | None = None  # who to be at the identity provider's (mock) sign-in form
    provider_callbacks: list[str] = field(default_factory=list)  # every gateway callback URL the IdP sent
    # other gateways the walk may pass through (an upstream's own authorization server): origin -> who to be there
    logins: dict[str, tuple[str, str]] = field(default_factory=dict)

    async def redirect_handler(self, authorization_url: str) -> None:
        self.result = await self.authorize(authorization_url)

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self.result is not None and "code" in self.result, f"no code: {self.result}"
        return AuthorizationCodeResult(
            code=self.result["code"], state=self.result.get("state"), iss=self.result.get("iss")
        )

    async def authorize(self, url: str) -> dict[str, str]:
        """Walk login, consent and (when `provider` is set) the provider's sign-in; return the query parameters
        of the redirect back to the client (code/state/iss or error). A non-200 page ends the walk: its
        status and body are in `self.pages` / the returned {"status": …} dict."""
        gateway = _origin(url)
        async with aiohttp.ClientSession(cookie_jar=self.jar) as http:
            response = await http.get(url, allow_redirects=False)
            for _ in range(16):
                if response.status in (302, 303):
                    location = urljoin(str(response.url), response.headers["Location"])
                    if _origin(location) in {gateway, *self.logins}:  # the gateways' own redirects
                        response = await http.get(location, allow_redirects=False)
                        continue
                    if (
                        self.provider is not None
                        and not location.startswith(gateway)
                        and "code=" not in location
                        and "error=" not in location
                    ):
                        response = await self._provider_sign_in(http, location)
                        continue
                    self.last_location = location
                    query = parse_qs(urlsplit(location).query)
                    return {k: v[0] for k, v in query.items()}
                html = await response.text()
                self.pages.append(html)
                if response.status != 200:
                    return {"status": str(response.status)}
                forms = parse_forms(html)
                if not forms:  # a page that ends the walk (connected, an error shown with 200)
                    return {"status": "200"}
                form = next(
                    (f for f in forms if self.provider is not None and f["action"] == "/authorize/provider"), forms[0]
                )
                data = dict(form["fields"])
                if form["action"] == "/authorize/provider":
                    data["provider"] = self.provider or ""
                elif "password" in data:
                    username, password = self.logins.get(_origin(str(response.url)), (self.username, self.password))
                    data.update(username=username, password=password)
                else:
                    data["decision"] = self.decision
                    options = form.get("options", {}).get("resource")
                    if options:
                        data["resource"] = self.resource or options[0]
                response = await http.post(urljoin(str(response.url), form["action"]), data=data, allow_redirects=False)
            raise AssertionError("too many pages")

    async def _provider_sign_in(self, http: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
        """At the provider: its sign-in form takes a subject (oidc-provider-mock and our GitHub stand-in)."""
        page = await http.get(url, allow_redirects=False)
        if page.status in (302, 303):
            return page
        assert page.status == 200, await page.text()
        answer = await http.post(url, data={"sub": self.idp_subject or self.username}, allow_redirects=False)
        assert answer.status in (302, 303), await answer.text()
        location = answer.headers["Location"]
        self.provider_callbacks.append(location)
        return await http.get(location, allow_redirects=False)


def _origin(url: str) -> str:
    return "{0.scheme}://{0.netloc}".format(urlsplit(url))


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


def oauth_provider(
    server_url: str,
    browser: Browser,
    storage: MemoryStorage,
    *,
    client_metadata_url: str | None = None,
    auth_method: str = "none",
    redirect_uri: str = "http://127.0.0.1:33418/callback",
    scope: str | None = None,
) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(
        client_name="headless test client",
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method=auth_method,
        scope=scope,
    )
    return OAuthClientProvider(
        server_url,
        metadata,
        storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
        client_metadata_url=client_metadata_url,
    )
