"""`routes[].policy`: MCP-aware rules for tools, prompts (by name) and resources (by URI)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from gateway.config.base import Model
from gateway.mcp import names as mcp_names  # (pure: they import nothing of the gateway)
from gateway.mcp import uris


class NameRule(Model):
    """One policy rule for tools, prompts (by name) or resources (by URI); the first matching rule decides.

    Matching (docs/policy.md): names as sent and NFKC case-folded; URIs as sent, RFC 3986-normalized,
    percent-decoded (once and twice) and each of these case-folded. The rule must decide alike for every reading,
    else the call is refused as ambiguous."""

    match: str = Field(
        min_length=1,
        description="Exact name/URI or a glob (fnmatch: *, ?, [..]; * also crosses "
        "'/'); URIs are compared in RFC 3986 normal form, so write the plain spelling.",
    )
    deny: bool = Field(default=False, description="Nobody may use it (hidden from lists).")
    scopes: list[str] = Field(default_factory=list, description="Token scopes needed (403 asks the client to step up).")
    groups: list[str] = Field(default_factory=list, description="The user needs one of these groups.")


def _name_pattern(rule: NameRule) -> NameRule:
    if (problem := mcp_names.pattern_problem(rule.match)) is not None:
        raise ValueError(f"match {rule.match!r}: {problem}")
    return rule


def _uri_pattern(rule: NameRule) -> NameRule:
    if (problem := uris.pattern_problem(rule.match)) is not None:
        raise ValueError(f"match {rule.match!r}: {problem}")
    return rule


class PolicySettings(Model):
    """MCP-aware policy: who may call which tool, read which resource, get which prompt."""

    tools: list[Annotated[NameRule, AfterValidator(_name_pattern)]] = Field(default_factory=list)
    resources: list[Annotated[NameRule, AfterValidator(_uri_pattern)]] = Field(default_factory=list)
    prompts: list[Annotated[NameRule, AfterValidator(_name_pattern)]] = Field(default_factory=list)
    default: Literal["allow", "deny"] = Field(default="allow", description="When no rule matches.")
