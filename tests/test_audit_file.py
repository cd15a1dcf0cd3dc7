"""The audit log file is readable by its owner only (security review 2, R15): it names users, clients and
addresses. Created 0600 whatever the umask, and so is the new file after logrotate moved the old one away."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from gateway.audit import AuditLog
from gateway.config import AuditSettings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_audit_file_is_created_0600_and_recreated_0600_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    previous = os.umask(0o022)  # a usual umask: plain open() would make the file 0644
    try:
        log = AuditLog(AuditSettings(path=str(path)))
        assert mode(path) == 0o600
        path.rename(tmp_path / "audit.jsonl.1")  # logrotate without copytruncate
        log.emit("test.event", user="local:alice")  # no event loop: written at once; notices the move
        log.close()
    finally:
        os.umask(previous)
    assert mode(path) == 0o600
    assert json.loads(path.read_text())["user"] == "local:alice"
    assert mode(tmp_path / "audit.jsonl.1") == 0o600
