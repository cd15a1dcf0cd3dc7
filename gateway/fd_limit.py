"""The open-descriptor limit (RLIMIT_NOFILE), raised at start-up where the OS allows it.

Every open SSE stream holds two sockets (the client's and the upstream's), so 10,000 streams in one process need
more than 20,000 descriptors, while many systems start processes with a soft limit of 1,024 and a hard limit a
little above it. Raising the soft limit up to the hard limit needs no privilege; with CAP_SYS_RESOURCE (root in
a container) the hard limit itself may go up to the kernel's per-process ceiling, `fs.nr_open`. We stop at
1,048,576 whatever `nr_open` says: more would only hide a leak.
"""

from __future__ import annotations

import resource
from pathlib import Path

CEILING = 1_048_576  # the most we ever ask for (Linux's default fs.nr_open)
NR_OPEN = Path("/proc/sys/fs/nr_open")


def kernel_ceiling() -> int:
    """min(CEILING, fs.nr_open); CEILING where the kernel does not say (not Linux)."""
    try:
        return min(CEILING, int(NR_OPEN.read_text()))
    except (OSError, ValueError):
        return CEILING


def raise_descriptor_limit() -> tuple[int, int]:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit, and the hard limit to `kernel_ceiling()` where this
    process may (CAP_SYS_RESOURCE). Returns (soft limit before, soft limit after); equal when nothing moved.

    Never lowers anything, never raises: a refusal from the OS (no capability, a ceiling below our guess) keeps
    the best limit it did accept.
    """
    before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = kernel_ceiling()
    if hard != resource.RLIM_INFINITY and hard < ceiling:
        try:  # only a privileged process may raise its hard limit: try, and keep the old one when refused
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, ceiling))
            return before, ceiling
        except (ValueError, OSError):
            pass
    target = ceiling if hard == resource.RLIM_INFINITY else hard
    if before == resource.RLIM_INFINITY or before >= target:
        return before, before
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # e.g. macOS caps the soft limit below an "unlimited" hard one
        return before, before
    return before, target
