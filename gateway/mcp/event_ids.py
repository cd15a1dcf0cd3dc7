"""SSE event ids bound to the caller (MCP 2025-11-25 Streamable HTTP "Resumability and Redelivery"; WHATWG HTML
§9.2.6 `id` field and the `Last-Event-ID` header).

An upstream's event store replays a stream to whoever presents one of its event ids; it rarely checks who asks
(and 2026-07-28 has no session to check). So every `id:` the gateway relays becomes
`<upstream id>.<MAC>`, the MAC an HMAC-SHA256 (RFC 2104) under a deployment secret over (user, client, route,
upstream id), and a `Last-Event-ID` reaches the upstream only as the upstream id it was made from, and only from
the caller it was issued to on the route it was issued for. Anything else is refused before the upstream."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from gateway.mcp.sse import field_name, field_value
from gateway.store.base import KeyStore

EVENT_ID_SECRET = "sse-event-ids"  # the store's name for the deployment secret that keys the MACs
MAX_UPSTREAM_EVENT_ID = 256  # longer upstream ids are not bound (the client gets an empty id: no resumption)
MAX_ID_LINE = len(b"id: ") + MAX_UPSTREAM_EVENT_ID  # a longer `id` line holds no bindable id
MAC_LENGTH = 22  # base64url characters of the truncated MAC (16 bytes, 128 bits)
MAX_LAST_EVENT_ID = MAX_UPSTREAM_EVENT_ID + 1 + MAC_LENGTH  # longer Last-Event-ID headers are refused unread
# what a client echoes back unchanged in a header: visible ASCII, no spaces (HTTP trims them)
_BINDABLE = re.compile(rb"[\x21-\x7e]{1,%d}" % MAX_UPSTREAM_EVENT_ID)


@dataclass(frozen=True)
class EventIdBinding:
    """The event-id MACs of one caller (user and client) on one route."""

    key: bytes
    principal: bytes  # canonical (user, client, route)

    def seal(self, upstream_id: bytes) -> bytes:
        """The id the client sees; empty when the upstream's id cannot be carried back unchanged."""
        if _BINDABLE.fullmatch(upstream_id) is None:
            return b""
        return upstream_id + b"." + self._mac(upstream_id)

    def open(self, presented: str) -> str | None:
        """The upstream id a `Last-Event-ID` was made from, or None when it was not issued to this caller here."""
        if len(presented) > MAX_LAST_EVENT_ID or not presented.isascii():
            return None
        upstream_id, dot, mac = presented.encode("ascii").rpartition(b".")
        if not dot or _BINDABLE.fullmatch(upstream_id) is None:
            return None
        if not hmac.compare_digest(mac, self._mac(upstream_id)):
            return None
        return upstream_id.decode("ascii")

    def rewrite(self, lines: list[bytes]) -> list[bytes]:
        """One SSE event's lines (an EventRewrite of gateway.mcp.sse) with every `id` sealed; an `id` holding NUL,
        which clients ignore (§9.2.6), becomes an empty comment line (`:`, ignored too; dropping the line could
        join a CR before it and an LF after it into one line end and lose an event boundary); an empty `id` (a
        reset) stays. The same list when there is none."""
        if not any(field_name(line) == b"id" for line in lines):
            return lines
        out = []
        for line in lines:
            if field_name(line) != b"id":
                out.append(line)
            elif b"\0" in (value := field_value(line)):
                out.append(b":")
            else:
                out.append(b"id: " + self.seal(value) if value else b"id")
        return out

    def _mac(self, upstream_id: bytes) -> bytes:
        digest = hmac.new(self.key, self.principal + b"\0" + upstream_id, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest)[:MAC_LENGTH]


class EventIds:
    """Makes bindings; the key is a deployment secret kept in the store (created by the first instance that needs
    it, like the audit digest key) and held in memory once loaded."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store
        self._key: bytes | None = None

    async def binding(self, user_id: str, client_id: str, route: str) -> EventIdBinding:
        """Raises StoreUnavailableError while the key was never loaded and the store is down (then 503)."""
        if self._key is None:
            self._key = bytes.fromhex(await self._store.load_or_create_secret(EVENT_ID_SECRET))
        principal = json.dumps([user_id, client_id, route], ensure_ascii=True).encode("ascii")
        return EventIdBinding(self._key, principal)
