"""Tool/resource/prompt policy rules, `gateway.mcp.policy` (our policy; MCP RS-10 step-up): pure decisions."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import NameRule, PolicySettings
from gateway.mcp.policy import Decision, Kind, active, decide


def policy(default: str = "allow", **rules: list[dict[str, Any]]) -> PolicySettings:
    return PolicySettings(default=default, **{kind: [NameRule(**r) for r in rs] for kind, rs in rules.items()})


def outcome(settings: PolicySettings, kind: Kind, name: str, scopes: tuple[str, ...] = (),
            groups: tuple[str, ...] = ()) -> str:
    return decide(settings, kind, name, scopes=scopes, groups=groups).outcome


TOOLS = policy(tools=[{"match": "delete_repo", "deny": True},
                      {"match": "admin_*", "groups": ["ops"]},
                      {"match": "write_?", "scopes": ["repo:write"]},
                      {"match": "report[0-9]", "deny": True}])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("delete_repo", "forbid", id="exact"),
        pytest.param("admin_reset", "forbid", id="star-glob"),
        pytest.param("admin_", "forbid", id="star-matches-empty"),
        pytest.param("write_a", "step_up", id="question-mark-glob"),
        pytest.param("write_ab", "allow", id="question-mark-is-one-character"),
        pytest.param("report7", "forbid", id="bracket-glob"),
        pytest.param("reportX", "allow", id="bracket-glob-miss"),
        pytest.param("Delete_Repo", "allow", id="case-sensitive"),
        pytest.param("delete_repo_now", "allow", id="exact-is-not-a-prefix"),
        pytest.param("xdelete_repo", "allow", id="exact-is-not-a-suffix"),
    ],
)
def test_a_rule_matches_by_exact_name_or_case_sensitive_glob(name: str, expected: str) -> None:
    """NameRule.match: exact name or fnmatch glob (*, ?, [..]), case-sensitive (fnmatchcase); default allow."""
    assert outcome(TOOLS, "tools", name) == expected


def test_a_name_containing_glob_characters_is_matched_literally_as_well_as_by_glob() -> None:
    """Our choice: `match == name` is tried before fnmatch, so a tool literally called `run[1]` (which the glob
    `run[1]` does not match) can be named; the glob reading of the same rule still applies to `run1`."""
    settings = policy(tools=[{"match": "run[1]", "deny": True}])
    assert outcome(settings, "tools", "run[1]") == "forbid"
    assert outcome(settings, "tools", "run1") == "forbid"
    assert outcome(settings, "tools", "run2") == "allow"


def test_the_first_matching_rule_decides_and_later_rules_are_not_consulted() -> None:
    """policy.py docstring: the first rule whose `match` fits decides (an allow rule before a broad deny)."""
    settings = policy(tools=[{"match": "git_status"}, {"match": "git_*", "deny": True}])
    assert outcome(settings, "tools", "git_status") == "allow"
    assert outcome(settings, "tools", "git_push") == "forbid"


def test_a_broad_rule_listed_first_shadows_a_narrower_rule_after_it() -> None:
    """First match wins, not the most specific one: order in the YAML is the order of evaluation."""
    settings = policy(tools=[{"match": "git_*", "deny": True}, {"match": "git_status"}])
    assert outcome(settings, "tools", "git_status") == "forbid"


def test_a_deny_rule_forbids_whatever_scopes_and_groups_the_caller_has() -> None:
    """NameRule.deny: nobody may use it; step-up cannot help, so it is forbid, not step_up."""
    settings = policy(tools=[{"match": "shutdown", "deny": True, "scopes": ["admin"], "groups": ["ops"]}])
    decision = decide(settings, "tools", "shutdown", scopes=("admin",), groups=("ops",))
    assert decision.outcome == "forbid"
    assert decision.needed_scopes == ()


def test_a_rule_with_groups_forbids_a_caller_in_none_of_them() -> None:
    """NameRule.groups: the user needs one of these groups; a token cannot be stepped up into a group."""
    settings = policy(tools=[{"match": "deploy", "groups": ["ops", "release"]}])
    decision = decide(settings, "tools", "deploy", scopes=(), groups=("dev",))
    assert decision.outcome == "forbid"
    assert "ops" in decision.reason and "release" in decision.reason


@pytest.mark.parametrize("groups", [("ops",), ("release",), ("dev", "release")])
def test_a_rule_with_groups_allows_a_caller_in_any_one_of_them(groups: tuple[str, ...]) -> None:
    """NameRule.groups: one of these groups is enough."""
    settings = policy(tools=[{"match": "deploy", "groups": ["ops", "release"]}])
    assert outcome(settings, "tools", "deploy", groups=groups) == "allow"


def test_missing_group_is_forbid_even_when_scopes_are_missing_too() -> None:
    """Our choice: a step-up challenge would be pointless when the group check fails anyway."""
    settings = policy(tools=[{"match": "deploy", "groups": ["ops"], "scopes": ["deploy:run"]}])
    assert outcome(settings, "tools", "deploy", scopes=(), groups=()) == "forbid"


def test_missing_scopes_ask_for_a_step_up_naming_every_scope_of_the_rule() -> None:
    """MCP RS-10: 403 insufficient_scope with the scopes the operation needs (all of the rule's, not just the
    missing ones), so the client can request them in one go."""
    settings = policy(tools=[{"match": "add", "scopes": ["math:read", "math:write"]}])
    decision = decide(settings, "tools", "add", scopes=("math:read",), groups=())
    assert decision == Decision("step_up", needed_scopes=("math:read", "math:write"),
                                reason="requires scope math:write")


def test_a_caller_with_every_scope_and_a_required_group_is_allowed() -> None:
    """All of a rule's conditions met: allow."""
    settings = policy(tools=[{"match": "add", "scopes": ["math:read", "math:write"], "groups": ["ops"]}])
    decision = decide(settings, "tools", "add", scopes=("math:write", "other", "math:read"), groups=("ops",))
    assert decision == Decision("allow")


