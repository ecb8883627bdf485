"""Store's access rows: API tokens (only their hashes) and the hash-chained audit log."""

from __future__ import annotations

import sqlite3
from typing import Any

from callengine.access import GENESIS, AuditEntry, Principal, Role, chain_hash
from callengine.errors import Conflict, NotFound
from callengine.storage.base import StoreBase


class AccessQueries(StoreBase):
    async def add_token(self, name: str, role: Role, token_hash: str, now: float) -> None:
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT INTO api_tokens (name, role, token_hash, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (name, role.value, token_hash, now),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"token {name!r} exists already") from None

    async def revoke_token(self, name: str, now: float) -> None:
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (now, name),
            )
            if cursor.rowcount != 1:
                raise NotFound("active token", name)

    async def principal_for(self, token_hash: str) -> Principal | None:
        async with self._db.execute(
            "SELECT name, role FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash,),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else Principal(row["name"], Role(row["role"]))

    async def list_tokens(self) -> list[dict[str, Any]]:
        async with self._db.execute(
            "SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY name"
        ) as cursor:
            return [dict(row) async for row in cursor]

    async def audit(self, principal: Principal, action: str, target: str, detail: str,
                    now: float) -> AuditEntry:
        """Append one entry to the hash chain (never personal data in target or detail)."""
        async with self._transaction() as db:
            async with db.execute(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
            ) as cursor:
                last = await cursor.fetchone()
            seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
            entry_hash = chain_hash(prev, seq, now, principal.actor, principal.role.value,
                                    action, target, detail)
            await db.execute(
                "INSERT INTO audit_log (seq, at, actor, role, action, target, detail,"
                " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, now, principal.actor, principal.role.value, action, target, detail,
                 prev, entry_hash),
            )
        return AuditEntry(seq, now, principal.actor, principal.role.value, action, target,
                          detail, prev, entry_hash)

    async def audit_entries(self) -> list[AuditEntry]:
        async with self._db.execute("SELECT * FROM audit_log ORDER BY seq") as cursor:
            return [AuditEntry(**dict(row)) async for row in cursor]
