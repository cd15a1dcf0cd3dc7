"""Authorization request parameters: client/redirect trust, resource binding, scopes, and refresh sealing
(RFC 6749 §3.1.2.3 and §4.1.2.1, RFC 8707 §2, MCP AUTHZ-3..5, SCP-4, TOK-3)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import Settings
from gateway.oauth.authorize import parse_client_redirect, resolve_routes
from gateway.oauth.errors import InvalidTargetError, UnsafeRedirectError
from gateway.oauth.scopes import OFFLINE_ACCESS, OPENID, grant_scopes, is_narrowing
from gateway.oauth.sealing import seal, unseal
from gateway.routing import RouteInfo, RouteTable
from gateway.store.records import ClientRecord

PUBLIC = "https://gw.example.com"
HOST = "gw.example.com"
UPSTREAM = "http://127.0.0.1:9/mcp"  # never contacted


def routes(*specs: dict[str, Any]) -> list[RouteInfo]:
    return RouteTable(Settings(public_url=PUBLIC, routes=list(specs))).routes


def path_route(name: str) -> dict[str, Any]:
    return {"name": name, "path": f"/{name}/mcp", "upstream": UPSTREAM}


ALPHA, BETA = path_route("alpha"), path_route("beta")
NOTES = {"name": "notes", "host": "notes.example.com", "upstream": UPSTREAM}  # resource https://notes.example.com/mcp


def names(infos: list[RouteInfo]) -> list[str]:
    return [info.route.name for info in infos]


# resolve_routes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "host", "expected"),
    [
        pytest.param(["https://gw.example.com/alpha/mcp"], HOST, ["alpha"], id="exact-alpha"),
        pytest.param(["https://gw.example.com/beta/mcp"], HOST, ["beta"], id="exact-beta"),
        pytest.param(["HTTPS://GW.Example.COM/beta/mcp"], HOST, ["beta"], id="scheme-and-host-case"),
        pytest.param(
            ["https://gw.example.com/beta/mcp", "https://GW.example.com/beta/mcp"],
            HOST,
            ["beta"],
            id="same-resource-twice",
        ),
        pytest.param(["https://gw.example.com/"], HOST, ["alpha", "beta"], id="host-only-with-slash"),
        pytest.param(["https://gw.example.com"], HOST, ["alpha", "beta"], id="host-only-without-slash"),
        pytest.param(["https://GW.EXAMPLE.COM/"], HOST, ["alpha", "beta"], id="host-only-uppercase"),
        pytest.param([], HOST, ["alpha", "beta"], id="missing-resource-routes-on-request-host"),
        pytest.param([""], HOST, ["alpha", "beta"], id="empty-resource-is-missing"),
        pytest.param(["https://notes.example.com/mcp"], HOST, ["notes"], id="host-based-route-exact"),
        pytest.param(["https://notes.example.com/"], HOST, ["notes"], id="host-based-route-host-only"),
        pytest.param([], "notes.example.com", ["notes"], id="missing-resource-on-route-host"),
        pytest.param([], "NOTES.example.com", ["notes"], id="missing-resource-request-host-case"),
    ],
)
def test_resolve_routes_binds_the_named_resource_or_the_routes_on_that_host(
    resources: list[str], host: str, expected: list[str]
) -> None:
    """MCP AUTHZ-5: compare after lowercasing scheme and host, `https://h` == `https://h/`; TS/PY clients
    append "/" to host-only resources; some clients omit `resource` (§12 policy: the user picks on consent)."""
    assert names(resolve_routes(resources, routes(ALPHA, BETA, NOTES), host)) == expected


@pytest.mark.parametrize(
    "resources",
    [
        pytest.param([], id="missing"),
        pytest.param(["https://gw.example.com/"], id="host-only"),
        pytest.param(["https://gw.example.com/alpha/mcp"], id="exact"),
    ],
)
def test_resolve_routes_with_a_single_route_binds_it(resources: list[str]) -> None:
    """Our choice (spec §12): with one route there is nothing to choose, so a missing resource binds it
    (Claude Code 2.1.251 and claude.ai custom connectors omit `resource`)."""
    assert names(resolve_routes(resources, routes(ALPHA), HOST)) == ["alpha"]


@pytest.mark.parametrize(
    "resources",
    [
        pytest.param(["https://gw.example.com/gamma/mcp"], id="unknown-path"),
        pytest.param(["https://gw.example.com/alpha/mcp/"], id="trailing-slash-is-another-resource"),
        pytest.param(["https://gw.example.com/ALPHA/mcp"], id="path-case"),
        pytest.param(["https://gw.example.com/alpha/mcp?x=1"], id="added-query"),
        pytest.param(["https://gw.example.com/?x=1"], id="host-only-with-query"),
        pytest.param(["https://gw.example.com/alpha/mcp#frag"], id="fragment"),
        pytest.param(["https://gw.example.com/alpha/mcp#"], id="empty-fragment"),
        pytest.param(["/alpha/mcp"], id="relative"),
        pytest.param(["urn:example:alpha"], id="not-http"),
        pytest.param(["https://elsewhere.example/alpha/mcp"], id="other-host"),
        pytest.param(["https://elsewhere.example/"], id="host-only-other-host"),
        pytest.param(["https://gw.example.com:8443/"], id="host-only-other-port"),
        pytest.param(["https://gw.example.com/alpha/mcp", "https://gw.example.com/beta/mcp"], id="two-resources"),
        pytest.param(["https://gw.example.com/alpha/mcp", "https://gw.example.com/"], id="resource-and-host-only"),
    ],
)
def test_resolve_routes_refuses_resources_the_gateway_does_not_serve(resources: list[str]) -> None:
    """RFC 8707 §2: an absolute URI without a fragment that we serve, else invalid_target; we bind one
    resource per authorization request (MCP §12: one audience per token)."""
    with pytest.raises(InvalidTargetError) as caught:
        resolve_routes(resources, routes(ALPHA, BETA, NOTES), HOST)
    assert caught.value.error == "invalid_target"


@pytest.mark.parametrize(
    "resources",
    [
        pytest.param(["https://elsewhere.example/"], id="host-only-other-host"),
        pytest.param(["http://gw.example.com/"], id="host-only-other-scheme"),
        pytest.param(["https://elsewhere.example/alpha/mcp"], id="other-host"),
        pytest.param(["https://gw.example.com/alpha/mcp#frag"], id="fragment"),
    ],
)
def test_resolve_routes_with_a_single_route_still_refuses_a_foreign_resource(resources: list[str]) -> None:
    """RFC 8707 §2 / MCP AUTHZ-5: a resource that is not ours is invalid_target even when only one route
    exists; only a *missing* resource falls back to the single route."""
    with pytest.raises(InvalidTargetError):
        resolve_routes(resources, routes(ALPHA), HOST)


def test_resolve_routes_refuses_a_host_only_resource_with_another_scheme() -> None:
    """MCP AUTHZ-5: only scheme and host *case* are normalized; http://gw is not https://gw."""
    with pytest.raises(InvalidTargetError):
        resolve_routes(["http://gw.example.com/"], routes(ALPHA, BETA), HOST)


