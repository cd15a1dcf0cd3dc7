"""Every limit on fetching a Client ID Metadata Document, in one place (draft-ietf-oauth-client-id-metadata-document,
security considerations: SSRF, maximum response size; issue 10 finding 1, security review 2 R6).

An anonymous `/authorize` with an `https://` client_id makes the gateway fetch that URL, so everything about the
fetch is bounded: how many run at once (in total and per host; one more is refused at once, never queued), how
long one may take (one deadline for resolving, connecting, headers and body), how many bytes are read (counted
while reading: a Content-Length is never trusted, and nothing is decompressed), what the body must be (JSON), and
how often a failing URL is tried again (a failure that depends on the document is remembered briefly; one an
attacker can cause for someone else's URL, a timeout or an unreachable host, is not).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from aiohttp import StreamReader
from aiohttp.abc import ResolveResult
from multidict import CIMultiDictProxy

MAX_REMEMBERED_FAILURES = 1000  # URLs are chosen by anyone: the failure memory is bounded, oldest forgotten first
MAX_RESPONSE_HEADERS = 64  # a document host's headers (aiohttp's default is 128 of 8 KiB each)
READ_BUFFER_BYTES = 16 * 1024  # per connection; documents are at most a few KiB


class CimdError(Exception):
    """The document could not be used; the message is safe to show."""

    status = 400


class CimdBusyError(CimdError):
    """Too many documents are being fetched right now: try again shortly (never remembered as a failure)."""

    status = 503


class CimdUnreachableError(CimdError):
    """The host did not answer in time or could not be reached: not the document's fault, so never remembered
    (anyone can slow a fetch down, e.g. by keeping the DNS threads busy, and must not block a real client)."""


class FetchSlots:
    """At most `total` fetches at once and `per_host` to one host; a fetch beyond either is refused, not queued,
    so hosts that answer slowly cannot hold every socket or make other clients wait behind them."""

    def __init__(self, total: int, per_host: int) -> None:
        self._total, self._per_host = total, per_host
        self._running: dict[str, int] = {}  # host -> fetches in flight; at most `total` keys

    @contextmanager
    def take(self, host: str) -> Iterator[None]:
        """Hold a slot for `host` (lower case, no trailing dot) while the block runs.

        Raises:
            CimdBusyError: every slot, or every slot for this host, is taken.
        """
        if sum(self._running.values()) >= self._total or self._running.get(host, 0) >= self._per_host:
            raise CimdBusyError("too many client metadata documents are being fetched; try again shortly")
        self._running[host] = self._running.get(host, 0) + 1
        try:
            yield
        finally:
            self._running[host] -= 1
            if not self._running[host]:
                del self._running[host]


class RememberedFailures:
    """Failed fetches by URL, each for `seconds`: asking again for a URL that just failed does not fetch it again."""

    def __init__(self, seconds: int) -> None:
        self._seconds = seconds
        self._failures: dict[str, tuple[float, str]] = {}  # url -> (until, message), oldest first

    def recall(self, url: str, *, now: float) -> str | None:
        entry = self._failures.get(url)
        if entry is None or entry[0] <= now:
            self._failures.pop(url, None)
            return None
        return entry[1]

    def remember(self, url: str, message: str, *, now: float) -> None:
        if self._seconds <= 0:
            return
        self._failures.pop(url, None)
        while len(self._failures) >= MAX_REMEMBERED_FAILURES:
            del self._failures[next(iter(self._failures))]
        self._failures[url] = (now + self._seconds, message)


def check_response_headers(headers: CIMultiDictProxy[str], limit: int) -> None:
    """JSON, not encoded, and not announced as larger than `limit` (the body is counted anyway).

    Raises:
        CimdError: another media type, a Content-Encoding, or a Content-Length over the limit.
    """
    media_type = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise CimdError("the client metadata document must be served as application/json")
    if headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        raise CimdError("the client metadata document must not be compressed")  # no decompression bombs
    length = headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        raise CimdError(f"the client metadata document is larger than {limit} bytes")


async def read_capped(content: StreamReader, limit: int) -> bytes:
    """The body, read incrementally and never more than `limit` + 1 bytes.

    Raises:
        CimdError: the body is longer than `limit`.
    """
    body = bytearray()
    while len(body) <= limit:
        chunk = await content.read(limit + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
    raise CimdError(f"the client metadata document is larger than {limit} bytes")


class OwnThreadLookups:
    """getaddrinfo on threads of its own: a resolver that never answers ties up these threads only, never the
    event loop's default executor that the rest of the gateway shares."""

    def __init__(self, threads: int, getaddrinfo: Callable[..., list[Any]] = socket.getaddrinfo) -> None:
        self._getaddrinfo = getaddrinfo  # the system resolver (a test passes one that does not answer)
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cimd-dns")
        self._threads = threads
        self._running = 0  # lookups on a thread or waiting for one; a timed-out fetch leaves its lookup running
        self._lock = threading.Lock()

    def _done(self, _: object) -> None:
        with self._lock:
            self._running -= 1

    async def resolve(self, host: str, port: int, family: socket.AddressFamily) -> list[ResolveResult]:
        """The answers for `host`.

        Raises:
            CimdBusyError: every thread is busy (with lookups that have not answered): refused, never queued.
        """
        lookup = functools.partial(self._getaddrinfo, host, port, family, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)
        with self._lock:
            if self._running >= self._threads:
                raise CimdBusyError("every name lookup for client metadata documents is busy; try again shortly")
            self._running += 1
        submitted = self._executor.submit(lookup)
        submitted.add_done_callback(self._done)  # when the thread is free again, not when the fetch gives up
        infos = await asyncio.wrap_future(submitted)
        answers: list[ResolveResult] = []
        for info_family, _, proto, _, address in infos:
            if info_family == socket.AF_INET6 and (len(address) < 4 or address[3]):
                continue  # no IPv6 in this build, or a scoped (link-local) address: never a metadata host
            answers.append(
                ResolveResult(
                    hostname=host,
                    host=str(address[0]),
                    port=int(address[1]),
                    family=info_family,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        return answers

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
