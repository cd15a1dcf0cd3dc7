"""Which scopes a grant gets (MCP "Scope Selection Strategy"; SEP-2207; real-client quirk SCP-4)."""

from __future__ import annotations

OFFLINE_ACCESS = "offline_access"
OPENID = "openid"  # AS level: the token may also read the user's claims at /userinfo (its second audience)


def grant_scopes(requested: tuple[str, ...], route_scopes: list[str]) -> tuple[str, ...]:
    """The requested scopes the route knows; unknown ones (claude.ai's `claudeai`) are ignored, and when
    nothing known remains the route's full baseline is granted. `offline_access` is not a resource scope;
    `openid`, when asked for, is kept (it makes /userinfo an audience of the tokens too)."""
    known = tuple(s for s in requested if s in route_scopes)
    return (known or tuple(route_scopes)) + ((OPENID,) if OPENID in requested and OPENID not in route_scopes else ())


def is_narrowing(requested: tuple[str, ...], granted: tuple[str, ...]) -> bool:
    """RFC 6749 §6: a refresh may ask for a subset of the original grant, never more."""
    return set(requested) <= set(granted)
