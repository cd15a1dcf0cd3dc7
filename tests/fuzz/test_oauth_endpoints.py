"""Fuzzing the authorization server's JSON endpoints: /token, /revoke, /introspect, /register, /userinfo and the
discovery documents. Any input gets an OAuth JSON answer (RFC 6749 §5.2, RFC 7591 §3.2.2), never a 5xx."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import CONFIDENTIAL, INTROSPECTOR
from tests.fuzz.shapes import answer, assert_oauth_json
from tests.fuzz.strategies import (
    authorization_header,
    form_request,
    json_bytes,
    json_value,
    latin1_header,
    raw_json,
    text,
)

CLIENT_IDS = [CONFIDENTIAL["client_id"], INTROSPECTOR["name"], "https://127.0.0.1/cimd.json", "mcpgw_c_unknown"]


@given(
    path=st.sampled_from(["/token", "/revoke", "/introspect"]),
    request=form_request(),
    authorization=authorization_header(CLIENT_IDS),
    origin=st.one_of(st.none(), latin1_header),
)
async def test_form_endpoints_answer_oauth_json_whatever_the_body(
    fuzz_gateway: Any,
    aiohttp_client: Any,
    path: str,
    request: tuple[bytes, str],
    authorization: str | None,
    origin: str | None,
) -> None:
    """RFC 6749 §3.2/§5.2, RFC 7009, RFC 7662: forms, multipart, JSON and bytes; Basic and Bearer junk."""
    client = await aiohttp_client(fuzz_gateway)
    body, content_type = request
    headers = {"Content-Type": content_type} if content_type else {}
    if authorization is not None:
        headers["Authorization"] = authorization
    if origin is not None:
        headers["Origin"] = origin
    reply = await answer(await client.post(path, data=body, headers=headers))
    assert_oauth_json(reply, f"POST {path} {content_type!r} {body[:200]!r}")


@given(
    body=st.one_of(
        json_value.map(json_bytes),
        raw_json,
        st.binary(max_size=300),
        st.fixed_dictionaries(
            {"redirect_uris": st.lists(text, max_size=4)},
            optional={
                "client_name": json_value,
                "token_endpoint_auth_method": text,
                "grant_types": json_value,
                "response_types": json_value,
                "application_type": json_value,
                "scope": json_value,
                "logo_uri": json_value,
                "client_uri": json_value,
            },
        ).map(json_bytes),
    ),
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""]),
)
async def test_registration_answers_rfc7591_errors_whatever_the_body(
    fuzz_gateway: Any, aiohttp_client: Any, body: bytes, content_type: str
) -> None:
    """RFC 7591 §3.2: 201 with the registered metadata, or 400 invalid_client_metadata / invalid_redirect_uri."""
    client = await aiohttp_client(fuzz_gateway)
    headers = {"Content-Type": content_type} if content_type else {}
    reply = await answer(await client.post("/register", data=body, headers=headers))
    assert_oauth_json(reply, f"POST /register {body[:200]!r}")
    if reply.status == 201:
        registered = reply.json()
        assert isinstance(registered.get("client_id"), str) and registered.get("redirect_uris")


@given(
    method=st.sampled_from(["GET", "POST", "OPTIONS", "PUT", "DELETE"]),
    path=st.sampled_from(
        [
            "/userinfo",
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/fz/mcp",
            "/.well-known/jwks.json",
            "/token",
        ]
    ),
    query=st.dictionaries(text, text, max_size=4),
    authorization=authorization_header(CLIENT_IDS),
)
async def test_discovery_and_userinfo_answer_json_for_any_method_and_query(
    fuzz_gateway: Any, aiohttp_client: Any, method: str, path: str, query: dict[str, str], authorization: str | None
) -> None:
    client = await aiohttp_client(fuzz_gateway)
    headers = {"Authorization": authorization} if authorization is not None else {}
    reply = await answer(await client.request(method, path, params=query, headers=headers))
    assert_oauth_json(reply, f"{method} {path} {query!r}")
