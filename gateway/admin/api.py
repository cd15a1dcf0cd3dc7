"""The admin API's handlers under `/api/`: each parses, calls one service function, renders its view as JSON.

`ENDPOINTS` is the one table of them: `setup_api` registers it and builds the OpenAPI document from it
(gateway.admin.openapi). Authentication, errors, the body limit and the audit line are the listener's middleware
(gateway.admin.listener).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ValidationError

from gateway.admin import clients, credentials, grants, keys, routes, users
from gateway.admin.errors import AdminError, bad_request
from gateway.admin.openapi import Endpoint, Query, build_document
from gateway.admin.requests import ClientCreateRequest, GroupsRequest, UserCreateRequest
from gateway.admin.target import REQUEST_TARGET_KEY, AdminTarget
from gateway.admin.views import (
    ClientCreated,
    ClientList,
    ClientView,
    CredentialDrop,
    CredentialList,
    GrantList,
    KeyList,
    KeyView,
    Revocation,
    RouteList,
    SessionList,
    SessionView,
    UserList,
    UserRemoval,
    UserRevocation,
    UserView,
    as_json,
)
from gateway.web.body import BodyTimeoutError, BodyTooLargeError, read_body

MAX_BODY_BYTES = 64 * 1024
OPENAPI_KEY = web.AppKey("admin_openapi", dict)
Body = TypeVar("Body", bound=BaseModel)


def _target(request: web.Request) -> AdminTarget:
    return request[REQUEST_TARGET_KEY]


def _rendered(endpoint: Endpoint) -> Handler:
    """The endpoint's handler, its view rendered as JSON with the status the document gives."""

    async def handler(request: web.Request) -> web.Response:
        result = await endpoint.handler(request)
        return web.json_response(result if isinstance(result, dict) else as_json(result), status=endpoint.status)

    return handler


