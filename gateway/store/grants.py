"""Admin listings of grants and tokens (gateway.admin): a user's grants from their index, a client's by SCAN.

Nothing here is on a request's path. A grant is read through its member index `grant:{id}` (`at:<hash>`,
`rt:<hash>`, written by `store.tokens`); a user's grants through `user-grants:{user}`, whose ids of grants that
have no token left are dropped as they are found. A client's tokens have no index (the token endpoint would pay
for one on every request): they are found by SCAN over `at:` and `rt:` records, an admin-only cost.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from gateway.store.records import AccessTokenRecord, GrantTokens, RefreshTokenRecord
from gateway.store.redis_base import RedisBase, reachable
from gateway.store.tokens import USER_GRANTS

SCAN_BATCH = 500  # records read per MGET while scanning


class GrantListingMixin(RedisBase):
    """The listing part of `TokenStore` on Redis."""

    async def load_grants(self, grant_ids: list[str]) -> list[GrantTokens]:
        """Each grant with its tokens still stored (a grant with none left is omitted)."""
        if not grant_ids:
            return []
        async with reachable():
            async with self._redis.pipeline(transaction=False) as pipe:  # (one key per slot: no transaction)
                for grant_id in grant_ids:
                    pipe.smembers(self.key("grant", grant_id))
                    pipe.exists(self.key("grant-rev", grant_id))
                replies = await pipe.execute()
            members = [sorted(str(m) for m in replies[2 * i]) for i in range(len(grant_ids))]
            keys = [k for listed in members for m in listed for k in self._member_keys(m)]
            values = iter(await self.mget_any(keys))
        grants = []
        for i, grant_id in enumerate(grant_ids):
            access, refresh = [], []
            for member in members[i]:
                kind, token_hash = member.split(":", 1)
                raw = next(values)
                if kind == "at":
                    revoked = next(values)
                    if raw is not None:
                        record = AccessTokenRecord.model_validate_json(raw)
                        access.append((token_hash, record.model_copy(update={"revoked": bool(revoked)})))
                elif raw is not None:
                    fresh = RefreshTokenRecord.model_validate_json(raw)
                    if fresh.rotated_at is None:  # (a rotated one is kept only to detect its reuse)
                        refresh.append((token_hash, fresh))
            if access or refresh:
                grants.append(GrantTokens(grant_id, bool(replies[2 * i + 1]), tuple(access), tuple(refresh)))
        return grants

    def _member_keys(self, member: str) -> list[str]:
        kind, token_hash = member.split(":", 1)
        if kind == "at":
            return [self.key("at", token_hash), self.key("at-rev", token_hash)]
        return [self.key("rt", token_hash)]

    async def list_user_grants(self, user_id: str, limit: int) -> tuple[list[GrantTokens], bool]:
        """The user's grants that have a refresh token or access tokens left, at most `limit`; True: more exist."""
        index = self.key(USER_GRANTS, user_id)
        async with reachable():
            grant_ids = sorted(str(g) for g in await self._redis.smembers(index))
        grants = await self.load_grants(grant_ids[:limit])
        found = {g.grant_id for g in grants}
        gone = [g for g in grant_ids[:limit] if g not in found]
        if gone:
            async with reachable():
                await self._redis.srem(index, *gone)
        return grants, len(grant_ids) > limit

    async def list_client_tokens(self, client_id: str, limit: int) -> tuple[list[GrantTokens], bool]:
        """The grants of one client (and its tokens issued outside a grant), at most `limit`; True: more exist
        (admin: this SCANs every token record)."""
        access, more_access = await self._scan_client("at", AccessTokenRecord, client_id, limit)
        refresh, more_refresh = await self._scan_client("rt", RefreshTokenRecord, client_id, limit)
        grant_ids = list(
            dict.fromkeys([r.grant_id for _, r in refresh] + [r.grant_id for _, r in access if r.grant_id])
        )
        loose = [(h, r) for h, r in access if r.grant_id is None]
        truncated = more_access or more_refresh or len(grant_ids) + len(loose) > limit
        grant_ids, loose = grant_ids[:limit], loose[: max(0, limit - len(grant_ids))]
        grants = await self.load_grants(grant_ids)
        async with reachable():
            marks = await self.mget_any([self.key("at-rev", h) for h, _ in loose])
        for (token_hash, record), mark in zip(loose, marks, strict=True):
            grants.append(GrantTokens(None, False, ((token_hash, record.model_copy(update={"revoked": bool(mark)})),)))
        return grants, truncated

    async def find_refresh_token_hashes(self, token_id: str) -> list[str]:
        """Hashes of refresh tokens starting with `token_id` (admin lookups only: this SCANs)."""
        if not token_id or any(c not in "0123456789abcdef" for c in token_id):
            return []
        prefix = self.key("rt", "")[:-1]  # "…:rt:{"
        async with reachable():
            keys = [k async for k in self._redis.scan_iter(match=prefix + token_id + "*", count=1000)]
        return [k[len(prefix) : -1] for k in keys if k.endswith("}")]

    async def _scan_client(self, kind: str, model: Any, client_id: str, limit: int) -> tuple[list[Any], bool]:
        """(hash, record) of the `kind` records of `client_id`, the first `limit` found; True: there are more."""
        prefix = self.key(kind, "")[:-1]
        found: list[tuple[str, Any]] = []
        batch: list[str] = []
        async with reachable(), aclosing(self._redis.scan_iter(match=prefix + "*", count=1000)) as keys:
            async for key in keys:
                if key.endswith("}"):
                    batch.append(key)
                if len(batch) >= SCAN_BATCH:
                    found += await self._matching(batch, prefix, model, client_id)
                    batch = []
                    if len(found) > limit:
                        return found[:limit], True
            found += await self._matching(batch, prefix, model, client_id)
        return found[:limit], len(found) > limit

    async def _matching(self, keys: list[str], prefix: str, model: Any, client_id: str) -> list[tuple[str, Any]]:
        records = [(k[len(prefix) : -1], v) for k, v in zip(keys, await self.mget_any(keys), strict=True) if v]
        parsed = [(token_hash, model.model_validate_json(raw)) for token_hash, raw in records]
        return [(token_hash, record) for token_hash, record in parsed if record.client_id == client_id]
