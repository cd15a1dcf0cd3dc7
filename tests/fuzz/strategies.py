"""Input generators for the fuzz suite: the values attackers and broken clients actually send."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

# Values that broke parsers before, or that sit on a boundary of one: encodings, separators, sizes, Unicode.
NASTY = [
    "",
    " ",
    "\x00",
    "\t",
    "null",
    "0",
    "-1",
    "1e309",
    "true",
    "[]",
    "{}",
    "%",
    "%zz",
    "%00",
    "%ff",
    "%2F",
    "%2e%2e",
    "../",
    "..\\",
    "/..;/",
    "a" * 5000,
    "\u202e",
    "\ufeff",
    "ǅ",
    "ﬀ",
    "İ",
    "\U0001f600",
    "\\ud800",
    "<script>",
    "' OR 1=1 --",
    "${jndi:ldap://x}",
    "http://127.0.0.1:1/cb",
    "https://evil.example/cb",
    "javascript:alert(1)",
    "http://evil.example\\@127.0.0.1/cb",
    "file:///etc/passwd",
    "mcpgw_at_" + "A" * 43,
    "Bearer x",
    "S256",
    "plain",
    "code",
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "openid offline_access",
]
text = st.one_of(st.text(max_size=40), st.sampled_from(NASTY))
latin1_header = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80
)

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(text, inner, max_size=6)),
    max_leaves=25,
)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


# JSON text that json.dumps never produces: lone surrogates, deep nesting, duplicate keys, huge numbers, BOMs
raw_json = st.sampled_from(
    [
        b'{"redirect_uris":["\\ud800"]}',
        b'{"client_name":"\\udfff","redirect_uris":["https://a.example/cb"]}',
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        b'{"redirect_uris":1,"redirect_uris":["https://a.example/cb"]}',
        b"\xef\xbb\xbf{}",
        b'{"x":1e999999}',
        b'{"x":-}',
        b"[" * 100000,
        b"\xff\xfe{\x00}\x00",
        b'"\\u0000"',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\\ud800"}}',
        b"{}" * 1000,
        b"",
        b"   ",
    ]
)

FORM_FIELDS = [
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "client_id",
    "client_secret",
    "refresh_token",
    "scope",
    "resource",
    "token",
    "token_type_hint",
    "username",
    "password",
    "csrf_token",
    "request_id",
    "decision",
    "provider",
    "email",
    "state",
]
form_pairs = st.lists(st.tuples(st.one_of(st.sampled_from(FORM_FIELDS), text), text), max_size=12)

FORM_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/x-www-form-urlencoded; charset=nope",
    "multipart/form-data; boundary=fuzz",
    "multipart/form-data",
    "application/json",
    "text/plain",
    "",
]


def urlencode_pairs(pairs: list[tuple[str, str]]) -> bytes:
    """Form-encode without normalizing: surrogates and odd bytes go out as their (lenient) UTF-8."""
    return "&".join(
        f"{quote(k, safe='', errors='surrogatepass')}={quote(v, safe='', errors='surrogatepass')}" for k, v in pairs
    ).encode("ascii")


@st.composite
def multipart_body(draw: st.DrawFn) -> bytes:
    """A multipart/form-data body with boundary `fuzz`, sometimes well-formed, sometimes cut or garbled."""
    parts = []
    for name, value in draw(form_pairs):
        disposition = draw(
            st.sampled_from(
                ['form-data; name="{}"', 'form-data; name="{}"; filename="x"', "form-data; name={}", "attachment", ""]
            )
        ).format(name)
        parts.append(f"--fuzz\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n".encode("utf-8", "replace"))
    body = b"".join(parts) + draw(st.sampled_from([b"--fuzz--\r\n", b"--fuzz", b"", b"--other--\r\n"]))
    cut = draw(st.integers(min_value=0, max_value=len(body)))
    return draw(st.sampled_from([body, body[:cut], body.replace(b"\r\n", b"\n")]))


@st.composite
def form_request(draw: st.DrawFn) -> tuple[bytes, str]:
    """(body, content type) for a form endpoint: well-formed forms mostly, anything else sometimes."""
    content_type = draw(st.sampled_from(FORM_TYPES))
    if content_type.startswith("multipart"):
        return draw(multipart_body()), content_type
    kind = draw(st.sampled_from(["form", "form", "form", "binary", "json"]))
    if kind == "form":
        return urlencode_pairs(draw(form_pairs)), content_type
    if kind == "json":
        return json_bytes(draw(json_value)), content_type
    return draw(st.binary(max_size=300)), content_type


@st.composite
def authorization_header(draw: st.DrawFn, client_ids: list[str]) -> str | None:
    kind = draw(st.sampled_from(["none", "basic", "basic-raw", "bearer", "junk"]))
    if kind == "none":
        return None
    if kind == "basic":
        user = draw(st.one_of(st.sampled_from(client_ids), text))
        secret = draw(text)
        raw = f"{quote(user, errors='surrogatepass')}:{quote(secret, errors='surrogatepass')}"
        return "Basic " + base64.b64encode(raw.encode("ascii")).decode()
    if kind == "basic-raw":
        return "Basic " + draw(latin1_header)
    if kind == "bearer":
        return "Bearer " + draw(latin1_header)
    return draw(latin1_header)


# Header bytes aiohttp's client will not send: not UTF-8 (lone continuation bytes, overlongs, cut sequences)
RAW_HEADER_BYTES = [
    b"\xff",
    b"\xfe\xff",
    b"\xc3",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xe9t\xe9",
    b"\x80abc",
    b"\xf4\x90\x80\x80",
]
raw_header_value = st.builds(
    lambda prefix, junk, suffix: prefix.encode("latin-1") + junk + suffix.encode("latin-1"),
    st.sampled_from(["", "mcpgw_session=", "Bearer ", "Basic ", "a=1; mcpgw_session=", "__Host-mcpgw_session="]),
    st.sampled_from(RAW_HEADER_BYTES),
    st.sampled_from(["", "x", "; b=2"]),
)
