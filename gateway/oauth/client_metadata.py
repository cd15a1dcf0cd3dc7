"""Client metadata from a client (RFC 7591 §2): one strict JSON reader and one set of bounds, shared by Dynamic
Client Registration bodies and Client ID Metadata Documents, so both refuse the same inputs.

Everything here is linear in the input and bounded: a client cannot make the gateway store, log or loop over
more than these limits allow (issue 10, finding 1).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from gateway.oauth.display_text import hidden_character
from gateway.oauth.errors import InvalidClientMetadataError, InvalidRedirectUriError
from gateway.oauth.redirects import MAX_REDIRECT_URI_LENGTH, redirect_uri_problem

MAX_REDIRECT_URIS = 10  # Cursor registers 3, VS Code 4; RFC 7591 sets no limit, so we pick one
MAX_MEMBERS = 32  # top-level members, unknown ones included (RFC 7591 §2: ignored, but still read)
MAX_ARRAY_ITEMS = 10  # grant_types, response_types
MAX_NAME_LENGTH = 200  # client_name, software_id, software_version, application_type, grant types …
MAX_SCOPE_LENGTH = 1000
MAX_URI_LENGTH = MAX_REDIRECT_URI_LENGTH  # client_uri, logo_uri
# members shown to people, or that a page may show one day (RFC 7591 §2; "client_name#ja" variants too, §2.2)
DISPLAYED_MEMBERS = frozenset({"client_name", "client_uri", "logo_uri", "policy_uri", "tos_uri"})
STRING_LIMITS = {
    "client_name": MAX_NAME_LENGTH,
    "client_uri": MAX_URI_LENGTH,
    "logo_uri": MAX_URI_LENGTH,
    "policy_uri": MAX_URI_LENGTH,
    "tos_uri": MAX_URI_LENGTH,
    "scope": MAX_SCOPE_LENGTH,
    "software_id": MAX_NAME_LENGTH,
    "software_version": MAX_NAME_LENGTH,
    "application_type": MAX_NAME_LENGTH,
    "token_endpoint_auth_method": MAX_NAME_LENGTH,
}


def parse_metadata_json(body: bytes) -> dict[str, Any]:
    """The JSON object in `body`, read strictly: UTF-8 only (RFC 8259 §8.1), no duplicate member names (parsers
    disagree on which one wins), every string valid Unicode (a lone surrogate such as "\\ud800" is accepted by
    json.loads and fails later, when the record is encoded), at most MAX_MEMBERS members, and no control, bidi or
    invisible character in what is shown to people (DISPLAYED_MEMBERS; `gateway.oauth.display_text`).

    Raises:
        InvalidClientMetadataError: with a reason fit for the client.
    """
    try:
        text = body.decode("utf-8")
        document = json.loads(text, object_pairs_hook=_unique_members)
    except UnicodeDecodeError:
        raise InvalidClientMetadataError("the body must be UTF-8 encoded JSON") from None
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; so is a duplicate member
        raise InvalidClientMetadataError("the body must be a JSON object") from None
    if not isinstance(document, dict):
        raise InvalidClientMetadataError("the body must be a JSON object")
    if len(document) > MAX_MEMBERS:
        raise InvalidClientMetadataError(f"at most {MAX_MEMBERS} metadata members are accepted")
    if not _valid_unicode(document):
        raise InvalidClientMetadataError("a string in the body is not valid Unicode (lone surrogate escape)")
    for name, value in document.items():
        if (
            name.split("#", 1)[0] in DISPLAYED_MEMBERS
            and isinstance(value, str)
            and (hidden := hidden_character(value))
        ):
            raise InvalidClientMetadataError(f"{name} contains a control, bidi or invisible character ({hidden})")
    return document


def parse_redirect_uris(value: Any, *, private_use_schemes: Collection[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(kept, dropped): the acceptable URIs once each in request order, and the rest. Linear time.

    Raises:
        InvalidClientMetadataError: not an array of strings.
        InvalidRedirectUriError: empty, more than MAX_REDIRECT_URIS, one longer than MAX_REDIRECT_URI_LENGTH, or
            nothing acceptable (RFC 7591 §3.2.2).
    """
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise InvalidClientMetadataError("redirect_uris must be an array of strings")
    if not value:
        raise InvalidRedirectUriError("at least one redirect URI is required")
    if len(value) > MAX_REDIRECT_URIS:
        raise InvalidRedirectUriError(f"at most {MAX_REDIRECT_URIS} redirect URIs may be registered")
    if any(len(u) > MAX_REDIRECT_URI_LENGTH for u in value):  # a bound, refused whole (not a URI to drop)
        raise InvalidRedirectUriError(f"a redirect URI has at most {MAX_REDIRECT_URI_LENGTH} characters")
    problems = {u: redirect_uri_problem(u, private_use_schemes=private_use_schemes) for u in value}
    kept = tuple(u for u, problem in problems.items() if problem is None)  # dict: once each, in order
    dropped = tuple(u for u, problem in problems.items() if problem is not None)
    if not kept:
        reasons = "; ".join(f"{u[:100]}: {problems[u]}" for u in dropped[:3])
        raise InvalidRedirectUriError(f"no acceptable redirect URI ({reasons})")
    return kept, dropped


def optional_string(document: dict[str, Any], name: str) -> str | None:
    """`document[name]`: absent/null -> None; else a string no longer than its limit.

    Raises:
        InvalidClientMetadataError: not a string, or too long (refused, never silently cut).
    """
    value = document.get(name)
    if value is None:
        return None
    limit = STRING_LIMITS.get(name, MAX_NAME_LENGTH)
    if not isinstance(value, str):
        raise InvalidClientMetadataError(f"{name} must be a string")
    if len(value) > limit:
        raise InvalidClientMetadataError(f"{name} is longer than {limit} characters")
    return value


def string_array(document: dict[str, Any], name: str, default: list[str]) -> list[str]:
    """`document[name]`, an array of at most MAX_ARRAY_ITEMS short strings (`default` when absent).

    Raises:
        InvalidClientMetadataError: wrong type or too many or too long items.
    """
    value = document.get(name, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadataError(f"{name} must be an array of strings")
    if len(value) > MAX_ARRAY_ITEMS or any(len(v) > MAX_NAME_LENGTH for v in value):
        raise InvalidClientMetadataError(f"{name}: at most {MAX_ARRAY_ITEMS} values of {MAX_NAME_LENGTH} characters")
    return value


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate member name")
    return document


def _valid_unicode(document: Any) -> bool:
    """Every string (member names included) encodes as UTF-8; iterative, so no depth can overflow the stack."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True
