"""`POST /register`: Dynamic Client Registration over HTTP (RFC 7591 §3; MCP DCR-1..5, CORS-1, AUTHZ-3)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import route
from tests.support.oauth_client import authorize_url, new_verifier, relative
from tests.support.redis_cluster import raw_client

CALLBACK = "http://127.0.0.1:33418/callback"
CURSOR_URIS = [
    "cursor://anysphere.cursor-mcp/oauth/callback",
    "https://www.cursor.com/agents/mcp/oauth/callback",
    "http://localhost:8787/callback",
]


def payload(**extra: Any) -> dict[str, Any]:
    return {
        "redirect_uris": [CALLBACK],
        "client_name": "registration test",
        "application_type": "native",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        **extra,
    }


@pytest.mark.parametrize(
    ("method", "confidential"),
    [("none", False), ("client_secret_post", True), ("client_secret_basic", True)],
)
async def test_registration_is_201_no_store_and_echoes_the_requested_metadata(
    gateway, aiohttp_client, method, confidential
):
    """MCP DCR-1/DCR-2 (RFC 7591 §3.2.1): 201 JSON with client_id, client_id_issued_at and the metadata as
    registered, echoing token_endpoint_auth_method (ChatGPT requires it); a secret only for confidential
    methods; Cache-Control no-store because credentials are in the body."""
    client = await aiohttp_client(gateway)
    response = await client.post("/register", json=payload(token_endpoint_auth_method=method))
    assert response.status == 201, await response.text()
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["token_endpoint_auth_method"] == method
    assert body["redirect_uris"] == [CALLBACK]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["response_types"] == ["code"]
    assert body["client_name"] == "registration test"
    assert body["application_type"] == "native"
    assert isinstance(body["client_id_issued_at"], int)
    assert body["client_id"] and not body["client_id"].startswith("https://")  # CIMD-7
    if confidential:
        assert body["client_secret"]
        assert body["client_secret_expires_at"] == 0
    else:
        assert "client_secret" not in body
        assert "client_secret_expires_at" not in body


async def test_cursor_registration_keeps_all_three_redirect_uris(gateway, aiohttp_client):
    """MCP DCR-4: Cursor registers cursor://, https and loopback URIs in one request; refusing breaks it."""
    client = await aiohttp_client(gateway)
    response = await client.post(
        "/register", json={"redirect_uris": CURSOR_URIS, "client_name": "Cursor", "token_endpoint_auth_method": "none"}
    )
    assert response.status == 201
    assert (await response.json())["redirect_uris"] == CURSOR_URIS


@pytest.mark.parametrize(
    ("name", "callback", "method"),
    [
        pytest.param("claude", "https://claude.ai/api/mcp/auth_callback", "client_secret_post", id="claude"),
        pytest.param("chatgpt", "https://chatgpt.com/connector_platform_oauth_redirect", "none", id="chatgpt"),
    ],
)
async def test_hosted_connector_callbacks_are_accepted(gateway, aiohttp_client, name, callback, method):
    """MCP DCR-2/DCR-4: claude.ai (now client_secret_post, claude-ai-mcp issue 1043) and ChatGPT register
    their https callbacks; both are kept and the method echoed."""
    client = await aiohttp_client(gateway)
    response = await client.post(
        "/register", json={"redirect_uris": [callback], "client_name": name, "token_endpoint_auth_method": method}
    )
    assert response.status == 201
    body = await response.json()
    assert body["redirect_uris"] == [callback]
    assert body["token_endpoint_auth_method"] == method


