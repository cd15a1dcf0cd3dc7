"""HTML pages: Jinja2 templates (autoescaped), with headers that keep them out of frames and caches."""

from __future__ import annotations

import os
from typing import Any

import jinja2
from aiohttp import web


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


def render(template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    body = _environment.get_template(template).render(**context)
    return web.Response(text=body, status=status, content_type="text/html", headers=PAGE_HEADERS)


def html_error(title: str, detail: str, *, status: int = 400) -> web.Response:
    """An error shown to the person in the browser, used where redirecting would be unsafe."""
    return render("error.html", {"title": title, "detail": detail}, status=status)
