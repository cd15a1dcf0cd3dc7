"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25+ "CIMD").

Fetch rules: 200 only, no redirects, JSON with `client_id` equal to the URL, no shared-secret auth; the bounds
on a fetch (size, deadline, concurrency, remembered failures) live in `gateway.clients.cimd_limits`. SSRF: hosts
resolving to special-use addresses are refused and the connection goes to the address that was checked (the
resolver below is the only source of addresses), unless the host is explicitly allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections.abc import Collection
from urllib.parse import unquote, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.clients.cimd_limits import (
    MAX_RESPONSE_HEADERS,
    READ_BUFFER_BYTES,
    CimdBusyError,
    CimdError,
    CimdUnreachableError,
    FetchSlots,
    OwnThreadLookups,
    RememberedFailures,
    check_response_headers,
    read_capped,
)
from gateway.config import CimdSettings
from gateway.oauth.client_metadata import optional_string, parse_metadata_json, parse_redirect_uris, string_array
from gateway.oauth.display_text import host_problem
from gateway.oauth.errors import OAuthError
from gateway.oauth.redirects import DEFAULT_PRIVATE_USE_SCHEMES
from gateway.store.records import ClientRecord

_MAX_AGE = re.compile(r"max-age=(\d+)")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


__all__ = ["CimdBusyError", "CimdError", "CimdFetcher", "check_url", "is_cimd_client_id", "parse_document"]


def is_cimd_client_id(client_id: str) -> bool:
    return client_id.startswith("https://")


def check_url(url: str) -> None:
    """CIMD "Client Identifier": https, a path, no dot segments, fragment, user info or query; ASCII, and a host
    that is not punycode (it is how the consent page names the client)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise CimdError("the client_id is not a valid URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise CimdError("a URL client_id must use https")
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):  # shown on the consent page as is
        raise CimdError("a URL client_id must be ASCII without spaces or control characters")
    if problem := host_problem(parts.hostname):  # its host names the client on the consent page
        raise CimdError(f"a URL client_id: {problem}")
    if parts.path in ("", "/") or any(unquote(seg) in (".", "..") for seg in parts.path.split("/")):
        raise CimdError("a URL client_id needs a path without dot segments")  # %2e%2e is a dot segment too
    if parts.fragment or "#" in url or "?" in url or parts.username is not None or parts.password is not None:
        raise CimdError("a URL client_id must not carry a fragment, user info or query")


_PRIVATE_ADDRESS = "the client_id URL points at a private or special-use address"
_UNREACHABLE = "the client metadata document could not be fetched"


def special_use(address: str) -> bool:
    """Loopback, RFC 1918, link-local, ULA, CGNAT, multicast, reserved …: anything not globally routable."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = (
            ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None)
        )
        if embedded is not None:  # judge the IPv4 address it carries (mapped, 6to4, NAT64)
            ip = embedded
    return not ip.is_global or ip.is_multicast  # Python counts some multicast ranges as global


class SpecialUseAddressError(OSError):
    """Every address of the host is special-use (raised by the resolver, surfaced by aiohttp as a DNS error)."""


class GuardedResolver(AbstractResolver):
    """Resolves through the system resolver and drops special-use answers for hosts not explicitly allowed."""

    def __init__(self, allow_hosts: list[str], threads: int) -> None:
        self._inner = OwnThreadLookups(threads)
        self._allow = {h.lower() for h in allow_hosts}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        if host.lower() in self._allow:
            return answers
        safe = [a for a in answers if not special_use(a["host"])]
        if not safe:
            raise SpecialUseAddressError(f"{host} resolves only to special-use addresses")
        return safe

    async def close(self) -> None:
        self._inner.close()


