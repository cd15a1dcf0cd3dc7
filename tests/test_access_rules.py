"""Access rules, `gateway.access` (issue #4; issue 10 #15): groups are qualified by the provider they come from,
`any_signed_in` admits everyone on purpose. Pure: rules and an identity in, a decision out."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.access import allowed, qualified_groups
from gateway.config import AllowRules


@pytest.mark.parametrize(
    ("user_id", "groups", "expected"),
    [
        ("corp:0a1b", ("platform", "sre"), {"corp:platform", "corp:sre"}),
        ("github:583231", ("acme", "acme/platform"), {"github:acme", "github:acme/platform"}),
        ("local:alice", ("eng",), {"local:eng"}),
        ("corp:x", ("realm:admins",), {"corp:realm:admins"}),  # a colon inside the raw name stays in the name
        ("corp:x", (), set()),
    ],
)
def test_groups_are_qualified_by_the_provider_of_the_user_id(
    user_id: str, groups: tuple[str, ...], expected: set[str]
) -> None:
    assert qualified_groups(user_id, groups) == frozenset(expected)


@pytest.mark.parametrize(
    ("rules", "user_id", "email", "groups", "admitted"),
    [
        pytest.param({"groups": ["corp:platform"]}, "corp:1", None, ("platform",), True, id="same-provider-group"),
        pytest.param(
            {"groups": ["corp:platform"]}, "github:9", None, ("platform",), False, id="same-name-other-provider"
        ),
        pytest.param(
            {"groups": ["github:acme/platform"]}, "github:9", None, ("acme/platform",), True, id="github-team"
        ),
        pytest.param(
            {"groups": ["corp:platform"]}, "corp:1", None, ("corp:platform",), False, id="raw-name-that-looks-qualified"
        ),
        pytest.param({"groups": ["local:eng"]}, "local:alice", None, ("eng",), True, id="local-group"),
        pytest.param({}, "github:9", None, (), True, id="no-rules"),
        pytest.param({"any_signed_in": True}, "github:9", None, (), True, id="any-signed-in"),
        pytest.param({"emails": ["a@example.com"]}, "github:9", "b@example.com", (), False, id="no-rule-matches"),
    ],
)
def test_allowed_matches_groups_only_within_their_provider(
    rules: dict[str, Any], user_id: str, email: str | None, groups: tuple[str, ...], admitted: bool
) -> None:
    assert allowed(AllowRules(**rules), user_id=user_id, email=email, groups=groups) is admitted
