"""Dynamic Client Registration parsing (RFC 7591 §2-3; MCP DCR-1..5, CIMD-7)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.oauth.errors import InvalidClientMetadataError, InvalidRedirectUriError
from gateway.oauth.registration import Registration, build_registration_response, parse_registration
from gateway.oauth.token_values import hash_token

NOW = 1_800_000_000.0
CALLBACK = "https://client.example.com/callback"
CURSOR_URIS = [
    "cursor://anysphere.cursor-mcp/oauth/callback",
    "https://www.cursor.com/agents/mcp/oauth/callback",
    "http://localhost:8787/callback",
]


def register(**body: Any) -> Registration:
    return parse_registration({"redirect_uris": [CALLBACK], **body}, now=NOW)


@pytest.mark.parametrize(
    ("method", "confidential"),
    [("none", False), ("client_secret_post", True), ("client_secret_basic", True)],
)
def test_requested_auth_method_is_echoed_with_a_secret_only_for_confidential_methods(
    method: str, confidential: bool
) -> None:
    """MCP DCR-2: ChatGPT rejects a response that does not echo its method; claude.ai now asks for
    client_secret_post. RFC 7591 §3.2.1: client_secret only for clients that authenticate with one."""
    registration = register(token_endpoint_auth_method=method)
    assert registration.record.token_endpoint_auth_method == method
    assert build_registration_response(registration)["token_endpoint_auth_method"] == method
    if confidential:
        assert registration.client_secret
        assert registration.record.client_secret_hash == hash_token(registration.client_secret)
        assert registration.record.is_public is False
    else:
        assert registration.client_secret is None
        assert registration.record.client_secret_hash is None
        assert registration.record.is_public is True


def test_omitted_auth_method_defaults_to_client_secret_basic() -> None:
    """RFC 7591 §2: "If unspecified or omitted, the default is client_secret_basic"."""
    registration = register()
    assert registration.record.token_endpoint_auth_method == "client_secret_basic"
    assert registration.client_secret


def test_cursor_keeps_all_three_redirect_uris() -> None:
    """MCP DCR-4: Cursor registers a private-use, an https and a loopback URI at once; refusing any breaks it."""
    registration = parse_registration({"redirect_uris": CURSOR_URIS, "token_endpoint_auth_method": "none"}, now=NOW)
    assert registration.record.redirect_uris == tuple(CURSOR_URIS)
    assert registration.dropped_redirect_uris == ()


def test_disallowed_redirect_uris_are_dropped_and_the_good_ones_kept() -> None:
    """MCP DCR-4 REC and RFC 7591 §3.2.1 (the server may replace requested metadata): drop, don't refuse."""
    uris = [CALLBACK, "javascript:alert(1)", "http://localhost:8787/callback", "http://evil.example/cb"]
    registration = parse_registration({"redirect_uris": uris}, now=NOW)
    assert registration.record.redirect_uris == (CALLBACK, "http://localhost:8787/callback")
    assert registration.dropped_redirect_uris == ("javascript:alert(1)", "http://evil.example/cb")
    assert build_registration_response(registration)["redirect_uris"] == [CALLBACK, "http://localhost:8787/callback"]


def test_duplicate_redirect_uris_are_kept_once() -> None:
    """Our choice: the returned list is the registered set, in request order."""
    registration = parse_registration({"redirect_uris": [CALLBACK, CALLBACK]}, now=NOW)
    assert registration.record.redirect_uris == (CALLBACK,)


@pytest.mark.parametrize(
    "uris",
    [
        pytest.param(["javascript:alert(1)"], id="javascript"),
        pytest.param(["http://evil.example/cb", "data:text/html,x", "file:///etc/passwd"], id="all-bad"),
        pytest.param(["https://client.example.com/cb#frag"], id="fragment"),
    ],
)
def test_no_acceptable_redirect_uri_is_invalid_redirect_uri(uris: list[str]) -> None:
    """RFC 7591 §3.2.2: invalid_redirect_uri when nothing usable remains (MCP DCR-4)."""
    with pytest.raises(InvalidRedirectUriError) as caught:
        parse_registration({"redirect_uris": uris}, now=NOW)
    assert caught.value.error == "invalid_redirect_uri"
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(None, id="null"),
        pytest.param([CALLBACK], id="array"),
        pytest.param("redirect_uris", id="string"),
        pytest.param({"redirect_uris": CALLBACK}, id="redirect-uris-string"),
        pytest.param({"redirect_uris": {"uri": CALLBACK}}, id="redirect-uris-object"),
        pytest.param(
            {"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "private_key_jwt"},
            id="auth-method-private-key-jwt",
        ),
        pytest.param({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "bogus"}, id="auth-method-bogus"),
        pytest.param({"redirect_uris": [CALLBACK], "response_types": ["token"]}, id="response-types-without-code"),
        pytest.param({"redirect_uris": [CALLBACK], "response_types": "code"}, id="response-types-string"),
        pytest.param({"redirect_uris": [CALLBACK], "grant_types": "authorization_code"}, id="grant-types-string"),
        pytest.param({"redirect_uris": [CALLBACK], "application_type": "browser"}, id="application-type-unknown"),
        pytest.param({"redirect_uris": [CALLBACK], "client_name": 42}, id="client-name-not-string"),
    ],
)
def test_malformed_metadata_is_invalid_client_metadata(body: Any) -> None:
    """RFC 7591 §3.2.2: invalid_client_metadata for a body that is not an object or a field of the wrong
    type or value (redirect_uris must be an array, RFC 7591 §2)."""
    with pytest.raises(InvalidClientMetadataError) as caught:
        parse_registration(body, now=NOW)
    assert caught.value.error == "invalid_client_metadata"
    assert caught.value.status == 400


