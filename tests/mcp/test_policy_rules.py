"""Tool/resource/prompt policy rules, `gateway.mcp.policy` (our policy; MCP RS-10 step-up): pure decisions."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import NameRule, PolicySettings
from gateway.mcp.policy import Decision, Judge, Kind, active, decide


def policy(default: str = "allow", **rules: list[dict[str, Any]]) -> PolicySettings:
    return PolicySettings(default=default, **{kind: [NameRule(**r) for r in rs] for kind, rs in rules.items()})


def outcome(
    settings: PolicySettings, kind: Kind, name: str, scopes: tuple[str, ...] = (), groups: tuple[str, ...] = ()
) -> str:
    return decide(settings, kind, name, scopes=scopes, groups=groups).outcome


TOOLS = policy(
    tools=[
        {"match": "delete_repo", "deny": True},
        {"match": "admin_*", "groups": ["ops"]},
        {"match": "write_?", "scopes": ["repo:write"]},
        {"match": "report[0-9]", "deny": True},
    ]
)


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
        pytest.param("Delete_Repo", "invalid", id="another-case-is-refused-as-ambiguous"),
        pytest.param("delete_repo_now", "allow", id="exact-is-not-a-prefix"),
        pytest.param("xdelete_repo", "allow", id="exact-is-not-a-suffix"),
    ],
)
def test_a_rule_matches_by_exact_name_or_case_sensitive_glob(name: str, expected: str) -> None:
    """NameRule.match: exact name or fnmatch glob (*, ?, [..]), case-sensitive (fnmatchcase); default allow. A name
    that matches a rule only when case-folded is read differently by an exact and a folding server: refused."""
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
    assert decision == Decision(
        "step_up", needed_scopes=("math:read", "math:write"), reason="requires scope math:write"
    )


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


RESOURCES = policy(
    resources=[
        {"match": "file:///public/readme.md"},
        {"match": "file:///secret/*", "deny": True},
        {"match": "db://prod/*", "scopes": ["db:read"]},
    ]
)


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
    assert outcome(settings, "resources", "file:///summarize") == "allow"


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


# -- names: every plausible reading (finding 2, names) ----------------------------------------------------------

ADMIN = policy(tools=[{"match": "admin_*", "deny": True}, {"match": "echo"}])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("admin_delete", "forbid", id="as-written"),
        pytest.param("ADMIN_delete", "invalid", id="upper-case"),
        pytest.param("Admin_Delete", "invalid", id="mixed-case"),
        pytest.param("admin\uff3fdelete", "invalid", id="fullwidth-low-line"),
        pytest.param("\uff41\uff44\uff4d\uff49\uff4e_delete", "invalid", id="fullwidth-letters"),
        pytest.param("\u212aelvin", "allow", id="kelvin-sign-matches-no-rule"),
        pytest.param("admin_delete\u200b", "invalid", id="zero-width-space"),
        pytest.param("admin_del\u202eete", "invalid", id="bidi-override"),
        pytest.param("admin_delete\x00", "invalid", id="nul"),
        pytest.param(" admin_delete", "invalid", id="leading-space"),
        pytest.param("", "invalid", id="empty"),
        pytest.param("x" * 1025, "invalid", id="too-long"),
        pytest.param("echo", "allow", id="allowed"),
        pytest.param("\u5929\u6c17", "allow", id="non-ascii-name-in-nfkc-form"),
    ],
)
def test_tool_names_are_judged_as_sent_and_as_a_folding_server_reads_them(name: str, expected: str) -> None:
    """MCP server/tools "Tool Names" are case-sensitive, but an upstream may fold case or Unicode compatibility
    forms: a deny rule must not be dodged by `ADMIN_delete` or a fullwidth `admin＿delete`. Readers disagree on
    invisible and control characters: refused outright."""
    assert outcome(ADMIN, "tools", name) == expected


def test_an_allow_list_entry_does_not_admit_other_spellings_under_default_deny() -> None:
    """Both readings must allow: `ECHO` is not the allowed `echo` to an exact server, so it is refused."""
    settings = policy(default="deny", tools=[{"match": "echo"}])
    assert outcome(settings, "tools", "echo") == "allow"
    assert outcome(settings, "tools", "ECHO") == "invalid"
    assert outcome(settings, "tools", "ｅｃｈｏ") == "invalid"


def test_folded_spellings_that_every_reading_allows_are_allowed() -> None:
    """Only where it matters: with no rule for either spelling, `Add` is allowed (no reading is ruled differently)."""
    assert outcome(policy(tools=[{"match": "admin_*", "deny": True}]), "tools", "Add") == "allow"


def test_prompt_names_follow_the_same_rules() -> None:
    settings = policy(prompts=[{"match": "internal_*", "groups": ["staff"]}])
    assert outcome(settings, "prompts", "INTERNAL_summary") == "invalid"
    assert outcome(settings, "prompts", "INTERNAL_summary", groups=("staff",)) == "allow"


# -- resources: every plausible reading (finding 2) ------------------------------------------------------------

README_EXAMPLE = policy(resources=[{"match": "file:///secret/*", "groups": ["security"]}])


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        pytest.param("file:///secret/keys.txt", "forbid", id="plain"),
        pytest.param("file:///%73ecret/keys.txt", "invalid", id="percent-encoded-unreserved"),
        pytest.param("file:///secret%2Fkeys.txt", "invalid", id="encoded-slash"),
        pytest.param("file:///secret%2fkeys.txt", "invalid", id="encoded-slash-lowercase-hex"),
        pytest.param("file:///public/../secret/keys.txt", "invalid", id="dot-segments"),
        pytest.param("file:///public/%2e%2e/secret/keys.txt", "invalid", id="encoded-dot-segments"),
        pytest.param("file:///public/%252e%252e/secret/keys.txt", "invalid", id="double-encoded-dot-segments"),
        pytest.param("file:///./secret/keys.txt", "invalid", id="single-dot"),
        pytest.param("file:///public/..;/secret/keys.txt", "invalid", id="dot-dot-semicolon"),
        pytest.param("file:///secret%252Fkeys.txt", "invalid", id="double-encoded-slash"),
        pytest.param("file:///SECRET/keys.txt", "invalid", id="case-insensitive-file-system"),
        pytest.param("file:///secret./keys.txt", "invalid", id="windows-trailing-dot"),
        pytest.param("file:///%EF%BD%93ecret/keys.txt", "invalid", id="fullwidth-letter-encoded"),
        pytest.param("FILE:///secret/keys.txt", "invalid", id="scheme-case"),
        pytest.param("file://localhost/secret/keys.txt", "invalid", id="file-localhost"),
        pytest.param("file://LOCALHOST/secret/keys.txt", "invalid", id="file-localhost-upper"),
        pytest.param("file:/secret/keys.txt", "invalid", id="file-without-authority"),
        pytest.param("file:///secret\\keys.txt", "invalid", id="backslash"),
        pytest.param("file:///secret%5Ckeys.txt", "invalid", id="encoded-backslash"),
        pytest.param("file:///secret/keys.txt%00.md", "invalid", id="encoded-nul"),
        pytest.param("file:///secret/keys.txt\n", "invalid", id="newline"),
        pytest.param("file:///secret/keys.txt%20", "invalid", id="encoded-trailing-space"),
        pytest.param("file:///%zzsecret/keys.txt", "invalid", id="malformed-escape"),
        pytest.param("file:///%FFsecret/keys.txt", "invalid", id="not-utf8"),
        pytest.param("/secret/keys.txt", "invalid", id="relative-reference"),
        # review 2, R3: where a server looks, not how the URI is written
        pytest.param("file:////secret/keys.txt", "invalid", id="empty-segment-posix-collapses"),
        pytest.param("file:///secret/keys.txt?raw", "forbid", id="query-under-the-glob"),
        pytest.param("file:///secret/keys.txt#top", "forbid", id="fragment-under-the-glob"),
        pytest.param("file:///secret;v=1/keys.txt", "invalid", id="path-parameter"),
        pytest.param("file://fileserver/secret/keys.txt", "invalid", id="file-host-ignored"),
        pytest.param("file://localhost./secret/keys.txt", "invalid", id="file-host-trailing-dot"),
        pytest.param("file:///secret::$DATA/keys.txt", "invalid", id="ntfs-stream"),
        pytest.param("file:///public/%EF%BC%8E%EF%BC%8E/secret/keys.txt", "invalid", id="encoded-fullwidth-dots"),
        pytest.param("file:///public/\uff0e\uff0e/secret/keys.txt", "invalid", id="fullwidth-dot-segment"),
        pytest.param("file:///public\uff3c..\uff3csecret", "invalid", id="fullwidth-backslash"),
        pytest.param("file:///%25252573ecret/keys.txt", "invalid", id="triple-encoded"),
        pytest.param("file:///public/readme.md", "allow", id="other-resource"),
        pytest.param("file:///public/readme.md?raw#top", "allow", id="other-resource-with-query"),
        pytest.param("file:///public//readme.md;v=1", "allow", id="other-resource-loosely-written"),
        pytest.param("file:///public/100%25.md", "allow", id="encoded-percent"),
        pytest.param("file:///public/hello%20world.md", "allow", id="ordinary-escape"),
        pytest.param("file:///secretive.txt", "allow", id="prefix-without-slash"),
    ],
)
def test_every_alternate_spelling_of_a_protected_uri_is_refused(uri: str, expected: str) -> None:
    """Finding 2: the README's rule `file:///secret/*` (group security) must hold for every spelling a server
    reads as /secret/...: forbid for the plain one, invalid (400) wherever readings disagree or a construct is
    one readers disagree on. The old matcher allowed %73ecret, secret%2F and public/../secret."""
    assert outcome(README_EXAMPLE, "resources", uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "file:///secret/keys.txt",
        "file:///%73ecret/keys.txt",
        "FILE:///secret/keys.txt",
        "file://localhost/secret/keys.txt",
    ],
)
def test_a_member_of_the_group_may_read_any_equivalent_spelling(uri: str) -> None:
    """Where every reading allows, nothing is refused: equivalent spellings are served to whoever may read them."""
    assert outcome(README_EXAMPLE, "resources", uri, groups=("security",)) == "allow"


def test_a_resource_allow_list_admits_equivalent_spellings_and_nothing_else() -> None:
    settings = policy(default="deny", resources=[{"match": "file:///public/*"}])
    assert outcome(settings, "resources", "file:///public/readme.md") == "allow"
    assert outcome(settings, "resources", "file:///public/a%2Fb.md") == "allow"  # every reading is under /public
    assert outcome(settings, "resources", "file:///public%2F..%2Fsecret/keys.txt") == "invalid"
    assert outcome(settings, "resources", "file:///secret/keys.txt") == "forbid"


def test_rule_patterns_are_compared_in_normal_form() -> None:
    """A rule written in another spelling means the same resource: canonicalized like the URI."""
    settings = policy(resources=[{"match": "FILE://LocalHost/%73ecret/*", "deny": True}])
    assert outcome(settings, "resources", "file:///secret/keys.txt") == "forbid"


def test_a_step_up_rule_applies_to_the_uri_as_sent_and_refuses_spellings_an_exact_server_reads_otherwise() -> None:
    """`DB://PROD/users` is the same URI by RFC 3986, but a server looking the string up exactly finds no rule's
    resource: the readings disagree, so it is refused rather than stepped up."""
    settings = policy(resources=[{"match": "db://prod/*", "scopes": ["db:read"]}])
    assert outcome(settings, "resources", "db://prod/users") == "step_up"
    assert outcome(settings, "resources", "db://prod/users", scopes=("db:read",)) == "allow"
    assert outcome(settings, "resources", "DB://PROD/users") == "invalid"
    assert outcome(settings, "resources", "DB://PROD/users", scopes=("db:read",)) == "allow"


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        pytest.param("resources", "file:///public/../secret/*", id="dot-segment"),
        pytest.param("resources", "file:///a%zz", id="malformed-escape"),
        pytest.param("resources", "file:///a\\b", id="backslash"),
        pytest.param("tools", "admin\u200b*", id="invisible-character"),
        pytest.param("prompts", " greeting", id="surrounding-space"),
    ],
)
def test_a_rule_pattern_no_uri_could_match_reliably_is_a_configuration_error(kind: str, pattern: str) -> None:
    """Checked at load, with the rule's key path (check-config shows it)."""
    from gateway.config import ConfigError
    from tests.conftest import make_settings

    with pytest.raises(ConfigError) as raised:
        make_settings(
            8080,
            "redis://127.0.0.1:6379/0",
            "x",
            [
                {
                    "name": "a",
                    "path": "/a/mcp",
                    "upstream": "http://127.0.0.1:9/mcp",
                    "policy": {kind: [{"match": "ok"}, {"match": pattern, "deny": True}]},
                }
            ],
        )
    assert any(p.startswith(f"routes[0].policy.{kind}[1]") for p in raised.value.problems), raised.value.problems


