"""Which configured route serves a request, and the public URLs each route advertises."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.config import Route, Settings
from gateway.oauth.resource import PRM_WELL_KNOWN, canonical_resource, metadata_url


@dataclass(frozen=True)
class RouteInfo:
    """A configured route with its derived public identifiers."""

    route: Route
    host: str  # lowercase host[:port] the route answers on
    resource: str  # canonical resource URL, advertised byte for byte
    metadata_url: str  # absolute URL of its RFC 9728 document
    prm_path: str  # path part of metadata_url


class RouteTable:
    """Resolve (Host, path) to a route; both `/x/mcp` and `/x/mcp/` match, never via a redirect."""

    def __init__(self, settings: Settings) -> None:
        public = urlsplit(settings.public_url)
        self.default_host = public.netloc.lower()
        self.routes: list[RouteInfo] = []
        for route in settings.routes:
            host = (route.host or public.netloc).lower()
            origin = f"{public.scheme}://{host}" if route.host else settings.public_url
            resource = canonical_resource(origin, route.path)
            prm = metadata_url(resource)
            self.routes.append(RouteInfo(route, host, resource, prm, urlsplit(prm).path))
        self._by_endpoint = {(info.host, info.route.path.rstrip("/") or "/"): info for info in self.routes}
        self._by_prm = {(info.host, info.prm_path): info for info in self.routes}
        self._by_name = {info.route.name: info for info in self.routes}
        self._hosts = frozenset(info.host for info in self.routes)

    def endpoint_paths(self) -> set[str]:
        """Every path aiohttp must answer for MCP traffic (with and without the trailing slash), and each route's
        legacy HTTP+SSE endpoints (gateway.web.legacy_sse)."""
        paths = set()
        for info in self.routes:
            base = info.route.path.rstrip("/")
            paths.update({base or "/", base + "/", base + "/sse", base + "/messages", base + "/messages/"})
        return paths

    def prm_paths(self) -> set[str]:
        return {info.prm_path for info in self.routes} | {info.prm_path + "/" for info in self.routes}

    def match(self, host: str, path: str) -> RouteInfo | None:
        key_path = path.rstrip("/") or "/"
        return self._by_endpoint.get((self._host(host), key_path))

    def match_metadata(self, host: str, path: str) -> RouteInfo | None:
        """The route whose PRM lives at `path`; the root document only when unambiguous (MCP RS-3)."""
        host = self._host(host)
        path = path.rstrip("/") if path != PRM_WELL_KNOWN + "/" else PRM_WELL_KNOWN
        if path == PRM_WELL_KNOWN:
            on_host = [info for info in self.routes if info.host == host]
            if len(on_host) == 1:
                return on_host[0]
            return self._by_endpoint.get((host, "/"))
        return self._by_prm.get((host, path))

    def by_name(self, name: str) -> RouteInfo:
        return self._by_name[name]

    def canonical_host(self, host: str) -> str:
        """The request's host if a route answers on it, else public_url's host."""
        return self._host(host)

    def _host(self, host: str) -> str:
        host = host.lower()
        return host if host in self._hosts else self.default_host