async def test_registration_with_only_bad_redirect_uris_is_invalid_redirect_uri(gateway, aiohttp_client):
    """RFC 7591 §3.2.2 / MCP DCR-1: 400 JSON {"error": "invalid_redirect_uri"}, not cached."""
    client = await aiohttp_client(gateway)
    response = await client.post(
        "/register",
        json={"redirect_uris": ["javascript:alert(1)", "http://evil.example/cb", "https://client.example.com/cb#frag"]},
    )
    assert response.status == 400
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["error"] == "invalid_redirect_uri"
    assert body["error_description"]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        pytest.param(b"redirect_uris=https://client.example.com/cb", "application/x-www-form-urlencoded", id="form"),
        pytest.param(b"{not json", "application/json", id="broken-json"),
        pytest.param(b"", "application/json", id="empty"),
        pytest.param(b"\xff\xfe", "application/json", id="not-utf8"),
        pytest.param(b'["https://client.example.com/cb"]', "application/json", id="json-array"),
        pytest.param(b"null", "application/json", id="json-null"),
        pytest.param(
            b'{"redirect_uris": ["https://client.example.com/cb"], "token_endpoint_auth_method": "bogus"}',
            "application/json",
            id="bad-auth-method",
        ),
    ],
)
async def test_malformed_registration_is_invalid_client_metadata_never_500(gateway, aiohttp_client, data, content_type):
    """RFC 7591 §3.2.2: 400 {"error": "invalid_client_metadata"} for a body that is not a JSON object or has a
    bad field; a parse failure never becomes a 500."""
    client = await aiohttp_client(gateway)
    response = await client.post("/register", data=data, headers={"Content-Type": content_type})
    assert response.status == 400
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert (await response.json())["error"] == "invalid_client_metadata"


async def test_registrations_beyond_the_per_minute_limit_get_429_with_retry_after(
    start_gateway, upstream, aiohttp_client
):
    """MCP DCR-5: Claude registers a new client on every fresh connection, so /register is rate-limited per
    address (`oauth.register_rate_per_minute`); the refusal says when to retry and keeps CORS."""
    server = await start_gateway([route("alpha", upstream.url)], oauth={"register_rate_per_minute": 3})
    client = await aiohttp_client(server)
    for _ in range(3):
        assert (await client.post("/register", json=payload(token_endpoint_auth_method="none"))).status == 201
    refused = await client.post("/register", json=payload(token_endpoint_auth_method="none"))
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.content_type == "application/json"
    assert (await refused.json())["error"]
    assert refused.headers["Access-Control-Allow-Origin"] == "*"


