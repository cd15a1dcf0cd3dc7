"""Login sessions indexed per user (issue 10 #3): removing or changing a user ends their sessions, on every store
kind; the index is bounded (oldest session ended first) and forgets sessions past their absolute age."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.store.accounts import MAX_SESSIONS_PER_USER
from gateway.store.records import BrowserSessionRecord, Principal, UserRecord
from gateway.store.redis import RedisStore

NOW = 1_800_000_000.0
IDLE, MAX_AGE = 3600, 7 * 86400


def user(name: str = "alice", **extra: Any) -> UserRecord:
    return UserRecord(
        **(
            {
                "name": name,
                "email": f"{name}@example.com",
                "groups": ("eng",),
                "password_hash": "$argon2id$one",
                "created_at": NOW,
            }
            | extra
        )
    )


async def sign_in(store: RedisStore, session_hash: str, user_id: str = "local:alice", at: float = NOW) -> None:
    record = BrowserSessionRecord(csrf="c", principal=Principal(user_id=user_id, authenticated_at=at), created_at=at)
    await store.save_browser_session(session_hash, record, IDLE, max_age=MAX_AGE)


async def live(store: RedisStore, *session_hashes: str) -> list[bool]:
    return [await store.load_browser_session(h, IDLE) is not None for h in session_hashes]


async def test_removing_a_user_ends_every_login_session_of_theirs_and_nobody_elses(store: RedisStore) -> None:
    await store.save_user(user())
    await sign_in(store, "a1")
    await sign_in(store, "a2")
    await sign_in(store, "b1", user_id="local:bob")
    assert await store.delete_user("alice")
    assert await live(store, "a1", "a2", "b1") == [False, False, True]


@pytest.mark.parametrize(
    ("change", "ends"),
    [
        pytest.param({"password_hash": "$argon2id$two"}, True, id="password"),
        pytest.param({"groups": ("sales",)}, True, id="groups"),
        pytest.param({"email": "new@example.com"}, True, id="email"),
        pytest.param({"email_verified": False}, True, id="email-verified"),
        pytest.param({}, False, id="same-record"),
        pytest.param({"created_at": NOW + 1}, False, id="unrelated-field"),
    ],
)
async def test_saving_a_changed_user_ends_their_login_sessions(
    store: RedisStore, change: dict[str, Any], ends: bool
) -> None:
    """A session vouches for the account as it was at sign-in (password, email, groups)."""
    await store.save_user(user())
    await sign_in(store, "a1")
    await store.save_user(user(**change))
    assert await live(store, "a1") == [not ends]


async def test_ending_sessions_counts_them_and_anonymous_sessions_are_not_indexed(store: RedisStore) -> None:
    await sign_in(store, "a1")
    await store.save_browser_session("anon", BrowserSessionRecord(csrf="c", created_at=NOW), IDLE, max_age=MAX_AGE)
    assert await store.end_user_sessions("local:alice") == 1
    assert await store.end_user_sessions("local:alice") == 0
    assert await live(store, "a1", "anon") == [False, True]


async def test_a_user_keeps_at_most_the_bounded_number_of_sessions_the_oldest_ending_first(store: RedisStore) -> None:
    hashes = [f"s{i:03d}" for i in range(MAX_SESSIONS_PER_USER + 3)]
    for i, session_hash in enumerate(hashes):
        await sign_in(store, session_hash, at=NOW + i)
    assert await live(store, *hashes[:3]) == [False] * 3  # ended to make room
    assert all(await live(store, *hashes[3:]))
    assert await store.end_user_sessions("local:alice") == MAX_SESSIONS_PER_USER


async def test_index_entries_past_the_session_max_age_are_dropped(store: RedisStore) -> None:
    """The index only holds sessions that could still be used (younger than session_max_age)."""
    await sign_in(store, "old", at=NOW)
    await sign_in(store, "new", at=NOW + MAX_AGE + 1)
    assert await store.end_user_sessions("local:alice") == 1  # only "new" was still indexed
    assert await live(store, "old", "new") == [True, False]  # (the old record is refused by its age at load)
