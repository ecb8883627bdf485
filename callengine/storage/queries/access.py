"""Store's access rows: API tokens (only their hashes) and the keyed, anchored audit chain
(docs/audit.md; its key and anchor: storage/audit_head.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from typing import Any

from callengine.access import (
    GAP_ACTION,
    GENESIS,
    AuditEntry,
    AuditHead,
    Principal,
    Role,
    chain_hash,
    chain_mac,
)
from callengine.errors import Conflict, NotFound
from callengine.storage.audit_head import AuditHeadError, AuditSeal
from callengine.storage.base import StoreBase

SYSTEM = Principal("callengine", Role.ADMIN)  # who writes the chain's own entries


@dataclass(frozen=True)
class AuditState:
    """What `audit verify` checks: the entries, the store's audit identity, the anchor."""

    entries: list[AuditEntry]
    store_id: str
    keyed_from: int
    key: bytes | None
    head: AuditHead | None
    head_seal: str | None
    head_problem: str | None  # the anchor exists but can't be read


class AccessQueries(StoreBase):
    _audit_seal: AuditSeal

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
        row = await self._fetch_one(
            "SELECT name, role FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash,),
        )
        return None if row is None else Principal(row["name"], Role(row["role"]))

    async def list_tokens(self) -> list[dict[str, Any]]:
        return [dict(row) for row in await self._fetch(
            "SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY name"
        )]

    async def _audit_meta(self, db=None) -> tuple[str, int]:
        rows = await (db or self._db).execute_fetchall("SELECT name, value FROM audit_meta")
        meta = {row["name"]: row["value"] for row in rows}
        return meta.get("store_id", ""), int(meta.get("keyed_from", "1"))

    async def audit(self, principal: Principal, action: str, target: str, detail: str,
                    now: float, *, new_anchor: bool = False) -> AuditEntry:
        """Append one entry to the keyed chain and move the anchor to it (never personal data
        in target or detail). Under the anchor's lock: the row's commit, then the anchor, so
        the anchor is never ahead and at most one entry behind (after a crash). An anchor
        found ahead of the table (a cut tail), or unreadable, is not overwritten silently: an
        `audit.gap` entry records what it said, and verify reports it for good."""
        seal = self._audit_seal
        store_id, _ = await self._audit_meta()
        key = seal.key()
        assert key is not None
        async with seal.locked(store_id):
            try:
                anchored = seal.read_head(store_id)
                anchor_problem = None
                if anchored is not None and anchored[0].seal(key) != anchored[1]:
                    anchored, anchor_problem = None, "not sealed with the audit key"
            except AuditHeadError as exc:
                anchored, anchor_problem = None, str(exc)
            async with self._transaction() as db:
                async with db.execute(
                    "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
                ) as cursor:
                    last = await cursor.fetchone()
                seq, prev = (last["seq"], last["hash"]) if last else (0, GENESIS)
                _, keyed_from = await self._audit_meta(db)
                if anchored is not None:
                    keyed_from = anchored[0].keyed_from
                pending = []
                gap = None if new_anchor else _gap(anchored, anchor_problem, seq, prev,
                                                   keyed_from)
                if gap:
                    pending.append((SYSTEM, GAP_ACTION, f"seq:{seq + 1}", gap))
                elif seq + 1 == keyed_from and keyed_from > 1:
                    pending.append((SYSTEM, "audit.keyed", f"seq:{keyed_from}",
                                    f"entries 1-{keyed_from - 1}: the old unkeyed SHA-256 chain;"
                                    " from here on HMAC-SHA256 under the audit key"))
                pending.append((principal, action, target, detail))
                for who, act, what, why in pending:
                    seq += 1
                    mac = (chain_mac(key, prev, seq, now, who.actor, who.role.value, act, what,
                                     why) if seq >= keyed_from else
                           chain_hash(prev, seq, now, who.actor, who.role.value, act, what, why))
                    await db.execute(
                        "INSERT INTO audit_log (seq, at, actor, role, action, target, detail,"
                        " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (seq, now, who.actor, who.role.value, act, what, why, prev, mac),
                    )
                    entry = AuditEntry(seq, now, who.actor, who.role.value, act, what, why,
                                       prev, mac)
                    prev = mac
            await asyncio.to_thread(seal.write_head, AuditHead(store_id, keyed_from, seq, prev))
        return entry

    async def audit_entries(self) -> list[AuditEntry]:
        return [AuditEntry(**dict(row)) for row in await self._fetch("SELECT * FROM audit_log ORDER BY seq")]

    async def audit_state(self) -> AuditState:
        """The entries and what they are checked against (read-only: no key is made here)."""
        store_id, keyed_from = await self._audit_meta()
        entries = await self.audit_entries()
        seal = self._audit_seal
        head = head_seal = key = None
        try:
            key = seal.key(create=False)
            anchored = seal.read_head(store_id) if store_id else None
            if anchored is not None:
                head, head_seal = anchored
        except AuditHeadError as exc:
            return AuditState(entries, store_id, keyed_from, key, None, None, str(exc))
        return AuditState(entries, store_id, keyed_from, key, head, head_seal, None)

    async def audit_rebase(self, principal: Principal, detail: str, now: float) -> AuditEntry:
        """A restored copy becomes a store of its own: a new identity (its anchor starts at
        its current head) and an entry saying from what it was restored."""
        old_id, _ = await self._audit_meta()
        async with self._transaction() as db:
            await db.execute("UPDATE audit_meta SET value = lower(hex(randomblob(16)))"
                             " WHERE name = 'store_id'")
        return await self.audit(principal, "backup.restored", f"store:{old_id}", detail, now,
                                new_anchor=True)


def _gap(anchored: tuple[AuditHead, str] | None, problem: str | None, seq: int, prev: str,
         keyed_from: int) -> str | None:
    """Why the anchor does not end where the table does (None: it does, or is one behind)."""
    if problem:
        return f"the anchor was unreadable: {problem}"
    if anchored is None:
        return (f"no anchor, though the chain is keyed up to {seq}"
                if seq >= keyed_from else None)
    head = anchored[0]
    if head.seq > seq:
        return f"the anchor said seq {head.seq} (MAC {head.mac}); the table ended at {seq}"
    if head.seq == seq and head.mac != prev:
        return f"the anchor said seq {head.seq} had MAC {head.mac}; the table's is {prev}"
    return None