def test_resolve_routes_with_several_routes_and_no_route_on_the_host_is_invalid_target() -> None:
    """Our choice: a missing resource on a host that serves no route cannot be guessed."""
    with pytest.raises(InvalidTargetError):
        resolve_routes([], routes(NOTES, {**NOTES, "name": "wiki", "host": "wiki.example.com"}), HOST)


# parse_client_redirect --------------------------------------------------------------------------------------------


def client(*redirect_uris: str) -> ClientRecord:
    return ClientRecord(client_id="mcpgw_c_test", kind="dcr", redirect_uris=redirect_uris)


@pytest.mark.parametrize(
    ("record", "client_id", "redirect_uri"),
    [
        pytest.param(None, "mcpgw_c_unknown", "https://client.example.com/cb", id="unknown-client"),
        pytest.param(
            client("https://client.example.com/cb"), None, "https://client.example.com/cb", id="missing-client-id"
        ),
        pytest.param(
            client("https://client.example.com/cb"), "", "https://client.example.com/cb", id="empty-client-id"
        ),
        pytest.param(
            client("https://client.example.com/cb"),
            "mcpgw_c_test",
            "https://evil.example/cb",
            id="unregistered-redirect",
        ),
        pytest.param(
            client("https://client.example.com/cb"),
            "mcpgw_c_test",
            "https://client.example.com/cb/x",
            id="registered-prefix-only",
        ),
        pytest.param(
            client("http://localhost:8787/callback"),
            "mcpgw_c_test",
            "http://127.0.0.1:8787/callback",
            id="loopback-other-host-spelling",
        ),
        pytest.param(
            client("https://a.example/cb", "https://b.example/cb"),
            "mcpgw_c_test",
            None,
            id="missing-redirect-with-two-registered",
        ),
        pytest.param(
            client("https://a.example/cb", "https://b.example/cb"),
            "mcpgw_c_test",
            "",
            id="empty-redirect-with-two-registered",
        ),
    ],
)
def test_parse_client_redirect_refuses_untrusted_clients_and_redirects(
    record: ClientRecord | None, client_id: str | None, redirect_uri: str | None
) -> None:
    """MCP AUTHZ-3 / OAuth 2.1 §4.1.2.1: with an unknown client or an unregistered redirect URI, show an
    error page and never redirect (UnsafeRedirectError is not an OAuthError and has no redirect target)."""
    with pytest.raises(UnsafeRedirectError) as caught:
        parse_client_redirect(record, client_id, redirect_uri)
    assert caught.value.title
    assert caught.value.detail


