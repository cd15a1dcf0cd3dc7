"""What the store raises. Its own module, below every other store module: the protocol, the Redis parts and the
callers all import it, and it imports none of them (no cycle through the protocol)."""

from __future__ import annotations


class StoreUnavailableError(Exception):
    """Redis could not be reached in time: callers answer 503 and fail closed."""


class EmbeddedStoreError(Exception):
    """The embedded Redis could not be started (one line, naming the directory and the reason)."""
