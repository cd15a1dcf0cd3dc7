"""Configuration checks of access rules (issue 10 #10, #15, #19): routes open to anyone on the internet only when
the operator says so, group names qualified by their provider, scope descriptions for known scopes. (The shipped
configurations are validated by tests/test_config.py, tests/deploy/ and tests/e2e/test_demo.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ConfigError, Settings

PUBLIC_URL = "https://gw.example.com"
GOOGLE = {"name": "google", "type": "google", "client_id": "x.apps.googleusercontent.com", "client_secret": "s"}
GITHUB = {"name": "gh", "type": "github", "client_id": "Ov23", "client_secret": "s"}
CORP = {"name": "corp", "type": "oidc", "issuer": "https://idp.example.com", "client_id": "gw", "client_secret": "s"}
SIGNUP = {"signup": {"enabled": True, "email_domains": ["example.com"]}}


def entra(tenant: str) -> dict[str, Any]:
    return {"name": "ms", "type": "entra", "tenant": tenant, "client_id": "0000", "client_secret": "s"}


def route(name: str = "alpha", **extra: Any) -> dict[str, Any]:
    return {"name": name, "path": f"/{name}/mcp", "upstream": "http://127.0.0.1:9001/mcp", **extra}


def problems(**config: Any) -> list[str]:
    config.setdefault("routes", [route()])
    try:
        Settings(public_url=PUBLIC_URL, **config)
    except ConfigError as exc:
        return exc.problems
    return []


@pytest.mark.parametrize(
    "login",
    [
        pytest.param(SIGNUP, id="self-sign-up"),
        pytest.param({"providers": [GOOGLE]}, id="google"),
        pytest.param({"providers": [GITHUB]}, id="github"),
        pytest.param({"providers": [entra("organizations")]}, id="entra-organizations"),
        pytest.param({"providers": [entra("common")]}, id="entra-common"),
        pytest.param({"providers": [entra("Consumers")]}, id="entra-consumers"),
        pytest.param({"providers": [{**CORP, "issuer": "https://accounts.google.com"}]}, id="oidc-google-issuer"),
        pytest.param(
            {"providers": [{**CORP, "issuer": "https://login.microsoftonline.com/common/v2.0"}]},
            id="oidc-entra-common-issuer",
        ),
    ],
)
def test_open_sign_in_without_an_access_rule_is_refused(login: dict[str, Any]) -> None:
    """Self sign-up sends no mail and public providers admit any account: with no rule, anyone on the internet
    could use the route. The problem names the route and how to allow it on purpose."""
    found = problems(login=login)
    assert len(found) == 1 and found[0].startswith("allow: no access rule"), found
    assert "alpha" in found[0] and "any_signed_in: true" in found[0]


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"login": SIGNUP, "allow": {"providers": ["local"]}}, id="global-rule"),
        pytest.param({"login": SIGNUP, "allow": {"any_signed_in": True}}, id="global-any-signed-in"),
        pytest.param(
            {"login": {"providers": [GOOGLE]}, "routes": [route(allow={"email_domains": ["example.com"]})]},
            id="route-rule",
        ),
        pytest.param(
            {"login": {"providers": [GITHUB]}, "routes": [route(allow={"any_signed_in": True})]},
            id="route-any-signed-in",
        ),
        pytest.param({"login": {"providers": [entra("contoso.onmicrosoft.com")]}}, id="entra-single-tenant"),
        pytest.param({"login": {"providers": [CORP]}}, id="private-oidc"),
        pytest.param({"login": {"local": False, **SIGNUP, "providers": [CORP]}}, id="sign-up-without-local-accounts"),
        pytest.param({}, id="local-accounts-only"),
    ],
)
def test_open_sign_in_with_a_rule_or_a_closed_sign_in_is_accepted(config: dict[str, Any]) -> None:
    assert problems(**config) == []


def test_a_route_with_an_empty_allow_of_its_own_is_reported_at_that_route() -> None:
    found = problems(
        login={"providers": [GOOGLE]},
        allow={"email_domains": ["example.com"]},
        routes=[route(), route("beta", allow={})],
    )
    assert len(found) == 1 and found[0].startswith("routes[1].allow: no access rule") and "beta" in found[0], found


def test_any_signed_in_beside_other_rules_is_reported() -> None:
    found = problems(allow={"any_signed_in": True, "emails": ["a@example.com"]})
    assert len(found) == 1 and found[0].startswith("allow.any_signed_in: admits everyone"), found
    assert "no effect" in found[0]


@pytest.mark.parametrize(
    ("config", "where"),
    [
        pytest.param({"allow": {"groups": ["platform"]}}, "allow.groups", id="global"),
        pytest.param({"routes": [route(allow={"groups": ["platform"]})]}, "routes[0].allow.groups", id="route"),
        pytest.param(
            {"routes": [route(policy={"tools": [{"match": "x", "groups": ["platform"]}]})]},
            "routes[0].policy.tools[0].groups",
            id="policy-tool",
        ),
        pytest.param(
            {"routes": [route(policy={"resources": [{"match": "x", "groups": ["platform"]}]})]},
            "routes[0].policy.resources[0].groups",
            id="policy-resource",
        ),
    ],
)
def test_unqualified_group_names_are_refused_with_the_qualified_spelling(config: dict[str, Any], where: str) -> None:
    """Issue 10 #15: a GitHub organisation named like a Keycloak group must not satisfy a rule meant for the
    latter; the message shows how to write it for each configured sign-in method."""
    found = problems(login={"providers": [CORP]}, **config)
    assert len(found) == 1 and found[0].startswith(f"{where}: group 'platform' must name its provider"), found
    assert "corp:platform or local:platform" in found[0]


def test_a_group_of_an_unknown_provider_is_refused() -> None:
    found = problems(login={"providers": [CORP]}, allow={"groups": ["github:acme"]})
    assert len(found) == 1 and "unknown sign-in method 'github'" in found[0], found


def test_qualified_groups_are_accepted() -> None:
    assert (
        problems(
            login={"providers": [CORP, GITHUB]},
            allow={"groups": ["corp:platform", "gh:acme/platform", "local:eng", "corp:realm:admins"]},
        )
        == []
    )


def test_scope_descriptions_must_describe_the_routes_scopes() -> None:
    found = problems(routes=[route(scopes=["a:read"], scope_descriptions={"a:read": "Read", "a:write": "Write"})])
    assert found == ["routes[0].scope_descriptions.a:write: not one of this route's scopes (a:read)"]
    too_long = problems(routes=[route(scopes=["a:read"], scope_descriptions={"a:read": "x" * 201})])
    assert len(too_long) == 1 and too_long[0].startswith("routes[0].scope_descriptions.a:read:"), too_long


def test_checks_apply_to_models_passed_in_directly() -> None:
    """Settings(routes=[Route(...)]) (the demo builds its settings so) is checked like YAML."""
    from gateway.config import AllowRules, Route

    with pytest.raises(ConfigError) as raised:
        Settings(
            public_url=PUBLIC_URL, routes=[Route(name="a", upstream="http://h/mcp", allow=AllowRules(groups=["ops"]))]
        )
    assert raised.value.problems[0].startswith("routes[0].allow.groups: group 'ops'")
