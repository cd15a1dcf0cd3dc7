"""`branding` on every page: validated config, the name/logo/links/colours in the rendered pages, and a remote logo's
origin (only that) added to the pages' Content-Security-Policy img-src."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, Settings
from tests.conftest import route


def settings(**branding: object) -> Settings:
    return Settings(
        public_url="http://127.0.0.1:8080", routes=[route("a", "http://127.0.0.1:9/mcp")], branding=branding
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("accent_color", "red"),
        ("accent_color", "#12345"),
        ("logo_url", "http://cdn.example/logo.png"),
        ("logo_url", "//cdn.example/logo.png"),
        ("logo_url", "javascript:alert(1)"),
        ("logo_url", "https://user:pw@cdn.example/logo.png"),
        ("logo_url", "https://cdn.example; script-src 'unsafe-inline'; x/l.png"),  # (CSP directives smuggled in)
        ("logo_url", "https://cdn.example/a b.png"),
        ("logo_url", "/logo.png;frame-ancestors *"),
        ("support_url", "javascript:alert(1)"),
        ("terms_url", "ftp://acme.example/terms"),
        ("product_name", ""),
        ("product_name", "x" * 81),
        ("colour", "#000000"),
    ],
)
def test_bad_branding_is_a_configuration_error_naming_the_key(key, value):
    with pytest.raises(ConfigError) as raised:
        settings(**{key: value})
    assert any(problem.startswith(f"branding.{key}") for problem in raised.value.problems), raised.value.problems


async def test_every_page_carries_the_branding_and_a_remote_logo_is_allowed_by_its_origin_only(start_gateway, upstream):
    branding = {
        "product_name": "Acme <MCP>",
        "logo_url": "https://cdn.acme.example/logo.svg",
        "accent_color": "#123456",
        "support_url": "mailto:help@acme.example",
        "terms_url": "https://acme.example/terms",
        "privacy_url": "https://acme.example/privacy",
    }
    server = await start_gateway([route("notes", upstream.url)], branding=branding)
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(str(server.make_url("/authorize?client_id=nobody"))) as response:
            page = await response.text()
            policy = response.headers["Content-Security-Policy"]
    assert "<title>Unknown application · Acme &lt;MCP&gt;</title>" in page or "· Acme &lt;MCP&gt;</title>" in page
    assert '<img src="https://cdn.acme.example/logo.svg"' in page
    assert 'href="mailto:help@acme.example">Help' in page and 'href="https://acme.example/privacy">Privacy' in page
    assert "--accent: #123456" in page
    assert "img-src 'self' data: https://cdn.acme.example;" in policy
    assert "default-src 'none'" in policy


async def test_without_branding_the_pages_keep_the_default_name_and_policy(start_gateway, upstream):
    server = await start_gateway([route("notes", upstream.url)])
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(str(server.make_url("/authorize?client_id=nobody"))) as response:
            page = await response.text()
            policy = response.headers["Content-Security-Policy"]
    assert "· MCP gateway</title>" in page and "<footer" not in page
    assert "img-src 'self' data:;" in policy
