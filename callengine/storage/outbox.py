"""The webhooks' transactional outbox: an event row, and one delivery per enabled endpoint
subscribed to its type, written by the same transaction as the change the event reports (a
crash keeps both or neither). Nothing is written while no endpoint wants the type. `dedup` names
the change (e.g. `lead.created:<lead id>`): a change written twice (the intake move after a
crash) makes one event. Payloads hold no personal field: the delivery adds the number."""

from __future__ import annotations

import json
import sqlite3

from uuid6 import uuid7

from callengine.hooks.events import LEAD_PURGED, SUBJECT_ERASED

_SUBSCRIBED = ("e.enabled = 1 AND EXISTS (SELECT 1 FROM json_each(e.events) j"
               " WHERE j.value IN (?, '*'))")
EVENT = ("INSERT OR IGNORE INTO webhook_events (id, dedup, type, lead_id, payload, created_at)"
         f" SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE"
         f" {_SUBSCRIBED})")
DELIVERIES = ("INSERT OR IGNORE INTO webhook_deliveries (id, event_id, endpoint_id, status,"
              " next_at, created_at) SELECT lower(hex(randomblob(16))), ?, e.id, 'pending', ?, ?"
              f" FROM webhook_endpoints e WHERE {_SUBSCRIBED}"
              " AND EXISTS (SELECT 1 FROM webhook_events WHERE id = ?)")


def statements(event_type: str, dedup: str, lead_id: str | None, data: dict, now: float
               ) -> list[tuple[str, tuple]]:
    """The two statements of one event, to run inside the caller's transaction."""
    event_id = "msg_" + str(uuid7()).replace("-", "")
    payload = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return [(EVENT, (event_id, dedup, event_type, lead_id, payload, now, event_type)),
            (DELIVERIES, (event_id, now, now, event_type, event_id))]


def write(conn: sqlite3.Connection, event_type: str, dedup: str, lead_id: str | None,
          data: dict, now: float) -> None:
    """On the connection's thread, inside a transaction."""
    for sql, params in statements(event_type, dedup, lead_id, data, now):
        conn.execute(sql, params)


async def emit(db, event_type: str, dedup: str, lead_id: str | None, data: dict,
               now: float) -> None:
    """The same over aiosqlite, inside the caller's `_transaction()`."""
    for sql, params in statements(event_type, dedup, lead_id, data, now):
        await db.execute(sql, params)


def purged(reason: str, lead_ids: list[str], now: float) -> tuple[str, str, None, dict, float]:
    """The event of leads deleted together (emit's/write's arguments after the connection):
    subject.erased for an erasure, lead.purged for retention; named after the first lead (a
    lead is deleted once)."""
    ids = sorted(lead_ids)
    if reason == "erasure":
        return SUBJECT_ERASED, f"{SUBJECT_ERASED}:{lead_ids[0]}", None, {
            "lead_ids": ids, "erased_at": now}, now
    return LEAD_PURGED, f"{LEAD_PURGED}:{lead_ids[0]}", None, {
        "lead_ids": ids, "reason": reason, "purged_at": now}, now
