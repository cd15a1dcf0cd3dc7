"""When a remembered approval may stand in for the consent page (our choice; RFC 8252 §8.6, MCP security best
practices "Consent").

A public client has no secret, so anyone can start /authorize with its client_id. When its redirect goes to this
computer (loopback, any port; or a private-use scheme any local app can claim), another local process can be the
one receiving the code: such a request skips the page only for the exact redirect URI, port included, that the
person approved before."""

from __future__ import annotations

from ipaddress import ip_address
from urllib.parse import urlsplit

from gateway.store.records import ClientRecord, ConsentRecord

MAX_REMEMBERED_REDIRECTS = 10  # per (user, client, route); the oldest is forgotten first


def is_native_redirect(uri: str) -> bool:
    """A redirect that any local process may be listening on: a loopback host, or not http(s) at all."""
    try:
        parts = urlsplit(uri)
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        return True  # unreadable: the careful answer
    if parts.scheme.lower() not in ("http", "https"):
        return True
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761 §6.3
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def may_skip_consent(
    remembered: ConsentRecord | None, scopes: tuple[str, ...], client: ClientRecord, redirect_uri: str
) -> bool:
    """True when `remembered` covers these scopes and, for a public native client, this exact redirect URI."""
    if remembered is None or not set(scopes) <= set(remembered.scopes):
        return False
    if client.is_public and is_native_redirect(redirect_uri):
        return redirect_uri in remembered.redirect_uris
    return True


def build_consent(
    previous: ConsentRecord | None, scopes: tuple[str, ...], redirect_uri: str, *, now: float
) -> ConsentRecord:
    """The approval just given, keeping the redirect URIs approved before (bounded, most recent last)."""
    earlier = [u for u in (previous.redirect_uris if previous is not None else ()) if u != redirect_uri]
    uris = (*earlier, redirect_uri)[-MAX_REMEMBERED_REDIRECTS:]
    return ConsentRecord(scopes=scopes, granted_at=now, redirect_uris=uris)
