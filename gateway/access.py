"""Per-route access rules (oauth2-proxy/Pomerium style allow lists): deny by default once any rule is set."""

from __future__ import annotations

from gateway.accounts import principal_of
from gateway.config import AllowRules, Route, Settings
from gateway.oauth.errors import InvalidGrantError
from gateway.store.base import Store
from gateway.store.records import Principal


def rules_for(settings: Settings, route: Route) -> AllowRules:
    """The route's own rules, else the global default."""
    return route.allow if route.allow is not None else settings.allow


def allowed(rules: AllowRules, *, user_id: str, email: str | None, groups: tuple[str, ...]) -> bool:
    """True when no rule is set or any rule matches. `email` must be a verified address (or None)."""
    if not rules.any:
        return True
    provider = user_id.split(":", 1)[0]
    domain = email.rsplit("@", 1)[1].lower() if email and "@" in email else None
    return (
        user_id in rules.users
        or (email is not None and email.lower() in {e.lower() for e in rules.emails})
        or (domain is not None and domain in {d.lower().lstrip("@") for d in rules.email_domains})
        or bool(set(groups) & set(rules.groups))
        or provider in rules.providers
    )


class AccessPolicy:
    """Rules plus freshness: what `allowed` decides, applied at authorize, refresh and on every MCP request."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store

    def permits(self, route: Route, *, user_id: str, email: str | None, groups: tuple[str, ...]) -> bool:
        return allowed(rules_for(self._settings, route), user_id=user_id, email=email, groups=groups)

    async def current(self, principal: Principal, route_name: str, *, now: float) -> Principal:
        """The principal as it stands now, for a refresh: local accounts are re-read (removed or regrouped
        users take effect), provider identities older than `login.identity_max_age` must sign in again (the
        only way to learn new groups), and the route's rules are applied again.

        Raises:
            InvalidGrantError: the grant may no longer be used.
        """
        if principal.authenticated_at is not None and \
                now - principal.authenticated_at > self._settings.login.identity_max_age:
            raise InvalidGrantError("the sign-in is too old; sign in again")
        if principal.provider == "local":
            user = await self._store.load_user(principal.user_id.split(":", 1)[1])
            if user is None:
                raise InvalidGrantError("the account no longer exists")
            principal = principal_of(user, now=principal.authenticated_at)
        route = self._settings.route(route_name) if any(r.name == route_name for r in self._settings.routes) else None
        if route is None or not self.permits(route, user_id=principal.user_id, email=principal.email,
                                             groups=principal.groups):
            raise InvalidGrantError("access to this MCP server is no longer allowed")
        return principal
