"""Redirect URI rules: registration policy (MCP "Communication Security", RFC 8252 §7) and matching
(exact string, except any port on loopback: RFC 8252 §7.3, OAuth 2.1 §4.1.1)."""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import urlencode, urlsplit, urlunsplit

from gateway.oauth.display_text import host_problem

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
DANGEROUS_SCHEMES = frozenset(
    {
        "javascript",
        "data",
        "file",
        "vbscript",
        "about",
        "blob",
        "filesystem",
        "ftp",
        "ws",
        "wss",
        "mailto",
        "tel",
        "sms",
        "intent",
        "chrome",
        "view-source",
    }
)
MAX_REDIRECT_URI_LENGTH = 2000  # characters; real callbacks are < 200 (and browsers cap URLs near 2 KB anyway)
# Private-use schemes without a period that well-known MCP clients register (RFC 8252 §7.1 asks for reverse-DNS
# names; these predate that habit): `oauth.private_use_schemes` replaces the list.
DEFAULT_PRIVATE_USE_SCHEMES = ("cursor", "vscode", "vscode-insiders", "windsurf")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")  # RFC 3986 §3.1, lowercased
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_TLD = re.compile(r"^[a-z]{2,63}$")  # top-level domains are alphabetic (RFC 1123 §2.1 and IANA practice)


def redirect_uri_problem(uri: str, *, private_use_schemes: Collection[str] | None = None) -> str | None:
    """Why `uri` may not be registered, or None when it may: https anywhere, http on loopback only,
    private-use schemes for native apps; ASCII only, https hosts never punycode (`xn--`: homographs on the consent
    page); no fragments, no user info, at most MAX_REDIRECT_URI_LENGTH characters.

    `private_use_schemes` is the registration policy for private-use schemes (RFC 8252 §7.1): a reverse-DNS
    scheme (`com.example.app:/cb`, a period in it) or one of these (`cursor://…`). Every place that *accepts* a
    redirect URI passes it (DCR, CIMD, `clients add`, YAML clients, clients loaded from the store). None checks
    the URI's form only: for a URI being matched against ones registered under the policy (/authorize)."""
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        return f"longer than {MAX_REDIRECT_URI_LENGTH} characters"
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "not a URI"
    scheme = parts.scheme.lower()
    if not scheme or any(c.isspace() or c == "\\" or ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        return "not an absolute URI (or contains whitespace, control characters or a backslash)"
    if not uri.isascii():  # RFC 3986 URIs are ASCII; raw Unicode could hide bidi controls or homographs
        return "must be ASCII (percent-encode other characters; internationalized hosts are refused)"
    if parts.fragment or "#" in uri:
        return "must not contain a fragment"
    if parts.username is not None or parts.password is not None:
        return "must not contain user info"
    if scheme in DANGEROUS_SCHEMES:
        return f"scheme {scheme}: is not allowed"
    if scheme == "https":
        return host_problem(parts.hostname) if parts.hostname else "https URI without a host"
    if scheme == "http":
        return None if _is_loopback(parts.hostname) else "http is allowed only on loopback hosts"
    if private_use_schemes is None or is_reverse_dns_scheme(scheme) or scheme in private_use_schemes:
        return None  # private-use scheme (RFC 8252 §7.1)
    return (
        f"private-use scheme {scheme}: must be a reverse domain name such as com.example.app "
        "(RFC 8252 §7.1) or listed in oauth.private_use_schemes"
    )


def is_reverse_dns_scheme(scheme: str) -> bool:
    """`com.example.app`: two or more DNS labels joined by periods, the first shaped like a top-level domain
    (letters only, at least two: `a.b` or `1.app` name no domain anyone controls) (RFC 8252 §7.1, RFC 7595 §3.8)."""
    labels = scheme.lower().split(".")
    return len(labels) >= 2 and bool(_TLD.match(labels[0])) and all(_DNS_LABEL.match(label) for label in labels)


def private_use_scheme_problem(scheme: str) -> str | None:
    """Why `scheme` may not be allowed as a private-use redirect scheme (configuration check), or None."""
    if not _SCHEME.match(scheme):
        return f"{scheme!r} is not a lowercase URI scheme name (RFC 3986 §3.1: a letter, then letters, digits, +-.)"
    if scheme in ("http", "https") or scheme in DANGEROUS_SCHEMES:
        return f"{scheme!r} is not a private-use scheme"
    return None


def with_query(uri: str, params: dict[str, str | None]) -> str:
    """`uri` with `params` appended to any query it already has (RFC 6749 §3.1.2: keep the query)."""
    parts = urlsplit(uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def redirect_matches(registered: tuple[str, ...] | list[str], requested: str) -> bool:
    """Exact match, or the same loopback http URI on another port (clients pick a free port at run time).

    The loopback rule only applies to URIs whose authority is *exactly* a loopback host and port: parsers
    disagree about `http://evil.example\\@127.0.0.1:1/cb` (Python: host 127.0.0.1; browsers: evil.example)."""
    if requested in registered:
        return True
    wanted = _loopback_key(requested)
    return wanted is not None and any(_loopback_key(uri) == wanted for uri in registered)


def is_loopback_only(uris: tuple[str, ...] | list[str]) -> bool:
    """Every redirect goes to this machine: the consent page warns (MCP "Localhost Redirect URI Risks")."""
    return bool(uris) and all(_is_loopback(urlsplit(u).hostname) for u in uris)


_LOOPBACK_AUTHORITY = re.compile(r"^(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$", re.IGNORECASE)
_UNSAFE_CHARACTERS = re.compile(r"[\\\s\x00-\x1f\x7f]")


def _loopback_key(uri: str) -> tuple[str, str, str, str] | None:
    if _UNSAFE_CHARACTERS.search(uri):
        return None
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    if parts.scheme != "http" or not _LOOPBACK_AUTHORITY.match(parts.netloc):  # no user info, nothing odd
        return None
    return parts.scheme, (parts.hostname or "").lower(), parts.path or "/", parts.query


def _is_loopback(host: str | None) -> bool:
    return (host or "").lower() in LOOPBACK_HOSTS