@pytest.mark.parametrize(
    ("registered", "requested", "answer"),
    [
        pytest.param(
            ("https://client.example.com/cb",), None, "https://client.example.com/cb", id="missing-with-one-registered"
        ),
        pytest.param(
            ("https://client.example.com/cb",),
            "https://client.example.com/cb",
            "https://client.example.com/cb",
            id="exact",
        ),
        pytest.param(
            ("https://a.example/cb", "https://b.example/cb"),
            "https://b.example/cb",
            "https://b.example/cb",
            id="one-of-two",
        ),
        pytest.param(
            ("http://127.0.0.1:33418/",),
            "http://127.0.0.1:51234/",
            "http://127.0.0.1:51234/",
            id="loopback-port-as-requested",
        ),
    ],
)
def test_parse_client_redirect_answers_on_the_registered_or_requested_uri(
    registered: tuple[str, ...], requested: str | None, answer: str
) -> None:
    """RFC 6749 §3.1.2.3 (redirect_uri optional when exactly one is registered) and RFC 8252 §7.3 (the
    loopback port the client is actually listening on)."""
    assert parse_client_redirect(client(*registered), "mcpgw_c_test", requested) == answer


# grant_scopes / is_narrowing --------------------------------------------------------------------------------------

ROUTE_SCOPES = ["alpha:read", "alpha:write"]


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        pytest.param(("claudeai",), ("alpha:read", "alpha:write"), id="claudeai-gets-baseline"),
        pytest.param((OFFLINE_ACCESS,), ("alpha:read", "alpha:write"), id="offline-access-alone-gets-baseline"),
        pytest.param((), ("alpha:read", "alpha:write"), id="none-requested-gets-baseline"),
        pytest.param(("alpha:read",), ("alpha:read",), id="subset-kept"),
        pytest.param(("alpha:write", "alpha:read"), ("alpha:write", "alpha:read"), id="all-kept-in-request-order"),
        pytest.param(("alpha:read", OFFLINE_ACCESS), ("alpha:read",), id="offline-access-ignored"),
        pytest.param(("claudeai", "alpha:write"), ("alpha:write",), id="unknown-ignored-known-kept"),
        pytest.param(("beta:read",), ("alpha:read", "alpha:write"), id="other-route-scope-ignored"),
        pytest.param((OPENID, "alpha:read"), ("alpha:read", OPENID), id="openid-kept-after-the-route-scopes"),
        pytest.param((OPENID,), ("alpha:read", "alpha:write", OPENID), id="openid-alone-gets-baseline-and-openid"),
        pytest.param((OPENID, OPENID), ("alpha:read", "alpha:write", OPENID), id="openid-once"),
    ],
)
def test_grant_scopes_ignores_unknown_scopes_and_falls_back_to_the_route_baseline(
    requested: tuple[str, ...], granted: tuple[str, ...]
) -> None:
    """MCP SCP-4 REC: claude.ai sends scope=claudeai whatever we advertise: ignore unknown scopes and grant
    the baseline rather than invalid_scope; SEP-2207: offline_access is not a resource scope; SCP-3 subset;
    `openid` is an AS-level scope, kept when asked for (its tokens may read /userinfo)."""
    assert grant_scopes(requested, ROUTE_SCOPES) == granted


