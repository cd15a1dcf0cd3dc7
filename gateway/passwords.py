"""Password hashing for local accounts: argon2id with the library's current parameters (RFC 9106).

argon2 costs tens of milliseconds of CPU by design, so it never runs on the event loop: hashing and verifying run
on a small thread pool (argon2-cffi releases the GIL), and at most `MAX_PENDING` of them may be running or
waiting at once; one more is refused at once with `PasswordWorkBusyError` (the sign-in page answers 503), so a
burst of wrong-password POSTs costs a bounded amount of CPU and never stalls other requests. The pool is
process-wide on purpose: the CPU it guards is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 8
WORKERS = 2  # argon2 threads per process
MAX_PENDING = 8  # argon2 jobs running or queued per process; beyond that a sign-in is refused (503)
_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="argon2")
_pending = 0  # touched only from event-loop threads, between awaits
T = TypeVar("T")


class PasswordWorkBusyError(Exception):
    """Too many password hashes in flight in this process: try again in a moment."""


def hash_password(password: str) -> str:
    """Blocking: for import-time constants, tests and tools; the gateway awaits `hash_in_pool`."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Constant-time inside argon2; False for a wrong password or a corrupt hash (blocking: see verify_in_pool)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_in_pool(password: str) -> str:
    """`hash_password` off the event loop. Raises: PasswordWorkBusyError when MAX_PENDING are in flight."""
    return await _off_loop(hash_password, password)


async def verify_in_pool(password_hash: str, password: str) -> bool:
    """`verify_password` off the event loop. Raises: PasswordWorkBusyError when MAX_PENDING are in flight."""
    return await _off_loop(verify_password, password_hash, password)


async def _off_loop(work: Callable[..., T], *args: str) -> T:
    global _pending
    if _pending >= MAX_PENDING:
        raise PasswordWorkBusyError("too many sign-ins in progress")
    _pending += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool, work, *args)
    finally:
        _pending -= 1
