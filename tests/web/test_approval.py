"""The two ways into a code, password or consent pages (gateway.web.authorize) and the provider callback
(gateway.web.federation), share their end in gateway.web.approval, below both (issue 11, Structure 3: the cycle
between them, broken by a function-local import, is gone). Their behaviour is pinned in test_authorize.py and
tests/e2e/test_federation.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gateway.web

WEB = Path(gateway.web.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, function-local imports included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize(
    ("module", "other"),
    [("authorize", "federation"), ("federation", "authorize"), ("approval", "authorize"), ("approval", "federation")],
)
def test_the_flows_and_their_shared_end_do_not_import_each_other(module: str, other: str) -> None:
    assert f"gateway.web.{other}" not in imported_modules(WEB / f"{module}.py")
