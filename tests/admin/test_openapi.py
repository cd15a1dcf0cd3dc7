"""The OpenAPI 3.1 document at `/api/openapi.json` (docs/contract.md "Operations") describes exactly what the admin
application serves: built from the one table the routes are registered from, checked here against the router."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.admin.conftest import Admin


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "$ref" and isinstance(inner, str):
                yield inner
            else:
                yield from refs(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from refs(inner)


async def test_the_document_names_every_registered_route_and_nothing_else(admin: Admin) -> None:
    reply = await admin.call("GET", "/api/openapi.json")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("application/json")
    document = json.loads(reply.text)
    assert document["openapi"] == "3.1.0"
    registered = {
        (r.resource.canonical, r.method.lower())
        for r in admin.api.app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api/")
    }
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert registered == documented
    required = {
        ("/api/users", "get"),
        ("/api/clients", "get"),
        ("/api/grants", "get"),
        ("/api/users/{name}/revoke", "post"),
        ("/api/openapi.json", "get"),
    }
    assert required <= documented


async def test_every_schema_reference_resolves_and_every_operation_is_secured(admin: Admin) -> None:
    document = (await admin.call("GET", "/api/openapi.json")).body
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    assert {"adminToken", "clientCertificate"} == set(document["components"]["securitySchemes"])
    assert document["security"] == [{"adminToken": []}, {"clientCertificate": []}]
    operation_ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))
    grants = document["paths"]["/api/grants"]["get"]
    assert {p["name"] for p in grants["parameters"]} == {"user", "client"}
    created = document["paths"]["/api/users"]["post"]
    assert "201" in created["responses"] and "requestBody" in created
    password = schemas["UserCreateRequest"]["properties"]["password"]
    assert password["writeOnly"] is True  # (a secret goes in, never out)
