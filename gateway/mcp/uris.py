"""Resource URIs as policy reads them: RFC 3986 §6.2 normalization (§6.2.2 case, percent-encoding and dot
segments; §6.2.3 scheme-based), RFC 3987 §3.1 (IRI characters as UTF-8 octets) and RFC 8089 §2 (`file:`).

Servers read a URI in different ways: the MCP Python SDK percent-decodes template variables (`%2F` becomes `/`),
a file server resolves `..`, may ignore case (macOS, Windows) or trailing dots and spaces (Windows), and reads
only where the resource is (`server_view`: no query, fragment, `;` parameters or `file:` host), and some decode
twice (a third decoding is refused) or apply NFKC (fullwidth `．．` is a dot segment). A rule decides on every
such *reading* of a URI (`readings`), and a URI whose readings are not all decided alike is refused
(policy.decide). Constructs no honest client needs and readers disagree on are
refused outright (`refusal`): control and invisible characters, malformed percent-encoding, backslashes, dot
segments (encoded or not), surrounding white space and relative references. Rule patterns are put in the same
forms (`pattern_forms`), so a glob written as a plain URI matches every spelling of it."""

from __future__ import annotations

import re
import string
import unicodedata
from functools import lru_cache
from urllib.parse import quote

MAX_URI_LENGTH = 8192  # RFC 9110 §4.1: at least 8000 octets
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_URI_SAFE = ":/?#[]@!$&'()*+,;=%"  # RFC 3986 §2: reserved, and `%` (escapes are kept as they are)
_PARTS = re.compile(r"(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?", re.DOTALL)  # Appendix B
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# an escape RFC 3986 §6.2.2 normalization changes: lowercase hex, or an unreserved character's (- . 0-9 A-Z _ a-z ~)
_CHANGED_ESCAPE = re.compile(r"%(?:[0-9A-Fa-f][a-f]|[a-f][0-9A-F]|2[DE]|3[0-9]|[46][1-9A-F]|[57][0-9A]|5F|7E)")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_VALID_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_ESCAPE_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_HOST_PORT = re.compile(r"(\[[^\]]*\]|[^:]*)(?::(.*))?", re.DOTALL)
_ESCAPE_OR_TEXT = re.compile(r"%[0-9A-F]{2}|[^%]+")
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})  # control, format, surrogate, private, unassigned

# The forms a URI is compared in: as a URI ("encoded": RFC 3986 equivalence) or as the text a decoding server
# sees ("decoded"), each also leniently (case, Unicode compatibility, trailing dots and spaces ignored).
Form = tuple[str, bool]  # ("encoded" | "decoded", lenient)


def unquote(text: str, errors: str = "replace") -> str:
    """urllib.parse.unquote (each run of escapes decoded as UTF-8), one C-level decode per run instead of a
    Python step per escape (what policy costs grows with what it reads)."""
    if "%" not in text:
        return text
    return _ESCAPE_RUN.sub(lambda m: bytes.fromhex(m.group().replace("%", "")).decode("utf-8", errors), text)


def refusal(uri: str) -> str | None:
    """Why `uri` is refused whatever the rules say, or None."""
    if len(uri) > MAX_URI_LENGTH:
        return f"longer than {MAX_URI_LENGTH} characters"
    if _BAD_ESCAPE.search(uri):
        return "malformed percent-encoding"
    match = _PARTS.fullmatch(uri)
    if match is None or match.group(1) is None or not _SCHEME.fullmatch(match.group(1)):
        return "not an absolute URI"
    try:
        once = unquote(uri, errors="strict")
    except UnicodeDecodeError:
        return "percent-encoded octets that are not UTF-8"
    twice = unquote(once, errors="replace")
    for text in (uri, once, twice):  # as sent, decoded, decoded twice; each also as NFKC reads it (`．．`, `＼`)
        if problem := _text_problem(text) or _text_problem(unicodedata.normalize("NFKC", text)):
            return problem
    if _VALID_ESCAPE.search(twice):
        return "percent-encoding nested more than twice"  # (no reading covers a third decoding)
    return None


def _text_problem(text: str) -> str | None:
    if any(unicodedata.category(c) in _INVISIBLE for c in set(text)):  # (each distinct character once)
        return "control or invisible characters"
    if text != text.strip():
        return "leading or trailing white space"
    if "\\" in text:
        return "a backslash (a path separator to some readers)"
    for segment in text.split("/"):
        head = segment.split(";", 1)[0].strip()  # `..;x` is `..` to servlet containers
        if head and not head.strip("."):
            return "a dot segment (. or ..)"
    return None


def canonical(uri: str) -> str:
    """The RFC 3986 §6.2.2/§6.2.3 normal form: lowercase scheme and host, uppercase percent-encoding, unreserved
    characters decoded, dot segments removed, default port and `file://localhost` dropped; other characters
    outside RFC 3986 (IRI text, `{`, `}`, space) percent-encoded as UTF-8 (RFC 3987 §3.1)."""
    mapped = _CHANGED_ESCAPE.sub(_normalize_escape, _map_iri(uri))
    match = _PARTS.fullmatch(mapped)
    assert match is not None  # (every string matches Appendix B's expression)
    scheme, authority, path, query, fragment = match.groups()
    if scheme is not None:
        scheme = scheme.lower()
    if authority is not None:
        authority = _authority(scheme, authority)
    if scheme == "file" and authority is None and path.startswith("/"):
        authority = ""  # RFC 8089 §2: file:/p is file:///p
    if authority is not None or path.startswith("/"):
        path = remove_dot_segments(path)
    if scheme in ("http", "https") and authority and not path:
        path = "/"
    out = f"{scheme}:" if scheme is not None else ""
    out += f"//{authority}" if authority is not None else ""
    out += path
    out += f"?{query}" if query is not None else ""
    return out + (f"#{fragment}" if fragment is not None else "")


