"""Local accounts and service tokens: what `users …` and `tokens …` do, independent of the CLI."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass

from gateway.config.clients import machine_client_problems
from gateway.oauth.client_metadata import MAX_NAME_LENGTH, MAX_REDIRECT_URIS
from gateway.oauth.grant_types import AUTHORIZATION_CODE, REFRESH_TOKEN
from gateway.oauth.redirects import DEFAULT_PRIVATE_USE_SCHEMES, redirect_uri_problem
from gateway.oauth.token_values import hash_token, new_access_token, token_id
from gateway.passwords import MIN_PASSWORD_LENGTH, hash_in_pool, hash_password, verify_in_pool
from gateway.routing import RouteInfo
from gateway.store.base import Store
from gateway.store.records import AccessTokenRecord, ClientRecord, Principal, UserRecord

USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9._~@-]{1,200}$")
SERVICE_CLIENT_ID = "mcp-auth-gateway-cli"  # client_id recorded on tokens issued by `tokens issue`
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class AccountError(Exception):
    """A one-line reason for the CLI (unknown user, weak password, bad duration…)."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    record: AccessTokenRecord


def parse_duration(value: str) -> int:
    """`90s`, `15m`, `1h`, `30d` -> seconds."""
    match = _DURATION.match(value.strip())
    if match is None or int(match.group(1)) == 0:
        raise AccountError(f"bad duration {value!r}: use a positive number with s, m, h or d (e.g. 1h)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def check_password(password: str) -> None:
    if not password.isascii():
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:  # bytes that were not UTF-8 (a terminal or pipe in another encoding)
            raise AccountError("the password is not valid UTF-8 text") from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")


async def add_user(
    store: Store,
    name: str,
    password: str,
    *,
    email: str | None = None,
    groups: tuple[str, ...] = (),
    now: float,
    email_verified: bool = True,
) -> UserRecord:
    if not USER_NAME.match(name):
        raise AccountError(f"bad user name {name!r}: letters, digits and _ . @ - only")
    if await store.load_user(name) is not None:
        raise AccountError(f"user {name!r} already exists (use `users passwd` to change the password)")
    check_password(password)
    record = UserRecord(
        name=name,
        email=email,
        groups=groups,
        password_hash=await hash_in_pool(password),
        created_at=now,
        email_verified=email_verified,
    )
    await store.save_user(record)
    return record


def signup_problem(email: str, allowed_domains: list[str]) -> str | None:
    """Why this address may not sign up, or None (self sign-up is limited to configured domains)."""
    if email.count("@") != 1 or not email.split("@")[0] or "." not in email.split("@")[1]:
        return "Enter a valid email address."
    if email.split("@")[1].lower() not in {d.lower().lstrip("@") for d in allowed_domains}:
        return "Sign-up is not open for this email domain."
    return None


@dataclass(frozen=True)
class Removal:
    sessions: int  # login sessions ended
    tokens: int  # access tokens revoked (with the refresh tokens of their grants)


async def remove_user(store: Store, name: str, *, now: float) -> Removal:
    """Delete a local account and end its access at once: its login sessions (no new codes), its access tokens
    and their grants (no refresh); codes already issued are refused at redemption (the account is re-read)."""
    user = await store.load_user(name)
    if user is None:
        raise AccountError(f"no user named {name!r}")
    sessions = await store.end_user_sessions(user.user_id)
    await store.delete_user(name)  # (ends any session started meanwhile)
    tokens = 0
    for token_hash, record in await store.list_access_tokens(user.user_id):
        if not record.usable(now):
            continue
        if record.grant_id is not None:
            await store.revoke_grant(record.grant_id)
        else:
            await store.revoke_access_token(token_hash)
        tokens += 1
    return Removal(sessions=sessions, tokens=tokens)


async def set_password(store: Store, name: str, password: str) -> None:
    """A new password; the user's login sessions end (the store does it for every change of the account)."""
    user = await store.load_user(name)
    if user is None:
        raise AccountError(f"no user named {name!r}")
    check_password(password)
    await store.save_user(user.model_copy(update={"password_hash": await hash_in_pool(password)}))


_DUMMY_HASH = hash_password("timing-equaliser-not-a-password")


async def verify_login(store: Store, name: str, password: str) -> UserRecord | None:
    """The user when `password` is theirs; an unknown name costs the same argon2 work (no user enumeration)."""
    user = await store.load_user(name) if USER_NAME.match(name) else None
    ok = await verify_in_pool(user.password_hash if user else _DUMMY_HASH, password)
    return user if ok and user is not None else None


def principal_of(user: UserRecord, *, now: float | None = None) -> Principal:
    """Only a verified email reaches tokens, headers and email rules."""
    return Principal(
        user_id=user.user_id,
        email=user.email if user.email_verified else None,
        preferred_username=user.name,
        name=user.name,
        groups=user.groups,
        authenticated_at=now,
        account_created_at=user.created_at,
    )


async def issue_service_token(
    store: Store, user_name: str, info: RouteInfo, scopes: tuple[str, ...], ttl: int, *, now: float
) -> IssuedToken:
    """An access token for a local user, bound to one route's resource (its audience)."""
    user = await store.load_user(user_name)
    if user is None:
        raise AccountError(f"no user named {user_name!r} (create it with `users add {user_name}`)")
    unknown = [s for s in scopes if info.route.scopes and s not in info.route.scopes]
    if unknown:
        raise AccountError(
            f"route {info.route.name!r} has no scope {' '.join(unknown)} (known: {' '.join(info.route.scopes)})"
        )
    token = new_access_token()
    principal = principal_of(user)  # only a verified email reaches the token
    record = AccessTokenRecord(
        user_id=principal.user_id,
        email=principal.email,
        preferred_username=user.name,
        groups=user.groups,
        client_id=SERVICE_CLIENT_ID,
        route=info.route.name,
        resource=info.resource,
        scopes=scopes or tuple(info.route.scopes),
        issued_at=now,
        expires_at=now + ttl,
    )
    token_hash = hash_token(token)
    await store.save_access_token(token_hash, record, now=now)
    return IssuedToken(token=token, token_id=token_id(token_hash), record=record)


async def add_static_client(
    store: Store,
    *,
    client_id: str | None,
    redirect_uris: list[str],
    auth_method: str,
    name: str | None,
    secret: str | None,
    now: float,
    private_use_schemes: Collection[str] = DEFAULT_PRIVATE_USE_SCHEMES,
    grant_types: Collection[str] = (AUTHORIZATION_CODE, REFRESH_TOKEN),
    jwks: str | None = None,
    jwks_uri: str | None = None,
    groups: Collection[str] = (),
    scopes: Collection[str] | None = None,
) -> tuple[ClientRecord, str | None]:
    """A pre-registered client (PRE-1): fixed id and redirects (DCR's rules and bounds); a secret for the
    client_secret methods, a public JWK set (inline or by URL) for private_key_jwt; a machine client
    (client_credentials) with its groups and scopes. The same rules as `clients[]` (gateway.config.clients)."""
    client_id = client_id or "mcpgw_s_" + secrets.token_urlsafe(12)
    if not CLIENT_ID.match(client_id):
        raise AccountError(f"bad client id {client_id!r}: letters, digits and ._~@- only (URLs are CIMD ids)")
    if await store.load_client(client_id) is not None:
        raise AccountError(f"client {client_id!r} already exists")
    try:
        key_set = json.loads(jwks) if jwks is not None else None
    except ValueError:
        raise AccountError("the JWK set is not JSON") from None
    entry = {
        "token_endpoint_auth_method": auth_method,
        "client_secret": secret or (None if auth_method in ("none", "private_key_jwt") else "generated"),
        "redirect_uris": list(redirect_uris),
        "grant_types": list(grant_types),
        "jwks": key_set,
        "jwks_uri": jwks_uri,
        "groups": list(groups),
        "scopes": list(scopes) if scopes is not None else None,
    }
    problems = [p.removeprefix("client: ") for p in machine_client_problems(entry, "client")]
    if problems:
        raise AccountError("; ".join(problems))
    if len(redirect_uris) > MAX_REDIRECT_URIS:
        raise AccountError(f"at most {MAX_REDIRECT_URIS} redirect URIs")
    if name is not None and len(name) > MAX_NAME_LENGTH:
        raise AccountError(f"a client name has at most {MAX_NAME_LENGTH} characters")
    for uri in redirect_uris:
        problem = redirect_uri_problem(uri, private_use_schemes=private_use_schemes)
        if problem:
            raise AccountError(f"redirect URI {uri!r}: {problem}")
    if auth_method in ("none", "private_key_jwt"):
        secret = None
    else:
        secret = secret or "mcpgw_cs_" + secrets.token_urlsafe(32)
    record = ClientRecord(
        client_id=client_id,
        kind="static",
        client_secret_hash=hash_token(secret) if secret else None,
        token_endpoint_auth_method=auth_method,
        redirect_uris=tuple(redirect_uris),
        client_name=name,
        client_id_issued_at=int(now),
        grant_types=tuple(dict.fromkeys(grant_types)),
        jwks=json.dumps(key_set, separators=(",", ":")) if key_set is not None else None,
        jwks_uri=jwks_uri,
        groups=tuple(groups),
        scopes=tuple(scopes) if scopes is not None else None,
    )
    await store.save_client(record, None)
    return record, secret