@pytest.mark.parametrize("application_type", ["native", "web"])
def test_application_type_native_and_web_are_accepted_with_loopback_uris(application_type: str) -> None:
    """MCP DCR-3 (R26): clients send application_type; "web" does not make loopback URIs https-only."""
    registration = parse_registration(
        {"redirect_uris": ["http://127.0.0.1:33418/"], "application_type": application_type}, now=NOW
    )
    assert registration.record.application_type == application_type
    assert registration.record.redirect_uris == ("http://127.0.0.1:33418/",)


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        pytest.param(["authorization_code", "refresh_token"], ("authorization_code", "refresh_token"), id="both"),
        pytest.param(
            ["authorization_code", "client_credentials", "password"], ("authorization_code",), id="drops-unsupported"
        ),
        pytest.param(["refresh_token", "implicit"], ("authorization_code", "refresh_token"), id="adds-code"),
        pytest.param(["urn:ietf:params:oauth:grant-type:device_code"], ("authorization_code",), id="only-unsupported"),
    ],
)
def test_unsupported_grant_types_are_dropped(requested: list[str], granted: tuple[str, ...]) -> None:
    """RFC 7591 §3.2.1: the server may replace requested values; we support authorization_code and refresh."""
    registration = register(grant_types=requested)
    assert registration.record.grant_types == granted
    assert build_registration_response(registration)["grant_types"] == list(granted)


def test_generated_client_ids_are_unique_and_never_urls() -> None:
    """MCP CIMD-7: DCR client_ids must never start with https:// (those are CIMD documents)."""
    ids = {register().record.client_id for _ in range(20)}
    assert len(ids) == 20
    assert not any(client_id.startswith(("https://", "http://")) for client_id in ids)


def test_registration_response_has_credentials_and_the_registered_metadata() -> None:
    """RFC 7591 §3.2.1: client_id, client_id_issued_at, the metadata as registered, and the secret with
    client_secret_expires_at 0 (never expires); never the stored hash."""
    registration = register(
        token_endpoint_auth_method="client_secret_post",
        client_name="Claude",
        application_type="web",
        grant_types=["authorization_code", "refresh_token"],
    )
    response = build_registration_response(registration)
    assert response == {
        "client_id": registration.record.client_id,
        "client_id_issued_at": int(NOW),
        "client_secret": registration.client_secret,
        "client_secret_expires_at": 0,
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "client_name": "Claude",
        "application_type": "web",
    }


def test_public_client_response_has_no_secret_fields() -> None:
    """RFC 7591 §3.2.1: client_secret_expires_at is REQUIRED only if client_secret is issued."""
    response = build_registration_response(register(token_endpoint_auth_method="none"))
    assert "client_secret" not in response
    assert "client_secret_expires_at" not in response
    assert "client_secret_hash" not in response
    assert response["client_id_issued_at"] == int(NOW)


