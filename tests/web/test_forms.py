"""Form bodies at /token, /revoke, /introspect and the sign-in pages: application/x-www-form-urlencoded only
(RFC 6749 §3.2), bounded (issue 10, finding 1: every client-controlled collection), never a 500 (fuzzing found a
malformed multipart body at /token answered with 500)."""

from __future__ import annotations

import pytest

from tests.conftest import route
from tests.support.oauth_client import register
from tests.support.token_flow import basic, read

INTROSPECTION = {"introspection": [{"name": "upstream", "secret": "s3cret-introspect"}]}
ENDPOINTS = ["/token", "/revoke", "/introspect"]
BAD_PART_HEADER = b"--xyz\r\nBad header\r\n\r\nb\r\n--xyz--\r\n"  # the fuzzer's body: InvalidHeader inside a part


@pytest.fixture
async def server(start_gateway, upstream):
    return await start_gateway([route("alpha", upstream.url)], oauth=INTROSPECTION)


def caller(path: str) -> dict[str, str]:
    """Credentials that get past /introspect's caller check, so the form itself is what is judged."""
    return basic("upstream", "s3cret-introspect") if path == "/introspect" else {}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        pytest.param(BAD_PART_HEADER, "multipart/form-data; boundary=xyz", id="malformed-part-header"),
        pytest.param(
            b'--xyz\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nrefresh_token\r\n--xyz--\r\n',
            "multipart/form-data; boundary=xyz",
            id="well-formed-multipart",
        ),
        pytest.param(b"garbage", "multipart/form-data", id="multipart-without-boundary"),
        pytest.param(b"token=x", "text/plain", id="text-plain"),
        pytest.param(b"token=x", "application/x-www-form-urlencoded; charset=latin-1", id="latin-1"),
        pytest.param(b"token=%ff", "application/x-www-form-urlencoded", id="percent-encoded-invalid-utf8"),
        pytest.param(
            b"&".join(b"f%d=v" % i for i in range(33)), "application/x-www-form-urlencoded", id="thirty-three-fields"
        ),
        pytest.param(b"token=" + b"x" * 4097, "application/x-www-form-urlencoded", id="value-over-4096"),
        pytest.param(
            b"&".join([b"token=x", *(b"resource=https://r.example/%d" % i for i in range(11))]),
            "application/x-www-form-urlencoded",
            id="eleven-resources",
        ),
    ],
)
async def test_forms_that_are_not_small_urlencoded_forms_are_invalid_request(
    server, aiohttp_client, path, data, content_type
):
    """RFC 6749 §3.2 (urlencoded; multipart refused as a class, whatever its shape), at most 32 fields of at most
    4096 characters, at most 10 `resource` values: 400 invalid_request JSON, never cached, never a 500."""
    client = await aiohttp_client(server)
    reply = await read(await client.post(path, data=data, headers={"Content-Type": content_type, **caller(path)}))
    assert reply.status == 400, reply.body
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.body["error"] == "invalid_request"


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_form_over_16_kib_is_413(server, aiohttp_client, path, chunked):
    """The form cap (16 KiB; token forms are < 1 KiB) is the gateway's own, not proxy.max_body_bytes (4 MiB): 413
    with an OAuth JSON error, whether the length is declared or the body is chunked."""
    client = await aiohttp_client(server)
    body = b"token=" + b"x" * (64 * 1024)

    async def chunks():
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = await client.post(
        path,
        data=chunks() if chunked else body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **caller(path)},
    )
    reply = await read(response)
    assert reply.status == 413, reply.body
    assert reply.body["error"] == "invalid_request"
    assert reply.headers["Cache-Control"] == "no-store"


async def test_the_largest_accepted_token_form_still_works(server, aiohttp_client):
    """The bounds are inclusive: 10 resources and 4096-character values are a normal (if unusual) request, judged
    on its merits (here: an unknown client)."""
    client = await aiohttp_client(server)
    fields = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "x" * 4096),
        ("client_id", "mcpgw_c_nobody"),
        *(("resource", f"https://r.example/{i}") for i in range(10)),
    ]
    reply = await read(await client.post("/token", data=fields))
    assert reply.status == 401
    assert reply.body["error"] == "invalid_client"


async def test_a_multipart_sign_in_form_gets_an_error_page_not_a_500(server, aiohttp_client):
    """The pages read forms the same way: a multipart (or malformed multipart) login is an HTML error page."""
    client = await aiohttp_client(server)
    await register(client)
    for data in (BAD_PART_HEADER, b'--xyz\r\nContent-Disposition: form-data; name="username"\r\n\r\na\r\n--xyz--\r\n'):
        response = await client.post(
            "/authorize/login", data=data, headers={"Content-Type": "multipart/form-data; boundary=xyz"}
        )
        assert response.status == 400
        assert response.content_type == "text/html"
