"""How the sign-in and consent pages name a client (issue 10 #19; MCP security best practices, confused deputy):
pure, a client record in, what the page says out."""

from __future__ import annotations

import pytest

from gateway.store.records import ClientRecord
from gateway.web.authorize_pages import describe_client


def client(kind: str, client_id: str = "c1", name: str | None = "Acme Notes Desktop") -> ClientRecord:
    return ClientRecord(client_id=client_id, kind=kind, redirect_uris=("https://app.example/cb",), client_name=name)


@pytest.mark.parametrize(
    ("record", "name", "badge", "says"),
    [
        pytest.param(client("dcr"), '"Acme Notes Desktop"', "unverified", "anyone may register", id="dcr"),
        pytest.param(
            client("dcr", name=None), "An unnamed application", "unverified", "registered itself", id="dcr-without-name"
        ),
        pytest.param(client("dcr", name="x" * 500), '"' + "x" * 80 + '"', "unverified", "anyone", id="dcr-long-name"),
        pytest.param(client("config", "ide"), "Acme Notes Desktop", "pre-registered", "administrator", id="config"),
        pytest.param(client("static", "ide", name=None), "ide", "pre-registered", "administrator", id="clients-add"),
        pytest.param(
            client("cimd", "https://notes.example.com/oauth/client.json"),
            "notes.example.com",
            "verified",
            "published by notes.example.com",
            id="cimd",
        ),
    ],
)
def test_each_kind_of_client_is_named_by_what_the_gateway_knows(
    record: ClientRecord, name: str, badge: str, says: str
) -> None:
    described = describe_client(record)
    assert (described.name, described.badge) == (name, badge)
    assert says in described.how
    assert described.calls_itself == ("Acme Notes Desktop" if record.kind == "cimd" else None)  # shown in <bdi>
