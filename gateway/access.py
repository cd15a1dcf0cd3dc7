"""Per-route access rules (oauth2-proxy/Pomerium style allow lists): deny by default once any rule is set.

Group names are qualified by the provider they come from (`corp:platform`, `github:acme/platform`,
`local:eng`): a GitHub organisation called like a Keycloak group is another group. Principals and tokens keep
the raw names (headers upstream are unchanged); qualification happens here, when matching."""

from __future__ import annotations

from gateway.accounts import principal_of
from gateway.config import AllowRules, Route, Settings
from gateway.oauth.errors import InvalidGrantError
from gateway.store.base import AccountStore
from gateway.store.records import Principal


def rules_for(settings: Settings, route: Route) -> AllowRules:
    """The route's own rules, else the global default."""
    return route.allow if route.allow is not None else settings.allow


def local_names_in_rules(settings: Settings) -> frozenset[str]:
    """Local user names (case-folded) that a global or route `allow.users` rule names: self sign-up may not
    take them, whether or not the operator has created the account yet."""
    rule_sets = [settings.allow, *(route.allow for route in settings.routes if route.allow is not None)]
    return frozenset(
        user_id.removeprefix("local:").casefold()
        for rules in rule_sets
        for user_id in rules.users
        if user_id.startswith("local:")
    )


def qualified_groups(user_id: str, groups: tuple[str, ...] | list[str]) -> frozenset[str]:
    """`groups` as rules name them: prefixed by the user's provider (the part of the user id before ':')."""
    provider = user_id.split(":", 1)[0]
    return frozenset(f"{provider}:{group}" for group in groups)


def allowed(rules: AllowRules, *, user_id: str, email: str | None, groups: tuple[str, ...]) -> bool:
    """True when no rule is set, `any_signed_in` is, or any rule matches. `email` must be a verified address
    (or None); `groups` are the raw names the provider sent (qualified here)."""
    if not rules.any or rules.any_signed_in:
        return True
    provider = user_id.split(":", 1)[0]
    domain = email.rsplit("@", 1)[1].lower() if email and "@" in email else None
    return (
        user_id in rules.users
        or (email is not None and email.lower() in {e.lower() for e in rules.emails})
        or (domain is not None and domain in {d.lower().lstrip("@") for d in rules.email_domains})
        or bool(qualified_groups(user_id, groups) & set(rules.groups))
        or provider in rules.providers
    )


class AccessPolicy:
    """Rules plus freshness: what `allowed` decides, applied at authorize, at code redemption, at refresh and
    on every MCP request."""

    def __init__(self, settings: Settings, store: AccountStore) -> None:
        self._settings = settings
        self._store = store

    def permits(self, route: Route, *, user_id: str, email: str | None, groups: tuple[str, ...]) -> bool:
        return allowed(rules_for(self._settings, route), user_id=user_id, email=email, groups=groups)

    async def refreshed(self, principal: Principal, *, now: float) -> Principal | None:
        """The principal as it stands now, or None when the person must sign in again: a sign-in older than
        `login.identity_max_age` (the only way to learn a provider's current groups), or a local account that
        no longer exists or was removed and created anew under the same name (another person, perhaps). Local
        accounts are re-read (current groups and email)."""
        if (
            principal.authenticated_at is not None
            and now - principal.authenticated_at > self._settings.login.identity_max_age
        ):
            return None
        if principal.provider == "local":
            user = await self._store.load_user(principal.user_id.split(":", 1)[1])
            if user is None or principal.account_created_at not in (None, user.created_at):
                return None
            return principal_of(user, now=principal.authenticated_at)
        return principal

    async def current(self, principal: Principal, route_name: str, *, now: float) -> Principal:
        """`refreshed`, then the route's rules: for code redemption and refresh.

        Raises:
            InvalidGrantError: the grant may no longer be used.
        """
        fresh = await self.refreshed(principal, now=now)
        if fresh is None:
            raise InvalidGrantError("the sign-in is too old or the account no longer exists; sign in again")
        route = next((r for r in self._settings.routes if r.name == route_name), None)
        if route is None or not self.permits(route, user_id=fresh.user_id, email=fresh.email, groups=fresh.groups):
            raise InvalidGrantError("access to this MCP server is no longer allowed")
        return fresh