async def parse_body(request: web.Request, model: type[Body]) -> Body:
    """The JSON body as `model`: at most 64 KiB, application/json, valid.

    Raises:
        AdminError: 413, 408, 415 or 400 (every problem as `field: message`, never the input).
    """
    try:
        raw = await read_body(request, MAX_BODY_BYTES, _target(request).settings.listen)
    except BodyTooLargeError:
        raise AdminError(413, "payload_too_large", f"the body is larger than {MAX_BODY_BYTES // 1024} KiB") from None
    except BodyTimeoutError:
        raise AdminError(408, "request_timeout", "the body arrived too slowly") from None
    if request.content_type != "application/json":
        raise AdminError(415, "unsupported_media_type", "send the body as application/json")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request("the body is not JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()]
        raise bad_request("; ".join(problems)[:500]) from None


# -- users and their sessions -----------------------------------------------------------------------------------


async def handle_list_users(request: web.Request) -> Any:
    return await users.list_users(_target(request).store)


async def handle_add_user(request: web.Request) -> Any:
    body = await parse_body(request, UserCreateRequest)
    target = _target(request)
    view = await users.add_user(
        target.store,
        body.name,
        body.password.get_secret_value(),
        email=body.email,
        groups=tuple(body.groups),
        now=target.clock(),
    )
    return view


async def handle_remove_user(request: web.Request) -> Any:
    return await users.remove_user(_target(request), request.match_info["name"])


async def handle_set_groups(request: web.Request) -> Any:
    body = await parse_body(request, GroupsRequest)
    return await users.set_groups(_target(request).store, request.match_info["name"], body.groups)


async def handle_revoke_user(request: web.Request) -> Any:
    target = _target(request)
    return await grants.revoke_user(target.store, request.match_info["name"], now=target.clock())


async def handle_list_sessions(request: web.Request) -> Any:
    return await users.list_sessions(_target(request).store, request.match_info["user"])


async def handle_end_session(request: web.Request) -> Any:
    info = request.match_info
    return await users.end_session(_target(request).store, info["user"], info["session_id"])


async def handle_list_credentials(request: web.Request) -> Any:
    target = _target(request)
    user_id = await users.resolve_user_id(target.store, request.match_info["user"])
    return await credentials.list_credentials(target, user_id)


async def handle_drop_credential(request: web.Request) -> Any:
    target = _target(request)
    user_id = await users.resolve_user_id(target.store, request.match_info["user"])
    return await credentials.drop_credential(target, user_id, request.match_info["slot"])


# -- clients ----------------------------------------------------------------------------------------------------


async def handle_list_clients(request: web.Request) -> Any:
    target = _target(request)
    return await clients.list_clients(target.settings, target.store)


async def handle_add_client(request: web.Request) -> Any:
    body = await parse_body(request, ClientCreateRequest)
    target = _target(request)
    created = await clients.add_client(
        target.settings,
        target.store,
        client_id=body.client_id,
        redirect_uris=list(body.redirect_uris),
        auth_method=body.token_endpoint_auth_method,
        name=body.client_name,
        secret=body.client_secret.get_secret_value() if body.client_secret else None,
        grant_types=body.grant_types,
        jwks=body.jwks,
        jwks_uri=body.jwks_uri,
        groups=body.groups,
        scopes=body.scopes,
        now=target.clock(),
    )
    return created


async def handle_remove_client(request: web.Request) -> Any:
    target = _target(request)
    return await clients.remove_client(target.settings, target.store, request.match_info["client_id"])


# -- grants and tokens ------------------------------------------------------------------------------------------


async def handle_list_grants(request: web.Request) -> Any:
    target = _target(request)
    user, client = request.query.get("user"), request.query.get("client")
    return await grants.list_grants(target.store, user=user, client=client, now=target.clock())


async def handle_revoke_grant(request: web.Request) -> Any:
    return await grants.revoke_grant(_target(request).store, request.match_info["grant_id"])


async def handle_revoke_token(request: web.Request) -> Any:
    return await grants.revoke_token(_target(request).store, request.match_info["token_id"])


# -- routes and keys --------------------------------------------------------------------------------------------


async def handle_route_status(request: web.Request) -> Any:
    return await routes.route_status(_target(request))


async def handle_list_keys(request: web.Request) -> Any:
    return await keys.list_keys(_target(request))


async def handle_rotate_key(request: web.Request) -> Any:
    return await keys.rotate_key(_target(request))


async def handle_openapi(request: web.Request) -> dict[str, Any]:
    return request.app[OPENAPI_KEY]


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/openapi.json", handle_openapi, "This OpenAPI 3.1 document", None),
    Endpoint("GET", "/api/users", handle_list_users, "List local accounts", UserList),
    Endpoint("POST", "/api/users", handle_add_user, "Create a local account", UserView, UserCreateRequest, 201),
    Endpoint(
        "DELETE", "/api/users/{name}", handle_remove_user, "Delete a local account, ending its access", UserRemoval
    ),
    Endpoint("PUT", "/api/users/{name}/groups", handle_set_groups, "Replace a user's groups", UserView, GroupsRequest),
    Endpoint(
        "POST",
        "/api/users/{name}/revoke",
        handle_revoke_user,
        "End every grant, token and login session of a user (a local name or a user id), keeping the account",
        UserRevocation,
    ),
    Endpoint("GET", "/api/users/{user}/sessions", handle_list_sessions, "List a user's login sessions", SessionList),
    Endpoint(
        "DELETE", "/api/users/{user}/sessions/{session_id}", handle_end_session, "End a login session", SessionView
    ),
    Endpoint(
        "GET",
        "/api/users/{user}/credentials",
        handle_list_credentials,
        "List the upstream credentials held for a user (never their values)",
        CredentialList,
    ),
    Endpoint(
        "DELETE",
        "/api/users/{user}/credentials/{slot}",
        handle_drop_credential,
        "Revoke (where the server allows) and drop one upstream credential (slot route:<name> or provider:<name>)",
        CredentialDrop,
    ),
    Endpoint(
        "GET", "/api/clients", handle_list_clients, "List OAuth clients (YAML, admin-added, DCR, CIMD)", ClientList
    ),
    Endpoint(
        "POST", "/api/clients", handle_add_client, "Pre-register a client", ClientCreated, ClientCreateRequest, 201
    ),
    Endpoint("DELETE", "/api/clients/{client_id}", handle_remove_client, "Delete a stored client", ClientView),
    Endpoint(
        "GET",
        "/api/grants",
        handle_list_grants,
        "List the grants and tokens of one user or of one client",
        GrantList,
        query=(
            Query("user", "a local account's name or a user id (corp:1234); or give client"),
            Query("client", "a client_id; or give user"),
        ),
    ),
    Endpoint(
        "POST",
        "/api/grants/{grant_id}/revoke",
        handle_revoke_grant,
        "End a grant (named by its id or any of its tokens' ids) with every token of it",
        Revocation,
    ),
    Endpoint(
        "POST",
        "/api/tokens/{token_id}/revoke",
        handle_revoke_token,
        "Revoke one access token (a refresh token: its grant) by its 8-hex id",
        Revocation,
    ),
    Endpoint("GET", "/api/routes", handle_route_status, "List routes with live upstream status", RouteList),
    Endpoint("GET", "/api/keys", handle_list_keys, "List the identity-JWT signing keys (ids only)", KeyList),
    Endpoint(
        "POST",
        "/api/keys/rotate",
        handle_rotate_key,
        "Add a new signing key (older ones stay published)",
        KeyView,
        status=201,
    ),
)


def setup_api(app: web.Application) -> None:
    """Register every endpoint of the table and the document describing them."""
    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, _rendered(endpoint))
    app[OPENAPI_KEY] = build_document(ENDPOINTS)
