"""A virtual server's names (gateway.web.aggregate): a member's tool or prompt `echo` is `<prefix><separator>echo`
(`alpha__echo`), its resource or template `file:///a` is `<prefix>+file:///a` (`alpha+file:///a`: still a URI, its
scheme widened). Prefixes are distinct (case-insensitively) and never contain the separator or a `+`, so every
name the virtual server shows reads back to one member and that member's own name."""

from __future__ import annotations

from gateway.config.aggregate import Aggregate


class Namespace:
    def __init__(self, aggregate: Aggregate) -> None:
        self.separator = aggregate.separator
        self.prefix = {member: aggregate.prefix(member) for member in aggregate.members}
        self._member = {prefix: member for member, prefix in self.prefix.items()}

    def outward(self, member: str, kind: str, name: str) -> str:
        """The name the client sees for `member`'s `name` (kind: tools, prompts or resources)."""
        prefix = self.prefix[member]
        return f"{prefix}+{name}" if kind == "resources" else f"{prefix}{self.separator}{name}"

    def inward(self, kind: str, name: str) -> tuple[str, str] | None:
        """(member, its own name) for a name the client sent; None when it names no member."""
        prefix, found, rest = name.partition("+" if kind == "resources" else self.separator)
        member = self._member.get(prefix) if found else None
        return (member, rest) if member is not None and rest else None