def test_a_kind_without_rules_gets_the_default_for_any_value() -> None:
    """Refusing odd spellings protects rules; a route that only rules tools leaves resources alone (and default
    deny still refuses every one)."""
    settings = policy(tools=[{"match": "admin_*", "deny": True}])
    assert outcome(settings, "resources", "file:///a/../b") == "allow"
    assert outcome(policy(default="deny"), "resources", "file:///a/../b") == "forbid"
    assert outcome(policy(resources=[{"match": "file:///x"}]), "resources", "file:///a/../b") == "invalid"


def test_a_judge_decides_each_name_once_per_request_and_as_decide_does() -> None:
    """Security review 2, R1: a batch naming one thing again and again, or a response listing what the request
    named, costs one decision; the memo is bounded (Judge.MAX_MEMO) and never changes a decision."""
    settings = policy(
        tools=[{"match": "admin_*", "groups": ["ops"]}], resources=[{"match": "file:///s/*", "deny": True}]
    )
    judge = Judge(settings, scopes=(), groups=())
    first = judge("tools", "admin_reset")
    assert first.outcome == "forbid" and judge("tools", "admin_reset") is first
    assert judge("resources", "file:///s/x").outcome == "forbid" and judge("tools", "file:///s/x").outcome == "allow"
    for i in range(Judge.MAX_MEMO + 10):
        assert judge("tools", f"admin_{i}") == decide(settings, "tools", f"admin_{i}", scopes=(), groups=())
    assert judge("tools", "Admin_reset").outcome == "invalid"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        pytest.param("https://api.example.com/admin/users", "forbid", id="plain"),
        pytest.param("HTTPS://API.EXAMPLE.COM/admin/users", "invalid", id="scheme-and-host-case"),
        pytest.param("https://api.example.com./admin/users", "invalid", id="host-trailing-dot"),
        pytest.param("https://ops@api.example.com/admin/users", "invalid", id="userinfo"),
        pytest.param("https://api.example.com/admin/users?page=2", "forbid", id="query-under-the-glob"),
        pytest.param("https://xn--bcher-kva.example/catalogue", "invalid", id="punycode-of-a-protected-host"),
        pytest.param("https://b%C3%BCcher.example/catalogue", "forbid", id="percent-encoded-idn"),
        pytest.param("https://bücher.example/catalogue", "forbid", id="idn"),
        pytest.param("https://api.example.com/public", "allow", id="other-path"),
    ],
)
def test_hosts_are_judged_as_resolvers_read_them(uri: str, expected: str) -> None:
    """Security review 2, R3: case, a trailing dot, userinfo and punycode (RFC 3492) do not change the host a client
    reaches; a rule on one spelling holds for all (`uris.server_view`)."""
    settings = policy(
        resources=[
            {"match": "https://api.example.com/admin/*", "deny": True},
            {"match": "https://bücher.example/*", "deny": True},
        ]
    )
    assert outcome(settings, "resources", uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd?raw",
        "file:///etc/passwd#top",
        "file:///etc/passwd;v=1",
        "file:///etc/passwd::$DATA",
        "file:///etc//passwd",
        "file://backup/etc/passwd",
    ],
)
def test_an_exact_rule_holds_for_every_spelling_of_where_the_resource_is(uri: str) -> None:
    """Security review 2, R3: a file server ignores the query, fragment, `;` parameters, NTFS stream suffix,
    doubled slashes and often the host; an exact deny rule is not dodged by adding them (refused as ambiguous)."""
    settings = policy(resources=[{"match": "file:///etc/passwd", "deny": True}])
    assert outcome(settings, "resources", uri) == "invalid"