class CimdFetcher:
    def __init__(
        self, settings: CimdSettings, private_use_schemes: Collection[str] = DEFAULT_PRIVATE_USE_SCHEMES
    ) -> None:
        self._settings = settings
        self._private_use_schemes = tuple(private_use_schemes)
        self._allow = {h.lower() for h in settings.allow_hosts}
        self._slots = FetchSlots(settings.max_concurrent_fetches, settings.max_fetches_per_host)
        self._failures = RememberedFailures(settings.failure_cache_seconds)
        context = ssl.create_default_context()
        if settings.ca_file is not None:
            context.load_verify_locations(cafile=str(settings.ca_file))
        resolver = GuardedResolver(settings.allow_hosts, threads=settings.max_concurrent_fetches)
        connector = aiohttp.TCPConnector(
            resolver=resolver, ssl=context, limit=settings.max_concurrent_fetches, use_dns_cache=False
        )
        self._http = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=settings.timeout),
            auto_decompress=False,  # the size cap counts the bytes received; nothing is inflated
            max_headers=MAX_RESPONSE_HEADERS,
            read_bufsize=READ_BUFFER_BYTES,
        )

    async def close(self) -> None:
        await self._http.close()

    async def fetch(self, url: str, *, now: float) -> tuple[ClientRecord, int]:
        """The client described at `url` and how many seconds it may be cached (0: not at all).

        Raises:
            CimdBusyError: too many fetches are running (in total or to this host); nothing was fetched.
            CimdUnreachableError: the host did not answer within `cimd.timeout` or could not be reached
                (never remembered: anyone can cause it for someone else's URL).
            CimdError: with a reason fit for the user and the logs; a failure that depends on the document
                (status, media type, size, content, private address) is remembered for
                `cimd.failure_cache_seconds`, during which the same URL fails again without a fetch.
        """
        check_url(url)
        host = (urlsplit(url).hostname or "").rstrip(".")
        literal = _ip_literal(host)
        if literal and special_use(literal) and host not in self._allow:
            raise CimdError(_PRIVATE_ADDRESS)
        remembered = self._failures.recall(url, now=now)
        if remembered is not None:
            raise CimdError(remembered)
        with self._slots.take(host):
            try:
                async with asyncio.timeout(self._settings.timeout):  # one deadline: DNS, connect, headers, body
                    body, cache_control = await self._get(url)
                record = parse_document(url, body, now=now, private_use_schemes=self._private_use_schemes)
            except (CimdBusyError, CimdUnreachableError):
                raise
            except CimdError as error:
                self._failures.remember(url, str(error), now=now)
                raise
            except TimeoutError:
                message = f"the client metadata document could not be fetched within {self._settings.timeout} s"
                raise CimdUnreachableError(message) from None
        return record, self._cache_seconds(cache_control)

    async def _get(self, url: str) -> tuple[bytes, str]:
        """(body, Cache-Control) of a 200 JSON answer no larger than `cimd.max_bytes`.

        Raises:
            CimdUnreachableError: the host could not be reached or broke off.
            CimdError: another status, a redirect, a bad media type or encoding, too large, a private address.
        """
        limit = self._settings.max_bytes
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        try:
            async with self._http.get(url, allow_redirects=False, headers=headers) as resp:
                if resp.status != 200:
                    raise CimdError(f"fetching the client metadata document gave HTTP {resp.status} (200 required)")
                check_response_headers(resp.headers, limit)
                return await read_capped(resp.content, limit), resp.headers.get("Cache-Control", "")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, SpecialUseAddressError):
                raise CimdError(_PRIVATE_ADDRESS) from None
            raise CimdUnreachableError(f"{_UNREACHABLE} ({type(exc).__name__})") from None
        except aiohttp.ClientError as exc:
            raise CimdUnreachableError(f"{_UNREACHABLE} ({type(exc).__name__})") from None
        except SpecialUseAddressError:
            raise CimdError(_PRIVATE_ADDRESS) from None
        except OSError:
            raise CimdUnreachableError(f"{_UNREACHABLE} (address refused)") from None

    def _cache_seconds(self, cache_control: str) -> int:
        lowered = cache_control.lower()
        if "no-store" in lowered or "no-cache" in lowered:
            return 0
        match = _MAX_AGE.search(lowered)
        wanted = int(match.group(1)) if match else self._settings.cache_min_seconds
        return max(self._settings.cache_min_seconds, min(wanted, self._settings.cache_max_seconds))


def parse_document(
    url: str, body: bytes, *, now: float, private_use_schemes: Collection[str] = DEFAULT_PRIVATE_USE_SCHEMES
) -> ClientRecord:
    """The client a metadata document describes, under the same reader and bounds as a DCR body
    (`gateway.oauth.client_metadata`): strict UTF-8 JSON, valid Unicode, bounded strings and redirect URIs.

    Raises:
        CimdError: not a JSON object, client_id mismatch, missing or oversized fields, or shared-secret
            authentication.
    """
    try:
        document = parse_metadata_json(body)
        if document.get("client_id") != url:  # simple string comparison (CIMD)
            raise CimdError("client_id in the document differs from the document's URL")
        name = optional_string(document, "client_name")
        if name is None or not name.strip():
            raise CimdError("the client metadata document has no client_name")
        method = document.get("token_endpoint_auth_method", "none")
        if method != "none" or "client_secret" in document or "client_secret_expires_at" in document:
            raise CimdError("a client metadata document cannot use a shared secret (token_endpoint_auth_method none)")
        kept, _ = parse_redirect_uris(document.get("redirect_uris"), private_use_schemes=private_use_schemes)
        grants = string_array(document, "grant_types", ["authorization_code"])
        application_type = optional_string(document, "application_type")
        if application_type is not None and application_type not in ("native", "web"):
            raise CimdError("application_type must be native or web")
        client_uri, logo_uri = optional_string(document, "client_uri"), optional_string(document, "logo_uri")
        dpop_bound = document.get("dpop_bound_access_tokens", False)
        if not isinstance(dpop_bound, bool):
            raise CimdError("dpop_bound_access_tokens must be a boolean (RFC 9449 §5.2)")
    except OAuthError as error:
        raise CimdError(f"the client metadata document is unusable: {error.description}") from None
    grant_types = tuple(g for g in ("authorization_code", "refresh_token") if g in grants)
    return ClientRecord(
        client_id=url,
        kind="cimd",
        token_endpoint_auth_method="none",
        redirect_uris=kept,
        grant_types=grant_types or ("authorization_code",),
        client_name=name.strip(),
        client_uri=client_uri,
        logo_uri=logo_uri,
        application_type=application_type,
        client_id_issued_at=int(now),
        dpop_bound_access_tokens=dpop_bound,
    )


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None