def test_grant_scopes_for_a_route_without_scopes_is_empty() -> None:
    """Our choice: a route that advertises no scopes issues scope-less tokens."""
    assert grant_scopes(("claudeai",), []) == ()


@pytest.mark.parametrize(
    ("requested", "granted", "narrowing"),
    [
        ((), ("a", "b"), True),
        (("a",), ("a", "b"), True),
        (("b", "a"), ("a", "b"), True),
        (("a", "c"), ("a", "b"), False),
        (("c",), (), False),
    ],
)
def test_is_narrowing_allows_a_subset_of_the_original_grant_only(
    requested: tuple[str, ...], granted: tuple[str, ...], narrowing: bool
) -> None:
    """RFC 6749 §6 / MCP TOK-3: a refresh may narrow the scope, never widen it."""
    assert is_narrowing(requested, granted) is narrowing


# sealing ----------------------------------------------------------------------------------------------------------

OLD = "mcpgw_rt_old-refresh-token-value"
SUCCESSOR = "mcpgw_rt_successor-value"


def test_sealed_successor_opens_with_the_old_token() -> None:
    """Our design (sealing.py): during the rotation grace window a racing client gets the same successor."""
    assert unseal(OLD, seal(OLD, SUCCESSOR)) == SUCCESSOR


def test_sealing_hides_the_successor_and_is_randomized() -> None:
    """Redis never holds a usable token: the sealed value does not contain it, and a fresh nonce each time."""
    first, second = seal(OLD, SUCCESSOR), seal(OLD, SUCCESSOR)
    assert SUCCESSOR not in first
    assert first != second
    assert unseal(OLD, second) == SUCCESSOR


@pytest.mark.parametrize(
    ("token", "sealed"),
    [
        pytest.param("mcpgw_rt_another-token", seal(OLD, SUCCESSOR), id="another-token"),
        pytest.param(OLD + "x", seal(OLD, SUCCESSOR), id="token-with-extra-char"),
        pytest.param(OLD, seal(OLD, SUCCESSOR)[:-4], id="truncated"),
        pytest.param(OLD, seal("mcpgw_rt_another-token", SUCCESSOR), id="sealed-under-another-token"),
        pytest.param(OLD, "", id="empty"),
        pytest.param(OLD, "not base64 at all!", id="not-base64"),
        pytest.param(OLD, "AAAA", id="too-short"),
        pytest.param(OLD, "é", id="non-ascii"),
    ],
)
def test_unseal_with_another_token_or_damaged_data_is_none(token: str, sealed: str) -> None:
    """sealing.unseal contract: None, never an exception, when `sealed` was not made with this token."""
    assert unseal(token, sealed) is None
