"""HTML pages: Jinja2 templates (autoescaped), with headers that keep them out of frames and caches."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web


def _templates_dir() -> Path:
    """MCP_GATEWAY_TEMPLATES_DIR, else the repository's templates/ (source checkouts, editable installs), else
    the copy a wheel installs under {prefix}/share/mcp-auth-gateway/templates."""
    configured = os.environ.get("MCP_GATEWAY_TEMPLATES_DIR")
    if configured:
        return Path(configured)
    source = Path(__file__).resolve().parents[2] / "templates"
    return source if source.is_dir() else Path(sys.prefix) / "share" / "mcp-auth-gateway" / "templates"


TEMPLATES_DIR = _templates_dir()
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    # no form-action: browsers apply it to the redirect back to the client after the consent POST
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=jinja2.StrictUndefined
)


def render(template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    body = _environment.get_template(template).render(**context)
    return web.Response(text=body, status=status, content_type="text/html", headers=PAGE_HEADERS)


def html_error(title: str, detail: str, *, status: int = 400) -> web.Response:
    """An error shown to the person in the browser, used where redirecting would be unsafe."""
    return render("error.html", {"title": title, "detail": detail}, status=status)
