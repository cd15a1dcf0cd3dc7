"""The descriptor limit raised at start-up (gateway/fd_limit.py, issue 11: 10,000 SSE streams in one process).

Each case runs in a child process that first lowers its own limits (anyone may lower them), so this test process
keeps the limits it has and the cases do not depend on how the machine starts processes.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from gateway.fd_limit import kernel_ceiling

REPO = Path(__file__).resolve().parents[1]
HARD = min(512, resource.getrlimit(resource.RLIMIT_NOFILE)[1])  # where an unprivileged child can still set it
SOFT = HARD // 2
CHILD = """
import json, os, resource, sys
from gateway.fd_limit import raise_descriptor_limit
soft, hard, unprivileged = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "drop"
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
if unprivileged and os.geteuid() == 0:
    os.setgid(65534)
    os.setuid(65534)  # nobody: leaving root drops CAP_SYS_RESOURCE
first = raise_descriptor_limit()
limits = resource.getrlimit(resource.RLIMIT_NOFILE)
print(json.dumps({"first": first, "limits": limits, "again": raise_descriptor_limit()}))
"""


def run_child(soft: int, hard: int, privilege: str) -> dict[str, list[int]]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(soft), str(hard), privilege],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return json.loads(out.stdout)


def may_raise_hard_limit() -> bool:
    """CAP_SYS_RESOURCE (capability 24) in this process's effective set."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)
    return False


def test_the_soft_limit_is_raised_to_the_hard_limit_without_privilege():
    """Our choice: the soft limit is a default the process may lift itself; the hard limit stays where it was."""
    result = run_child(SOFT, HARD, "drop")
    assert result["first"] == [SOFT, HARD]
    assert result["limits"] == [HARD, HARD]
    assert result["again"] == [HARD, HARD]  # nothing left to raise: before == after


def test_with_the_capability_the_hard_limit_is_raised_to_the_kernel_ceiling():
    """With CAP_SYS_RESOURCE (root here) both limits go to min(1,048,576, fs.nr_open); without it (an ordinary
    CI user) the hard limit stays and only the soft one moves."""
    result = run_child(SOFT, HARD, "keep")
    expected = kernel_ceiling() if may_raise_hard_limit() else HARD
    assert result["first"] == [SOFT, expected]
    assert result["limits"] == [expected, expected]
    assert result["again"] == [expected, expected]


def test_the_ceiling_is_capped_at_a_million_descriptors():
    """fs.nr_open may be set far higher; we never ask for more than 1,048,576 (more would only hide a leak)."""
    nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    assert kernel_ceiling() == min(1_048_576, nr_open)


def test_a_limit_already_at_its_hard_limit_is_left_alone():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(soft, 4096)
    result = run_child(low, low, "drop")
    assert result["first"] == [low, low]
    assert result["limits"] == [low, low]
