"""What the admin service raises: `AdminError(status, code, message)`, rendered once by the API (JSON) and once by
the CLI (one line)."""

from __future__ import annotations

from typing import Literal

AdminErrorCode = Literal[
    "invalid_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "request_timeout",
    "payload_too_large",
    "unsupported_media_type",
    "store_unavailable",
]


class AdminError(Exception):
    """A refusal with its HTTP status, an error code and a one-line message (no secrets, no input echoed)."""

    def __init__(self, status: int, code: AdminErrorCode, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, " ".join(message.split())


def bad_request(message: str) -> AdminError:
    return AdminError(400, "invalid_request", message)


def not_found(message: str) -> AdminError:
    return AdminError(404, "not_found", message)


def conflict(message: str) -> AdminError:
    return AdminError(409, "conflict", message)


def forbidden(message: str) -> AdminError:
    return AdminError(403, "forbidden", message)
