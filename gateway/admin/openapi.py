"""The admin API's OpenAPI 3.1 document, built from the one table of endpoints the API registers (gateway.admin.api):
a route cannot be served without being described, nor described without being served.

Schemas come from the request models and the views (pydantic's JSON Schema, 2020-12 as OpenAPI 3.1 uses). The
document itself is served at `GET /api/openapi.json` and, like every `/api/` path, needs the admin credential.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from gateway import __version__

REF = "#/components/schemas/{model}"
PATH_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "A code: invalid_request, unauthorized, not_found, conflict, …"},
        "error_description": {"type": "string", "description": "One line, for people."},
    },
    "required": ["error", "error_description"],
}
ERROR_STATUSES = {
    "400": "The request is malformed (bad JSON, a field the rules refuse).",
    "401": 'No valid admin credential (WWW-Authenticate: Bearer realm="admin").',
    "404": "No such object, or no such path.",
    "409": "A conflict with what exists (taken id, ambiguous token id).",
    "413": "The body is larger than 64 KiB.",
    "415": "The body is not application/json.",
    "503": "The store (Redis) is unavailable.",
}


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    required: bool = False


@dataclass(frozen=True)
class Endpoint:
    """One admin route: what the router registers and what the document describes."""

    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[Any]]  # returns the view (`response`) or a JSON mapping
    summary: str
    response: type[Any] | None  # a view (dataclass) or None for the document itself
    body: type[Any] | None = None  # a pydantic request model
    status: int = 200
    query: tuple[Query, ...] = ()

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.removeprefix("handle_")


def _schemas(endpoints: tuple[Endpoint, ...]) -> tuple[dict[tuple[str, str], Any], dict[str, Any]]:
    types: dict[tuple[str, str], type[Any]] = {}
    for endpoint in endpoints:
        if endpoint.body is not None:
            types[(endpoint.body.__name__, "validation")] = endpoint.body
        if endpoint.response is not None:
            types[(endpoint.response.__name__, "serialization")] = endpoint.response
    inputs = [(key, key[1], TypeAdapter(kind)) for key, kind in types.items()]
    refs, definitions = TypeAdapter.json_schemas(inputs, ref_template=REF)  # type: ignore[arg-type]
    return {key: refs[(key, key[1])] for key in types}, dict(definitions.get("$defs", {}))


def _operation(endpoint: Endpoint, refs: dict[tuple[str, str], Any]) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in PATH_PARAMETER.findall(endpoint.path)
    ]
    parameters += [
        {
            "name": q.name,
            "in": "query",
            "required": q.required,
            "description": q.description,
            "schema": {"type": "string"},
        }
        for q in endpoint.query
    ]
    content = (
        {"application/json": {"schema": refs[(endpoint.response.__name__, "serialization")]}}
        if endpoint.response is not None
        else {"application/json": {"schema": {"type": "object", "description": "This document."}}}
    )
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "responses": {
            str(endpoint.status): {"description": endpoint.summary, "content": content},
            **{
                status: {
                    "description": text,
                    "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
                }
                for status, text in ERROR_STATUSES.items()
            },
        },
    }
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        schema = refs[(endpoint.body.__name__, "validation")]
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return operation


def build_document(endpoints: tuple[Endpoint, ...]) -> dict[str, Any]:
    refs, schemas = _schemas(endpoints)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mcp-auth-gateway admin API",
            "version": __version__,
            "description": "Users, clients, grants and tokens, sessions, upstream credentials, routes and signing "
            "keys of one gateway deployment. Served on the admin listener only (admin.listen), never on the "
            "public port. Every /api/ path, this document included, needs the bearer admin.token or, with "
            "admin.tls.client_ca_file, a client certificate that CA signed. Listings hold at most 1000 objects "
            "and say whether more exist (truncated). Secrets never appear: tokens and sessions by their 8-hex id.",
        },
        "paths": paths,
        "components": {
            "schemas": {**schemas, "Error": ERROR_SCHEMA},
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer", "description": "admin.token"},
                "clientCertificate": {"type": "mutualTLS", "description": "signed by admin.tls.client_ca_file"},
            },
        },
        "security": [{"adminToken": []}, {"clientCertificate": []}],
    }
