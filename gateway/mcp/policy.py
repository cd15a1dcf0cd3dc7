"""MCP-aware authorization: which tools, resources and prompts a caller may use (our policy; MCP RS-10 step-up).

Pure: the caller's scopes and groups in, a decision out. The first rule whose `match` fits decides; no rule
means the route's `policy.default`. A name or URI is judged in every form a server may read it in
(gateway.mcp.names, gateway.mcp.uris): the decision stands only when every reading gets the same one; otherwise,
or when the value is malformed, the outcome is `invalid` (the caller's request is refused as ambiguous)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal, Protocol

from gateway.config import NameRule, PolicySettings
from gateway.mcp import names, uris

Kind = Literal["tools", "resources", "prompts"]
Outcome = Literal["allow", "step_up", "forbid", "invalid"]


class _Reader(Protocol):  # gateway.mcp.names and gateway.mcp.uris
    def refusal(self, value: str, /) -> str | None: ...
    def readings(self, value: str, /) -> list[tuple[tuple[str, bool], str]]: ...
    def pattern_forms(self, pattern: str, /) -> dict[tuple[str, bool], str]: ...


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    needed_scopes: tuple[str, ...] = ()  # for step_up: the scopes the operation needs
    reason: str = ""


def decide(
    policy: PolicySettings, kind: Kind, name: str, *, scopes: tuple[str, ...], groups: tuple[str, ...]
) -> Decision:
    rules: list[NameRule] = getattr(policy, kind)
    if not rules:  # every reading gets the default: nothing to dodge, nothing to refuse
        return _judge(policy, None, scopes, groups)
    reader: _Reader = uris if kind == "resources" else names
    problem = reader.refusal(name)
    if problem is not None:
        return Decision("invalid", reason=problem)
    decisions = [
        _judge(policy, _first(rules, form, value, reader), scopes, groups) for form, value in reader.readings(name)
    ]
    first = decisions[0]
    if any((d.outcome, d.needed_scopes) != (first.outcome, first.needed_scopes) for d in decisions[1:]):
        return Decision("invalid", reason="ambiguous: spellings of it that servers read alike are ruled differently")
    return first


class Judge:
    """`decide` for one caller during one request, each (kind, name) decided once: a batch naming one thing again
    and again, or a response listing what the request named, costs one decision (at most MAX_MEMO are kept)."""

    MAX_MEMO = 1024

    def __init__(self, policy: PolicySettings, *, scopes: tuple[str, ...], groups: tuple[str, ...]) -> None:
        self._policy, self._scopes, self._groups = policy, scopes, groups
        self._memo: dict[tuple[str, str], Decision] = {}

    def __call__(self, kind: Kind, name: str) -> Decision:
        found = self._memo.get((kind, name))
        if found is None:
            found = decide(self._policy, kind, name, scopes=self._scopes, groups=self._groups)
            if len(self._memo) < self.MAX_MEMO:
                self._memo[(kind, name)] = found
        return found


def _judge(policy: PolicySettings, rule: NameRule | None, scopes: tuple[str, ...], groups: tuple[str, ...]) -> Decision:
    if rule is None:
        return Decision("allow") if policy.default == "allow" else Decision("forbid", reason="not allowed")
    if rule.deny:
        return Decision("forbid", reason="denied by policy")
    if rule.groups and not set(rule.groups) & set(groups):
        return Decision("forbid", reason="requires group " + " or ".join(rule.groups))
    missing = [s for s in rule.scopes if s not in scopes]
    if missing:
        return Decision("step_up", needed_scopes=tuple(rule.scopes), reason="requires scope " + " ".join(missing))
    return Decision("allow")


def active(policy: PolicySettings) -> bool:
    """Whether bodies must be inspected at all (no rules and default allow: pure pass-through)."""
    return bool(policy.tools or policy.resources or policy.prompts) or policy.default == "deny"


def per_caller_kinds(policy: PolicySettings) -> frozenset[str]:
    """The kinds whose lists differ from caller to caller: some rule of theirs names scopes or groups (a deny,
    or the default, hides the same things from everyone)."""
    return frozenset(
        kind for kind in ("tools", "resources", "prompts") if any(r.scopes or r.groups for r in getattr(policy, kind))
    )


def _first(rules: list[NameRule], form: tuple[str, bool], value: str, reader: _Reader) -> NameRule | None:
    for rule in rules:
        pattern = reader.pattern_forms(rule.match)[form]
        if pattern == value or fnmatch.fnmatchcase(value, pattern):
            return rule
    return None
