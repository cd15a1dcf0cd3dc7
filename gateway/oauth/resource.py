"""Canonical resource identifiers and audience checks (RFC 8707 §2, RFC 9728 §3, MCP "Canonical Server URI")."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

PRM_WELL_KNOWN = "/.well-known/oauth-protected-resource"


def canonical_resource(origin: str, path: str) -> str:
    """`https://gw.example.com` + `/notes/mcp` -> the resource string advertised byte for byte."""
    return origin + path


def normalize_resource(url: str) -> str:
    """Lowercase scheme and host, drop a fragment and a bare root slash, so equivalent spellings compare equal."""
    parts = urlsplit(url.strip())
    path = "" if parts.path == "/" else parts.path
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def same_resource(a: str, b: str) -> bool:
    """Audience comparison: scheme and host case-insensitive, everything else exact (MCP RS-8).
    A string that does not parse as a URL is the same as nothing."""
    try:
        return normalize_resource(a) == normalize_resource(b)
    except ValueError:
        return False


def metadata_url(resource: str) -> str:
    """RFC 9728 §3.1: insert the well-known segment between the origin and the resource's path."""
    parts = urlsplit(resource)
    path = "" if parts.path == "/" else parts.path
    return urlunsplit((parts.scheme, parts.netloc, PRM_WELL_KNOWN + path, parts.query, ""))