async def test_registration_answers_cors_star_on_the_201_and_the_preflight(gateway, aiohttp_client):
    """MCP DCR-1 / CORS-1: Inspector registers from a browser; `*` with no credentials, Content-Type allowed."""
    client = await aiohttp_client(gateway)
    preflight = await client.options(
        "/register",
        headers={
            "Origin": "http://localhost:6274",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, mcp-protocol-version",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "mcp-protocol-version", "authorization"} <= allowed
    assert "Access-Control-Allow-Credentials" not in preflight.headers

    created = await client.post(
        "/register", json=payload(token_endpoint_auth_method="none"), headers={"Origin": "http://localhost:6274"}
    )
    assert created.status == 201
    assert created.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in created.headers


async def test_registered_client_can_start_an_authorization(gateway, aiohttp_client):
    """MCP DCR-1 → AUTHZ-1: the new client_id and its redirect URI are accepted at /authorize, which shows
    the sign-in page naming the client (no redirect: nobody is signed in yet)."""
    client = await aiohttp_client(gateway)
    registered = await (await client.post("/register", json=payload(token_endpoint_auth_method="none"))).json()
    page = await client.get(
        relative(authorize_url(gateway, registered["client_id"], verifier=new_verifier(), redirect_uri=CALLBACK)),
        allow_redirects=False,
    )
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    assert 'action="/authorize/login"' in html
    assert "registration test" in html


async def test_dcr_client_expires_when_idle_and_each_use_slides_the_expiry(
    start_gateway, upstream, aiohttp_client, redis_url, key_prefix
):
    """MCP DCR-5: DCR clients live in Redis with an idle TTL (`oauth.dcr_client_idle_ttl`), and using the
    client at /authorize renews it. Sliding is observed without sleeping: shorten the TTL in Redis, use the
    client, and see the full idle TTL again."""
    idle_ttl = 3600
    server = await start_gateway([route("alpha", upstream.url)], oauth={"dcr_client_idle_ttl": idle_ttl})
    client = await aiohttp_client(server)
    registered = await (await client.post("/register", json=payload(token_endpoint_auth_method="none"))).json()
    key = f"{key_prefix}:client:{{{registered['client_id']}}}"
    raw = raw_client(redis_url)
    try:
        first = await raw.ttl(key)
        assert 0 < first <= idle_ttl
        await raw.expire(key, 100)  # as if the client had been idle for almost an hour

        page = await client.get(
            relative(authorize_url(server, registered["client_id"], verifier=new_verifier(), redirect_uri=CALLBACK)),
            allow_redirects=False,
        )
        assert page.status == 200
        slid = await raw.ttl(key)
        assert 100 < slid <= idle_ttl
        assert slid >= first - 5  # back to (about) the full idle TTL, never shorter than at registration
    finally:
        await raw.aclose()


# -- issue 10: bounds (finding 1), invalid Unicode (fuzzing), private-use schemes (finding 18) ------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            b'{"redirect_uris": ["http://127.0.0.1:33418/callback"], "client_name": "\\ud800"}',
            id="lone-surrogate-in-client-name",
        ),
        pytest.param(
            b'{"redirect_uris": ["http://127.0.0.1:33418/callback"], "software_id": "\\udfff"}',
            id="lone-surrogate-in-software-id",
        ),
        pytest.param(b'{"redirect_uris": ["http://127.0.0.1:33418/callback\\ud800"]}', id="in-a-redirect-uri"),
        pytest.param(
            b'{"redirect_uris": ["http://127.0.0.1:33418/callback"], "contacts": ["\\ud800"]}',
            id="in-an-unknown-member",
        ),
        pytest.param(
            b'{"redirect_uris": ["http://127.0.0.1:33418/callback"], "redirect_uris": ["https://x.example/"]}',
            id="duplicate-member",
        ),
    ],
)
async def test_json_strings_that_are_not_valid_unicode_are_400_not_500(gateway, aiohttp_client, store, data):
    """Found by fuzzing (issue 10): json.loads accepts a lone surrogate escape and saving the client then raised
    (500). Every client JSON string must be valid Unicode: 400 invalid_client_metadata, and nothing is stored."""
    client = await aiohttp_client(gateway)
    response = await client.post("/register", data=data, headers={"Content-Type": "application/json"})
    assert response.status == 400, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    assert (await response.json())["error"] == "invalid_client_metadata"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_registration_body_over_32_kib_is_413_with_an_oauth_error(gateway, aiohttp_client, chunked):
    """Issue 10 finding 1: /register has a cap of its own (32 KiB; real bodies are < 1 KiB), not
    proxy.max_body_bytes (4 MiB). 413 with RFC 7591's JSON error; a declared length over the cap is refused before
    the body is read, a chunked one as soon as the cap is passed."""
    client = await aiohttp_client(gateway)
    body = json.dumps({"redirect_uris": [f"https://c.example/{i}" for i in range(4000)]}).encode()
    assert len(body) > 32 * 1024

    async def chunks():
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = await client.post(
        "/register", data=chunks() if chunked else body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    answer = await response.json()
    assert answer["error"] == "invalid_client_metadata"
    assert "32768" in answer["error_description"]


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        pytest.param(
            {"redirect_uris": [f"http://127.0.0.1:{1000 + i}/cb" for i in range(11)]},
            "invalid_redirect_uri",
            id="eleven-redirect-uris",
        ),
        pytest.param({"redirect_uris": ["https://c.example/" + "a" * 2000]}, "invalid_redirect_uri", id="long-uri"),
        pytest.param({"client_name": "n" * 201}, "invalid_client_metadata", id="long-client-name"),
        pytest.param({f"x-{i}": i for i in range(40)}, "invalid_client_metadata", id="many-unknown-members"),
        pytest.param({"grant_types": ["authorization_code"] * 11}, "invalid_client_metadata", id="many-grant-types"),
    ],
)
async def test_registrations_over_a_bound_are_refused_and_store_nothing(gateway, aiohttp_client, extra, error):
    """RFC 7591 §3.2.2 error codes for every bound (10 redirect URIs of <= 2000 characters, 200-character names,
    32 members, 10 grant types); before, all of these were stored (a client name was cut)."""
    client = await aiohttp_client(gateway)
    response = await client.post("/register", json=payload(token_endpoint_auth_method="none", **extra))
    assert response.status == 400, await response.text()
    assert (await response.json())["error"] == error


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"client_name": "Acme Notes\u202egnp.exe"}, id="bidi-override-in-name"),
        pytest.param({"client_name": "Acme\u2066Notes\u2069"}, id="isolate-in-name"),
        pytest.param({"client_name": "Acme\u200bNotes"}, id="zero-width-in-name"),
        pytest.param({"client_name#ja": "Acme\x07"}, id="control-in-localized-name"),
        pytest.param({"client_uri": "https://acme.example/\u202e"}, id="bidi-in-client-uri"),
        pytest.param({"tos_uri": "https://acme.example/\u200d"}, id="zero-width-in-tos-uri"),
    ],
)
async def test_shown_strings_with_hidden_characters_are_refused_at_registration(gateway, aiohttp_client, store, extra):
    """Security review 2, R11: a name shown on the consent page with a bidi override, isolate, zero-width or
    control character (it reads as something else) is refused whole with invalid_client_metadata, not cleaned."""
    client = await aiohttp_client(gateway)
    response = await client.post("/register", json=payload(token_endpoint_auth_method="none", **extra))
    assert response.status == 400, await response.text()
    body = await response.json()
    assert body["error"] == "invalid_client_metadata" and "U+" in body["error_description"]