# -- bounds (issue 10, finding 1) and private-use schemes (finding 18) ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(
            {"redirect_uris": [f"https://client.example.com/cb/{i}" for i in range(11)]},
            "invalid_redirect_uri",
            id="eleven-redirect-uris",
        ),
        pytest.param(
            {"redirect_uris": [CALLBACK, "https://client.example.com/" + "a" * 2000]},
            "invalid_redirect_uri",
            id="uri-over-2000-characters",
        ),
        pytest.param(
            {"redirect_uris": [CALLBACK], "client_name": "n" * 201},
            "invalid_client_metadata",
            id="client-name-over-200",
        ),
        pytest.param(
            {"redirect_uris": [CALLBACK], "client_uri": "https://c.example/" + "a" * 2000},
            "invalid_client_metadata",
            id="client-uri-over-2000",
        ),
        pytest.param(
            {"redirect_uris": [CALLBACK], "logo_uri": "https://c.example/" + "a" * 2000},
            "invalid_client_metadata",
            id="logo-uri-over-2000",
        ),
        pytest.param(
            {"redirect_uris": [CALLBACK], "scope": "s " * 501}, "invalid_client_metadata", id="scope-over-1000"
        ),
        pytest.param(
            {"redirect_uris": [CALLBACK], "software_id": "x" * 201},
            "invalid_client_metadata",
            id="software-id-over-200",
        ),
        pytest.param(
            {"redirect_uris": [CALLBACK], "software_version": "1" * 201},
            "invalid_client_metadata",
            id="software-version-over-200",
        ),
        pytest.param(
            {"redirect_uris": [CALLBACK], "grant_types": ["authorization_code"] * 11},
            "invalid_client_metadata",
            id="eleven-grant-types",
        ),
        pytest.param(
            {"redirect_uris": [CALLBACK], "response_types": ["code"] * 11},
            "invalid_client_metadata",
            id="eleven-response-types",
        ),
        pytest.param(
            {"redirect_uris": [CALLBACK], "grant_types": ["g" * 201]},
            "invalid_client_metadata",
            id="grant-type-over-200",
        ),
        pytest.param(
            {"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "x" * 10_000},
            "invalid_client_metadata",
            id="auth-method-huge",
        ),
    ],
)
def test_values_over_their_bounds_are_refused_not_cut(body: dict[str, Any], error: str) -> None:
    """Issue 10 finding 1 / RFC 7591 §3.2.2: one registration held the loop for two minutes with 140,000 URIs and
    stored 4 MiB. Every collection and string has a bound (10 redirect URIs of at most 2000 characters, names of
    200, scope of 1000, 10 grant/response types); over it the request is refused (before: cut or stored)."""
    with pytest.raises((InvalidClientMetadataError, InvalidRedirectUriError)) as caught:
        parse_registration(body, now=NOW)
    assert caught.value.error == error
    assert caught.value.status == 400


def test_ten_redirect_uris_of_2000_characters_are_accepted() -> None:
    """The bounds are inclusive: the most a client may register is still a valid registration."""
    uris = [f"https://client.example.com/{i}/" + "a" * (2000 - 29) for i in range(10)]
    assert all(len(u) == 2000 for u in uris)
    registration = parse_registration({"redirect_uris": uris, "client_name": "n" * 200}, now=NOW)
    assert registration.record.redirect_uris == tuple(uris)
    assert registration.record.client_name == "n" * 200


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("ms-msdt:-id%20PCWDiagnostic%20/skip%20force", id="ms-msdt"),
        pytest.param("search-ms:query=invoice&crumb=location:%5C%5Cevil.example", id="search-ms"),
        pytest.param("ms-officecmd:{}", id="ms-officecmd"),
        pytest.param("steam://run/1", id="steam"),
        pytest.param("localhost:8080/cb", id="host-parsed-as-scheme"),
        pytest.param("com..example:/cb", id="empty-label"),
        pytest.param("com.-example:/cb", id="label-starting-with-hyphen"),
    ],
)
def test_private_use_schemes_must_be_reverse_dns_or_allowed(uri: str) -> None:
    """Issue 10 finding 18 / RFC 8252 §7.1 (apps MUST use a reverse-domain scheme): OS handler schemes without a
    period (`ms-msdt:`, `search-ms:`) are refused unless `oauth.private_use_schemes` lists them."""
    with pytest.raises(InvalidRedirectUriError) as caught:
        parse_registration({"redirect_uris": [uri]}, now=NOW)
    assert "private-use scheme" in caught.value.description


@pytest.mark.parametrize(
    ("uri", "schemes"),
    [
        pytest.param("com.example.app:/oauth2redirect", (), id="reverse-dns-always"),
        pytest.param("com.example.app://callback", (), id="reverse-dns-with-authority"),
        pytest.param("cursor://anysphere.cursor-mcp/oauth/callback", ("cursor",), id="cursor-listed"),
        pytest.param("vscode://vscode.github-authentication/did-authenticate", ("vscode",), id="vscode-listed"),
        pytest.param("Cursor://anysphere.cursor-mcp/oauth/callback", ("cursor",), id="scheme-case-insensitive"),
        pytest.param("myapp:/cb", ("myapp",), id="operator-listed"),
    ],
)
def test_reverse_dns_and_listed_private_use_schemes_are_accepted(uri: str, schemes: tuple[str, ...]) -> None:
    """RFC 8252 §7.1 reverse-DNS schemes always; others only when configured (default: Cursor, VS Code,
    Windsurf, which register schemes without a period)."""
    registration = parse_registration({"redirect_uris": [uri]}, now=NOW, private_use_schemes=schemes)
    assert registration.record.redirect_uris == (uri,)


def test_an_empty_scheme_list_refuses_cursor() -> None:
    """`oauth.private_use_schemes: []` leaves reverse-DNS schemes only."""
    with pytest.raises(InvalidRedirectUriError):
        parse_registration({"redirect_uris": [CURSOR_URIS[0]]}, now=NOW, private_use_schemes=())
    kept = parse_registration({"redirect_uris": CURSOR_URIS}, now=NOW, private_use_schemes=())
    assert kept.record.redirect_uris == tuple(CURSOR_URIS[1:])
