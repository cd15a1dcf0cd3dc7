"""What /authorize accepts from the client before anything is stored or redirected (issue 10: bound every
client-controlled input; RFC 6749 §3.1: parameters at most once) and where its errors go (#11, RFC 9700 §4.11.2)."""

from __future__ import annotations

import pytest

from gateway.oauth.authorize import (
    MAX_PARAMETER_LENGTH,
    MAX_PARAMETERS,
    MAX_RESOURCES,
    MAX_SCOPES,
    errors_may_redirect,
    parse_query,
)
from gateway.oauth.errors import UnsafeRedirectError
from gateway.store.records import ClientRecord

BASE = [("response_type", "code"), ("client_id", "c"), ("state", "s")]


@pytest.mark.parametrize(
    "items",
    [
        pytest.param([*BASE, ("state", "again")], id="repeated-state"),
        pytest.param([("client_id", "a"), ("client_id", "b")], id="repeated-client-id"),
        pytest.param(
            [("redirect_uri", "https://a.example/cb"), ("redirect_uri", "https://b.example/cb")],
            id="repeated-redirect-uri",
        ),
        pytest.param([("state", "s" * (MAX_PARAMETER_LENGTH + 1))], id="long-value"),
        pytest.param([("x" * 65, "1")], id="long-name"),
        pytest.param([("resource", "https://gw.example/mcp")] * (MAX_RESOURCES + 1), id="many-resources"),
        pytest.param([(f"p{i}", "1") for i in range(MAX_PARAMETERS + 1)], id="many-parameters"),
        pytest.param([("scope", " ".join(f"s{i}" for i in range(MAX_SCOPES + 1)))], id="many-scopes"),
    ],
)
def test_oversized_or_repeated_parameters_are_refused(items: list[tuple[str, str]]) -> None:
    with pytest.raises(UnsafeRedirectError):
        parse_query(items)


def test_parameters_within_bounds_are_read_and_resources_kept_in_order() -> None:
    items = [
        *BASE,
        ("resource", "https://gw.example/a/mcp"),
        ("resource", "https://gw.example/a/mcp"),
        ("scope", " ".join(f"s{i}" for i in range(MAX_SCOPES))),
        ("nonce", "n" * MAX_PARAMETER_LENGTH),
    ]
    params, resources = parse_query(items)
    assert params["client_id"] == "c" and len(params["nonce"]) == MAX_PARAMETER_LENGTH
    assert resources == ["https://gw.example/a/mcp"] * 2


@pytest.mark.parametrize(
    ("kind", "redirects"),
    [
        ("config", True),  # YAML `clients:`: the administrator configured its redirect URIs
        ("static", True),  # `clients add`: the same
        ("dcr", False),  # anyone may register any redirect URI
        ("cimd", False),  # whoever controls the document's host chose them
    ],
)
def test_only_pre_registered_clients_get_request_errors_by_redirect(kind: str, redirects: bool) -> None:
    client = ClientRecord(client_id="c", kind=kind, redirect_uris=("https://app.example/cb",))
    assert errors_may_redirect(client) is redirects