def test_a_rule_without_conditions_allows_even_under_default_deny() -> None:
    """An allow-list entry: `{match: name}` alone lets everyone through when policy.default is deny."""
    settings = policy(default="deny", tools=[{"match": "echo"}])
    assert outcome(settings, "tools", "echo") == "allow"
    assert outcome(settings, "tools", "other") == "forbid"


@pytest.mark.parametrize(
    ("default", "expected"),
    [pytest.param("allow", "allow", id="default-allow"), pytest.param("deny", "forbid", id="default-deny")],
)
def test_when_no_rule_matches_the_default_decides(default: str, expected: str) -> None:
    """PolicySettings.default: what happens when no rule matches (with no rules at all, too)."""
    assert outcome(policy(default=default), "tools", "anything") == expected
    assert outcome(policy(default=default, tools=[{"match": "x*", "deny": True}]), "tools", "anything") == expected


def test_default_deny_is_forbid_not_step_up() -> None:
    """No rule means no scope could help: a plain refusal."""
    decision = decide(policy(default="deny"), "tools", "x", scopes=("everything",), groups=("everyone",))
    assert decision.outcome == "forbid"
    assert decision.needed_scopes == ()


RESOURCES = policy(resources=[{"match": "file:///public/readme.md"},
                              {"match": "file:///secret/*", "deny": True},
                              {"match": "db://prod/*", "scopes": ["db:read"]}])


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        pytest.param("file:///secret/keys.txt", "forbid", id="glob"),
        pytest.param("file:///secret/nested/dir/keys.txt", "forbid", id="star-crosses-slashes"),
        pytest.param("file:///secret/{name}", "forbid", id="uri-template"),
        pytest.param("file:///secretive.txt", "allow", id="prefix-without-slash"),
        pytest.param("file:///public/readme.md", "allow", id="exact"),
        pytest.param("db://prod/users", "step_up", id="scoped"),
        pytest.param("db://staging/users", "allow", id="no-rule"),
    ],
)
def test_resources_are_matched_by_uri_globs(uri: str, expected: str) -> None:
    """Resources are decided by URI (resources/read, templates): fnmatch's * also crosses '/'."""
    assert outcome(RESOURCES, "resources", uri) == expected


def test_prompts_are_matched_by_name() -> None:
    """prompts/get is decided by the prompt's name."""
    settings = policy(prompts=[{"match": "internal_*", "groups": ["staff"]}])
    assert outcome(settings, "prompts", "internal_summary") == "forbid"
    assert outcome(settings, "prompts", "internal_summary", groups=("staff",)) == "allow"
    assert outcome(settings, "prompts", "greeting") == "allow"


def test_rules_of_one_kind_do_not_apply_to_another() -> None:
    """tools, resources and prompts are separate rule lists: a tool rule says nothing about a prompt of that name."""
    settings = policy(tools=[{"match": "summarize", "deny": True}])
    assert outcome(settings, "tools", "summarize") == "forbid"
    assert outcome(settings, "prompts", "summarize") == "allow"
    assert outcome(settings, "resources", "summarize") == "allow"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param(policy(), False, id="empty-default-allow"),
        pytest.param(policy(default="deny"), True, id="empty-default-deny"),
        pytest.param(policy(tools=[{"match": "x"}]), True, id="a-tool-rule"),
        pytest.param(policy(resources=[{"match": "file:///*"}]), True, id="a-resource-rule"),
        pytest.param(policy(prompts=[{"match": "p", "deny": True}]), True, id="a-prompt-rule"),
    ],
)
def test_policy_is_active_unless_it_is_empty_with_default_allow(settings: PolicySettings, expected: bool) -> None:
    """active(): no rules and default allow means bodies need no inspection (pure pass-through)."""
    assert active(settings) is expected