def _map_iri(text: str) -> str:
    return quote(text.encode("utf-8", errors="surrogatepass"), safe=_URI_SAFE)  # (uppercase hex, RFC 3986 §2.1)


def _normalize_escape(match: re.Match[str]) -> str:
    character = chr(int(match.group()[1:], 16))
    return character if character in _UNRESERVED else match.group().upper()


def _authority(scheme: str | None, authority: str) -> str:
    userinfo, at, host_port = authority.rpartition("@")
    parts = _HOST_PORT.fullmatch(host_port)
    assert parts is not None
    host, port = parts.group(1), parts.group(2)
    host = _ESCAPE_OR_TEXT.sub(lambda m: m.group() if m.group().startswith("%") else m.group().lower(), host)
    if port is not None and port.isdigit():
        port = str(int(port))
    if port == "" or (port is not None and port == _DEFAULT_PORTS.get(scheme or "")):
        port = None
    if scheme == "file" and host == "localhost" and not at:
        host = ""  # RFC 8089 §2: "localhost" and the empty host are the same machine
    return f"{userinfo}{at}{host}" + (f":{port}" if port is not None else "")


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4."""
    output: list[str] = []
    while path:
        if path.startswith("../"):
            path = path[3:]
        elif path.startswith("./"):
            path = path[2:]
        elif path.startswith("/./") or path == "/.":
            path = "/" + path[3:]
        elif path.startswith("/../") or path == "/..":
            path = "/" + path[4:]
            if output:
                output.pop()
        elif path in (".", ".."):
            path = ""
        else:
            end = path.find("/", 1)
            end = len(path) if end == -1 else end
            output.append(path[:end])
            path = path[end:]
    return "".join(output)


def lenient(text: str) -> str:
    """How a forgiving reader sees it: case and Unicode compatibility forms ignored (NFKC, case folding), and
    trailing dots and spaces of each path segment dropped (as Windows does)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return "/".join(s.removesuffix("::$data").rstrip(". ") or s for s in folded.split("/"))  # (NTFS streams too)


def server_view(normal: str) -> str:
    """What a server that looks only at where the resource is may read (RFC 3986 §3): no userinfo, query, fragment
    or `;` parameters, empty path segments collapsed (POSIX paths), a host's trailing dot and punycode (RFC 3492)
    undone, and for `file:` no host at all (many file servers read only the path). In canonical form."""
    match = _PARTS.fullmatch(normal)
    assert match is not None
    scheme, authority, path = match.group(1), match.group(2), match.group(3)
    segments = [segment.split(";", 1)[0] for segment in path.split("/")]
    path = "/".join(s for i, s in enumerate(segments) if s or i in (0, len(segments) - 1))
    if authority is not None:
        parts = _HOST_PORT.fullmatch(authority.rpartition("@")[2])
        assert parts is not None
        host = ".".join(_unpunycode(label) for label in parts.group(1).rstrip(".").split("."))
        authority = "" if scheme == "file" else host + (f":{parts.group(2)}" if parts.group(2) is not None else "")
    return canonical(f"{scheme}:" + (f"//{authority}" if authority is not None else "") + path)


def _unpunycode(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        return label[4:].encode("ascii").decode("punycode")
    except UnicodeError:
        return label


def readings(uri: str) -> list[tuple[Form, str]]:
    """Every plausible reading of an accepted URI (see `refusal`), each with the form it is compared in."""
    normal = canonical(uri)
    spellings = [("encoded", _map_iri(uri))]  # as sent (the exact string a server may look up)
    for text in dict.fromkeys((normal, server_view(normal))):  # normalized; where it is (`server_view`)
        once = unquote(text, errors="replace")  # decoded once (the SDK's templates), twice
        spellings += [("encoded", text), ("decoded", once), ("decoded", unquote(once, errors="replace"))]
    found: dict[tuple[Form, str], None] = {}
    for form, text in spellings:
        found[((form, False), text)] = None
        found[((form, True), lenient(text))] = None
    return list(found)


@lru_cache(maxsize=4096)
def pattern_forms(pattern: str) -> dict[Form, str]:
    """A rule's `match` in each form (glob characters survive: `*`, `?`, `[`, `]` are all URI characters)."""
    normal = canonical(pattern)
    decoded = unquote(normal, errors="replace")
    return {
        ("encoded", False): normal,
        ("decoded", False): decoded,
        ("encoded", True): lenient(normal),
        ("decoded", True): lenient(decoded),
    }


def pattern_problem(pattern: str) -> str | None:
    """Why a rule pattern could never be matched reliably (checked at configuration load), or None."""
    if _BAD_ESCAPE.search(pattern):
        return "malformed percent-encoding"
    try:
        once = unquote(pattern, errors="strict")
    except UnicodeDecodeError:
        return "percent-encoded octets that are not UTF-8"
    for text in (pattern, once):
        if problem := _text_problem(text):
            return problem
    return None
