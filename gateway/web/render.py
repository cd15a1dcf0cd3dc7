"""HTML pages: Jinja2 templates (autoescaped), with headers that keep them out of frames and caches."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.config.branding import Branding


def _loader() -> jinja2.BaseLoader:
    """The pages shipped inside the package (gateway/templates, in every wheel and sdist), or the directory
    MCP_GATEWAY_TEMPLATES_DIR names when an operator serves customised copies."""
    configured = os.environ.get("MCP_GATEWAY_TEMPLATES_DIR")
    if configured:
        return jinja2.FileSystemLoader(configured)
    return jinja2.PackageLoader("gateway", "templates")


PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    # no form-action: browsers apply it to the redirect back to the client after the consent POST
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_environment = jinja2.Environment(loader=_loader(), autoescape=True, undefined=jinja2.StrictUndefined)
_environment.filters["when"] = lambda epoch: (
    datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch else "-"
)
DEFAULT_BRANDING = Branding()  # (frozen)
_BRANDING: ContextVar[Branding] = ContextVar("branding", default=DEFAULT_BRANDING)  # the request's (branded_pages)


def branded_pages(branding: Branding) -> Any:
    """A middleware: the pages this application renders carry `branding` (one application's, for each of its
    requests: a reload's new branding applies to the requests its application serves)."""

    @web.middleware
    async def branded(request: web.Request, handler: Handler) -> web.StreamResponse:
        with using_branding(branding):
            return await handler(request)

    return branded


@contextmanager
def using_branding(branding: Branding) -> Iterator[None]:
    """The pages rendered inside carry `branding` (the task's own: concurrent requests do not see it)."""
    token = _BRANDING.set(branding)
    try:
        yield
    finally:
        _BRANDING.reset(token)


def render(template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    branding = _BRANDING.get()
    body = _environment.get_template(template).render(**context, branding=branding)
    headers = PAGE_HEADERS
    if branding.logo_url is not None and branding.logo_url.startswith("https://"):  # (its origin in img-src)
        policy = PAGE_HEADERS["Content-Security-Policy"].replace(
            "img-src 'self' data:", f"img-src {branding.image_sources}"
        )
        headers = {**PAGE_HEADERS, "Content-Security-Policy": policy}
    return web.Response(text=body, status=status, content_type="text/html", headers=headers)


def html_error(title: str, detail: str, *, status: int = 400) -> web.Response:
    """An error shown to the person in the browser, used where redirecting would be unsafe."""
    return render("error.html", {"title": title, "detail": detail}, status=status)
