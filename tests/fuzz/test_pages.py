"""Fuzzing the browser-facing steps: GET /authorize with any query, and every page form (login, consent,
provider choice, sign-up, logout) with any body, with and without a session cookie. Pages answer HTML or a
redirect, and a redirect only ever goes to a redirect URI the client registered (RFC 6749 §4.1.2.1)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from gateway.oauth.pkce import s256
from tests.fuzz.conftest import CONFIDENTIAL
from tests.fuzz.shapes import answer, assert_page
from tests.fuzz.strategies import form_request, latin1_header, text

AUTHORIZE_PARAMS = [
    "response_type",
    "client_id",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
    "state",
    "scope",
    "resource",
    "prompt",
    "response_mode",
    "nonce",
    "request",
    "request_uri",
]
REDIRECTS = [CONFIDENTIAL["redirect_uris"][0], "http://127.0.0.1:33418/callback"]
VERIFIER = "v" * 64


@st.composite
def authorize_query(draw: st.DrawFn, client_ids: list[str]) -> str:
    """A query string: mostly plausible requests with one part broken, sometimes raw bytes and bad escapes.
    (`client_ids` differ from run to run: an index is drawn, so the drawn choices stay reproducible.)"""
    params = {
        "response_type": "code",
        "client_id": client_ids[draw(st.integers(0, len(client_ids) - 1))],
        "redirect_uri": draw(st.sampled_from(REDIRECTS)),
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
        "state": "fuzz",
        "resource": "http://127.0.0.1/fz/mcp",
    }
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        name = draw(st.one_of(st.sampled_from(AUTHORIZE_PARAMS), text))
        if draw(st.booleans()):
            params.pop(name, None)
        else:
            params[name] = draw(text)
    pairs = [
        f"{quote(k, safe='', errors='surrogatepass')}={quote(v, safe='', errors='surrogatepass')}"
        for k, v in params.items()
    ]
    extra = draw(
        st.sampled_from(
            [
                "",
                "&resource=https://other.example/",
                "&state=a&state=b",
                "&%zz=1",
                "&x=%ff%fe",
                "&client_id=" + "a" * 3000,
            ]
        )
    )
    return "&".join(pairs) + extra


async def _client_ids(client: Any) -> list[str]:
    registered = await client.post(
        "/register", json={"redirect_uris": REDIRECTS, "token_endpoint_auth_method": "none", "client_name": "fuzz"}
    )
    dcr = (await registered.json())["client_id"] if registered.status == 201 else "registration-refused"
    return [CONFIDENTIAL["client_id"], "https://127.0.0.1/cimd.json", "unknown-client", dcr]


@given(data=st.data())
async def test_authorize_answers_a_page_or_a_redirect_to_a_registered_uri(
    fuzz_gateway: Any, aiohttp_client: Any, data: st.DataObject
) -> None:
    client = await aiohttp_client(fuzz_gateway)
    query = data.draw(authorize_query(await _client_ids(client)))
    reply = await answer(await client.get("/authorize?" + query, allow_redirects=False))
    assert_page(reply, f"GET /authorize?{query[:300]}")
    if 300 <= reply.status < 400:
        target = reply.headers["Location"]
        assert any(target.startswith(uri + "?") for uri in REDIRECTS), f"redirect to {target}"


@given(
    path=st.sampled_from(
        ["/authorize/login", "/authorize/consent", "/authorize/provider", "/authorize/signup", "/logout"]
    ),
    request=form_request(),
    cookie=st.one_of(st.none(), latin1_header),
    with_session=st.booleans(),
)
async def test_page_forms_answer_html_whatever_the_body(
    fuzz_gateway: Any,
    aiohttp_client: Any,
    path: str,
    request: tuple[bytes, str],
    cookie: str | None,
    with_session: bool,
) -> None:
    client = await aiohttp_client(fuzz_gateway)
    if with_session:  # a real session cookie, so the forms get past the session check to their fields
        ids = await _client_ids(client)
        await client.get(
            f"/authorize?response_type=code&client_id={ids[-1]}&redirect_uri={REDIRECTS[1]}"
            f"&code_challenge={s256(VERIFIER)}&code_challenge_method=S256",
            allow_redirects=False,
        )
    body, content_type = request
    headers = {"Content-Type": content_type} if content_type else {}
    if cookie is not None:
        headers["Cookie"] = cookie
    reply = await answer(await client.post(path, data=body, headers=headers, allow_redirects=False))
    assert_page(reply, f"POST {path} {body[:200]!r}")
    if 300 <= reply.status < 400:
        location = reply.headers["Location"]
        assert urlsplit(location).scheme in ("http", "https"), location


@given(provider=text, query=st.dictionaries(st.sampled_from(["code", "state", "error", "iss"]), text, max_size=4))
async def test_provider_callback_answers_html_for_any_query(
    fuzz_gateway: Any, aiohttp_client: Any, provider: str, query: dict[str, str]
) -> None:
    client = await aiohttp_client(fuzz_gateway)
    reply = await answer(
        await client.get(
            f"/login/{quote(provider, safe='', errors='surrogatepass') or 'x'}/callback",
            params=query,
            allow_redirects=False,
        )
    )
    if reply.status == 404 and reply.content_type == "application/json":
        return  # a provider name aiohttp's router cannot match (a slash in it): its JSON 404
    assert_page(reply, f"GET /login/{provider!r}/callback {query!r}")
