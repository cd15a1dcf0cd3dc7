"""When a remembered approval replaces the consent page, `gateway.oauth.consent` (issue 10 #6; RFC 8252 §8.6)."""

from __future__ import annotations

import pytest

from gateway.oauth.consent import MAX_REMEMBERED_REDIRECTS, build_consent, is_native_redirect, may_skip_consent
from gateway.store.records import ClientRecord, ConsentRecord


@pytest.mark.parametrize(
    ("uri", "native"),
    [
        ("http://127.0.0.1:33418/callback", True),
        ("http://localhost:8080/cb", True),
        ("http://[::1]:1234/cb", True),
        ("https://127.0.0.2/cb", True),  # any loopback address, any scheme
        ("http://app.localhost/cb", True),  # RFC 6761: *.localhost is loopback
        ("com.example.app:/oauth2redirect", True),  # private-use scheme: any local app may claim it
        ("cursor://anysphere.cursor-retrieval/oauth/callback", True),
        ("https://app.example.com/callback", False),
        ("https://claude.ai/api/mcp/auth_callback", False),
        ("http://127.0.0.1.example.com/cb", False),
    ],
)
def test_native_redirects_are_loopback_or_private_use(uri: str, native: bool) -> None:
    assert is_native_redirect(uri) is native


PUBLIC = ClientRecord(client_id="c", kind="dcr", redirect_uris=("http://127.0.0.1/cb",))
CONFIDENTIAL = PUBLIC.model_copy(update={"token_endpoint_auth_method": "client_secret_basic"})
APPROVED = ConsentRecord(
    scopes=("a:read", "a:write"),
    granted_at=0,
    redirect_uris=("http://127.0.0.1:33418/cb", "com.example.app:/cb", "https://app.example/cb"),
)
OLD_RECORD = ConsentRecord(scopes=("a:read",), granted_at=0)  # stored before redirect URIs were remembered


@pytest.mark.parametrize(
    ("remembered", "scopes", "client", "redirect_uri", "skip"),
    [
        pytest.param(None, ("a:read",), PUBLIC, "https://app.example/cb", False, id="nothing-remembered"),
        pytest.param(APPROVED, ("a:read",), PUBLIC, "http://127.0.0.1:33418/cb", True, id="same-loopback-port"),
        pytest.param(APPROVED, ("a:read",), PUBLIC, "http://127.0.0.1:50999/cb", False, id="other-loopback-port"),
        pytest.param(APPROVED, ("a:read",), PUBLIC, "http://localhost:33418/cb", False, id="other-loopback-host"),
        pytest.param(APPROVED, ("a:read",), PUBLIC, "com.example.app:/cb", True, id="same-private-use-uri"),
        pytest.param(APPROVED, ("a:read",), PUBLIC, "com.example.app:/other", False, id="other-private-use-uri"),
        pytest.param(APPROVED, ("a:read",), PUBLIC, "https://other.example/cb", True, id="public-https-redirect"),
        pytest.param(APPROVED, ("a:read",), CONFIDENTIAL, "http://127.0.0.1:50999/cb", True, id="confidential-client"),
        pytest.param(APPROVED, ("a:admin",), PUBLIC, "http://127.0.0.1:33418/cb", False, id="wider-scopes"),
        pytest.param(OLD_RECORD, ("a:read",), PUBLIC, "http://127.0.0.1:33418/cb", False, id="record-without-uris"),
        pytest.param(OLD_RECORD, ("a:read",), PUBLIC, "https://app.example/cb", True, id="old-record-https"),
    ],
)
def test_a_remembered_approval_covers_a_public_native_client_only_for_its_exact_redirect_uri(
    remembered: ConsentRecord | None, scopes: tuple[str, ...], client: ClientRecord, redirect_uri: str, skip: bool
) -> None:
    assert may_skip_consent(remembered, scopes, client, redirect_uri) is skip


def test_remembered_redirect_uris_are_bounded_and_the_most_recent_kept() -> None:
    record = None
    for port in range(40000, 40000 + MAX_REMEMBERED_REDIRECTS + 5):
        record = build_consent(record, ("a:read",), f"http://127.0.0.1:{port}/cb", now=port)
    assert record is not None and len(record.redirect_uris) == MAX_REMEMBERED_REDIRECTS
    assert record.redirect_uris[-1] == f"http://127.0.0.1:{port}/cb"
    again = build_consent(record, ("a:read",), record.redirect_uris[0], now=1)
    assert again.redirect_uris[-1] == record.redirect_uris[0]  # moved to the end, not repeated
    assert len(set(again.redirect_uris)) == len(again.redirect_uris) == MAX_REMEMBERED_REDIRECTS
