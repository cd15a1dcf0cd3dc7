"""`branding`: the name, logo, colours and links every page shows (login, consent, errors, the user's own pages and
the admin console), from one template set."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from gateway.config.base import Model

_COLOUR = r"^#[0-9a-fA-F]{6}$"
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")  # (its origin goes into the pages' CSP: nothing else may)
_URL_TEXT = re.compile(r"^[A-Za-z0-9._~:/?#@!$&'()*+=%-]+$")  # no space, quote, comma, semicolon, backslash


class Branding(Model):
    product_name: str = Field(
        default="MCP gateway", min_length=1, max_length=80, description="Shown in every page's title and header."
    )
    logo_url: str | None = Field(
        default=None,
        description="An https:// image (its origin is added to the pages' img-src), a path on this gateway, or a "
        "data:image/… URI; shown above every page's heading.",
    )
    accent_color: str = Field(default="#2f6fed", pattern=_COLOUR, description="Buttons and links (light scheme).")
    accent_color_dark: str = Field(default="#6f9bff", pattern=_COLOUR, description="The same in the dark scheme.")
    support_url: str | None = Field(default=None, description="'Help' link in every page's footer (https or mailto).")
    terms_url: str | None = Field(default=None, description="The organisation's terms, linked in every footer.")
    privacy_url: str | None = Field(default=None, description="The organisation's privacy notice, likewise.")

    @field_validator("logo_url")
    @classmethod
    def _logo(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith("data:image/") and len(value) <= 64 * 1024:
            return value
        if value.startswith("/") and not value.startswith("//") and _URL_TEXT.match(value):
            return value
        parts = urlsplit(value)
        if parts.scheme != "https" or not _HOST.match(parts.netloc) or not _URL_TEXT.match(value):
            raise ValueError("must be an https:// URL, a path on this gateway, or a data:image/ URI up to 64 KiB")
        return value

    @field_validator("support_url", "terms_url", "privacy_url")
    @classmethod
    def _link(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme == "mailto" and parts.path:
            return value
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
            raise ValueError("must be an http(s):// or mailto: URL")
        return value

    @property
    def image_sources(self) -> str:
        """The pages' CSP img-src: this gateway, data: URIs, and the logo's origin when it is elsewhere."""
        if self.logo_url is None or not self.logo_url.startswith("https://"):
            return "'self' data:"
        parts = urlsplit(self.logo_url)
        return f"'self' data: https://{parts.netloc}"