@pytest.mark.parametrize("uri", ["ms-msdt:-id%20PCWDiagnostic%20/skip%20force", "search-ms:query=x&crumb=location:x"])
async def test_os_handler_schemes_are_refused_at_registration(gateway, aiohttp_client, uri):
    """Issue 10 finding 18 / RFC 8252 §7.1: private-use schemes must be reverse-DNS (com.example.app) or listed in
    `oauth.private_use_schemes`; ms-msdt: and search-ms: were registered and redirected to before."""
    client = await aiohttp_client(gateway)
    response = await client.post("/register", json={"redirect_uris": [uri], "token_endpoint_auth_method": "none"})
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "invalid_redirect_uri"
    assert "private-use scheme" in body["error_description"]


async def test_reverse_dns_schemes_and_configured_schemes_are_accepted(start_gateway, upstream, aiohttp_client):
    """A reverse-DNS scheme always; another only when configured: with `private_use_schemes: [myapp]` Cursor's
    cursor:// is dropped from its three URIs and myapp: kept."""
    server = await start_gateway([route("alpha", upstream.url)], oauth={"private_use_schemes": ["myapp"]})
    client = await aiohttp_client(server)
    uris = ["com.example.notes:/oauth2redirect", "myapp:/cb", *CURSOR_URIS]
    response = await client.post("/register", json={"redirect_uris": uris, "token_endpoint_auth_method": "none"})
    assert response.status == 201, await response.text()
    assert (await response.json())["redirect_uris"] == [
        "com.example.notes:/oauth2redirect",
        "myapp:/cb",
        *CURSOR_URIS[1:],
    ]


async def test_a_client_stored_before_the_scheme_rule_cannot_redirect_to_its_old_scheme(gateway, aiohttp_client, store):
    """A DCR client saved before this release with an `ms-msdt:` redirect keeps its other URIs; /authorize to the
    old scheme is an error page, never a redirect (the rule applies to clients loaded from the store too)."""
    from gateway.store.records import ClientRecord

    record = ClientRecord(
        client_id="mcpgw_c_legacy", kind="dcr", redirect_uris=("ms-msdt:-id%20x", CALLBACK), client_name="legacy"
    )
    await store.save_client(record, 3600)
    client = await aiohttp_client(gateway)
    for uri, status in (("ms-msdt:-id%20x", 400), (CALLBACK, 200)):
        page = await client.get(
            relative(authorize_url(gateway, "mcpgw_c_legacy", verifier=new_verifier(), redirect_uri=uri)),
            allow_redirects=False,
        )
        assert page.status == status, uri
        assert "Location" not in page.headers


async def test_the_registration_audit_line_stays_small(start_gateway, upstream, aiohttp_client, tmp_path):
    """Issue 10 finding 1: the review's registration wrote a 3.9 MB audit line. The largest registration allowed
    (10 URIs of 2000 characters) writes a line of a few KiB: the audit log cuts long strings and marks the cut."""
    log = tmp_path / "audit.jsonl"
    server = await start_gateway([route("alpha", upstream.url)], audit={"path": str(log)})
    client = await aiohttp_client(server)
    uris = [f"https://client.example.com/{i}/" + "a" * (2000 - 29) for i in range(10)]
    response = await client.post("/register", json={"redirect_uris": uris, "token_endpoint_auth_method": "none"})
    assert response.status == 201
    lines = [line for line in log.read_text().splitlines() if '"oauth.register"' in line]
    assert len(lines) == 1
    assert len(lines[0]) < 8 * 1024
    logged = json.loads(lines[0])["redirect_uris"]
    assert len(logged) == 10 and all(u.endswith("…(+1488)") for u in logged)
