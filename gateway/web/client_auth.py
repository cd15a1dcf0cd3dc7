"""Client authentication at /token and /revoke (RFC 6749 §2.3.1: Basic or form; public clients send only id)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from urllib.parse import unquote

from aiohttp import web

from gateway.app_state import ASSERTIONS_KEY, CLIENTS_KEY, CLOCK_KEY
from gateway.clients.cimd import CimdBusyError, CimdError
from gateway.oauth.errors import InvalidClientError, InvalidRequestError, TemporarilyUnavailableError
from gateway.oauth.grant_types import CLIENT_ASSERTION_JWT
from gateway.oauth.jwt_assertions import AssertionRejectedError, unverified_parts
from gateway.oauth.token_values import hash_token
from gateway.store.records import ClientRecord


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """(id, secret) from `Authorization: Basic`, form-urldecoded as RFC 6749 §2.3.1 requires.

    Raises:
        InvalidClientError: a Basic header that does not decode.
    """
    header = request.headers.get("Authorization", "")
    if not header[:6].lower() == "basic ":
        return None
    try:  # (ValueError: b64decode refuses non-ASCII text; binascii.Error and UnicodeDecodeError are ValueErrors)
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except ValueError:
        raise InvalidClientError("malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClientError("malformed Basic credentials")
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


async def authenticate_client(request: web.Request, form: Mapping[str, str]) -> ClientRecord:
    """The calling client, authenticated by the method it registered (RFC 7591 §2 `token_endpoint_auth_method`):
    `client_secret_basic` with HTTP Basic only, `client_secret_post` with the form's secret only, `private_key_jwt`
    with a signed assertion only (RFC 7523 §2.2; its `sub` names the client when the form does not), `none`
    (public: PKCE protects) with its client_id and no secret. Public clients may also send Basic with an empty secret.

    Raises:
        InvalidClientError: unknown client, missing or wrong secret, or another method than registered (one answer
            for all, 401).
        InvalidRequestError: no client identification at all, or two conflicting ones.
        TemporarilyUnavailableError: a CIMD client whose document cannot be fetched now (every fetch slot taken).
    """
    basic = basic_credentials(request)
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    assertion = _client_assertion(form)
    if sum(x is not None for x in (basic, form_secret, assertion)) > 1:
        raise InvalidRequestError("use one client authentication method")  # RFC 6749 §2.3
    if basic is not None and form_id is not None and form_id != basic[0]:
        raise InvalidRequestError("client_id differs from the authenticated client")
    client_id = basic[0] if basic is not None else form_id or (_assertion_subject(assertion) if assertion else None)
    if not client_id:
        raise InvalidRequestError("client_id is required")
    now = request.app[CLOCK_KEY]()
    client = await _resolve(request, client_id, now)
    if assertion is not None or client.token_endpoint_auth_method == "private_key_jwt":
        if assertion is None or client.token_endpoint_auth_method != "private_key_jwt":
            raise InvalidClientError("client authentication failed")
        await request.app[ASSERTIONS_KEY].authenticate(assertion, client, now=now)
        return client
    secret = basic[1] if basic is not None else form_secret
    presented = presented_method(basic_header=basic is not None, secret=secret)
    if presented != client.token_endpoint_auth_method:  # the same answer as a wrong secret: no hint about the client
        raise InvalidClientError("client authentication failed")
    if presented == "none":
        if client.client_secret_hash is not None:  # a record that says public but holds a secret: fail closed
            raise InvalidClientError("client authentication failed")
        return client
    if (
        client.client_secret_hash is None
        or secret is None
        or not secrets.compare_digest(hash_token(secret), client.client_secret_hash)
    ):
        raise InvalidClientError("client authentication failed")
    return client


async def _resolve(request: web.Request, client_id: str, now: float) -> ClientRecord:
    try:
        client = await request.app[CLIENTS_KEY].resolve(client_id, now=now)
    except CimdBusyError:
        raise TemporarilyUnavailableError("client metadata cannot be fetched right now; try again shortly") from None
    except CimdError:
        client = None
    if client is None:
        raise InvalidClientError("client authentication failed")
    return client


def presented_method(*, basic_header: bool, secret: str | None) -> str:
    """The RFC 7591 method a request used: a secret in Basic or in the form, or none (no or an empty secret)."""
    if not secret:
        return "none"
    return "client_secret_basic" if basic_header else "client_secret_post"


def _client_assertion(form: Mapping[str, str]) -> str | None:
    """The RFC 7523 §2.2 client assertion, when the form carries one (its type must be the JWT one).

    Raises:
        InvalidRequestError: one of the pair without the other, or another assertion type.
    """
    kind, assertion = form.get("client_assertion_type"), form.get("client_assertion")
    if kind is None and assertion is None:
        return None
    if kind != CLIENT_ASSERTION_JWT or not assertion:
        raise InvalidRequestError(f"client_assertion needs client_assertion_type {CLIENT_ASSERTION_JWT}")
    return assertion


def _assertion_subject(assertion: str) -> str | None:
    """The client the assertion says it is (RFC 7523 §3: `sub`), to find its keys; verified afterwards."""
    try:
        sub = unverified_parts(assertion)[1].get("sub")
    except AssertionRejectedError:
        raise InvalidClientError("client authentication failed") from None
    return sub if isinstance(sub, str) and len(sub) <= 2048 else None
