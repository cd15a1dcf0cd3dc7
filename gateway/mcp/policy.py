"""MCP-aware authorization: which tools, resources and prompts a caller may use (our policy; MCP RS-10 step-up).

Pure: the caller's scopes and groups in, a decision out. The first rule whose `match` fits decides; no rule
means the route's `policy.default`."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

from gateway.config import NameRule, PolicySettings

Kind = Literal["tools", "resources", "prompts"]
Outcome = Literal["allow", "step_up", "forbid"]


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    needed_scopes: tuple[str, ...] = ()  # for step_up: the scopes the operation needs
    reason: str = ""


def decide(policy: PolicySettings, kind: Kind, name: str, *, scopes: tuple[str, ...],
           groups: tuple[str, ...]) -> Decision:
    rule = _first(getattr(policy, kind), name)
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


def _first(rules: list[NameRule], name: str) -> NameRule | None:
    for rule in rules:
        if rule.match == name or fnmatch.fnmatchcase(name, rule.match):
            return rule
    return None
