"""Store's webhooks: the CRMs' endpoints (secrets under the field cipher), the outbox's
deliveries claimed by lease, each attempt's result, replays. The events themselves are written
by the changes they report (storage/outbox.py)."""

from __future__ import annotations

import json
from typing import Any

from uuid6 import uuid7

from callengine.errors import NotFound
from callengine.hooks.events import DEAD, DELIVERED, PENDING, Claimed, Delivery, Endpoint
from callengine.storage.base import StoreBase
from callengine.storage.sql import marks

_SECRET_CONTEXT = "webhook_endpoints.secret:"
PRUNE_BATCH = 1000  # deliveries pruned per transaction (a short hold of the writer)
_DELIVERY_COLUMNS = ("d.*, v.type AS event_type, v.lead_id, v.payload, v.created_at AS event_at")


def _endpoint(row) -> Endpoint:
    return Endpoint(id=row["id"], url=row["url"], description=row["description"],
                    events=tuple(json.loads(row["events"])), full_numbers=bool(row["full_numbers"]),
                    enabled=bool(row["enabled"]), created_at=row["created_at"],
                    updated_at=row["updated_at"], rotated_until=row["previous_until"])


def _delivery(row) -> Delivery:
    return Delivery(id=row["id"], event_id=row["event_id"], endpoint_id=row["endpoint_id"],
                    event_type=row["event_type"], lead_id=row["lead_id"], status=row["status"],
                    attempts=row["attempts"], next_at=row["next_at"], last_code=row["last_code"],
                    last_error=row["last_error"], last_latency_ms=row["last_latency_ms"],
                    created_at=row["created_at"], delivered_at=row["delivered_at"])


class WebhookQueries(StoreBase):
    async def add_webhook(self, url: str, description: str, events: tuple[str, ...],
                          full_numbers: bool, secret: str, now: float) -> Endpoint:
        endpoint_id = "ep_" + str(uuid7()).replace("-", "")
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO webhook_endpoints (id, url, description, events, full_numbers,"
                " enabled, secret_enc, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
                (endpoint_id, url, description, json.dumps(list(events)), int(full_numbers),
                 self._cipher.encrypt(secret, _SECRET_CONTEXT + endpoint_id), now, now))
        return await self.get_webhook(endpoint_id)

    async def get_webhook(self, endpoint_id: str) -> Endpoint:
        rows = await self._db.execute_fetchall(
            "SELECT * FROM webhook_endpoints WHERE id = ?", (endpoint_id,))
        if not rows:
            raise NotFound("webhook", endpoint_id)
        return _endpoint(rows[0])

    async def list_webhooks(self) -> list[Endpoint]:
        rows = await self._db.execute_fetchall(
            "SELECT * FROM webhook_endpoints ORDER BY created_at")
        return [_endpoint(row) for row in rows]

    async def update_webhook(self, endpoint_id: str, now: float, *, url: str | None = None,
                             events: tuple[str, ...] | None = None,
                             full_numbers: bool | None = None,
                             enabled: bool | None = None) -> Endpoint:
        sets, params = ["updated_at = ?"], [now]
        for column, value in (("url", url), ("full_numbers", full_numbers),
                              ("enabled", enabled),
                              ("events", None if events is None else json.dumps(list(events)))):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(int(value) if isinstance(value, bool) else value)
        async with self._transaction() as db:
            cursor = await db.execute(
                f"UPDATE webhook_endpoints SET {', '.join(sets)} WHERE id = ?",
                (*params, endpoint_id))
            if not cursor.rowcount:
                raise NotFound("webhook", endpoint_id)
        return await self.get_webhook(endpoint_id)

    async def remove_webhook(self, endpoint_id: str) -> Endpoint:
        """With its deliveries; events no endpoint has left go too."""
        found = await self.get_webhook(endpoint_id)
        async with self._transaction() as db:
            await db.execute("DELETE FROM webhook_endpoints WHERE id = ?", (endpoint_id,))
            await db.execute("DELETE FROM webhook_events WHERE NOT EXISTS (SELECT 1 FROM"
                             " webhook_deliveries d WHERE d.event_id = webhook_events.id)")
        return found

    async def rotate_webhook_secret(self, endpoint_id: str, secret: str, now: float,
                                    grace_until: float) -> Endpoint:
        """The new secret signs from now; the current one too, until grace_until."""
        async with self._transaction() as db:
            rows = await db.execute_fetchall(
                "SELECT secret_enc FROM webhook_endpoints WHERE id = ?", (endpoint_id,))
            if not rows:
                raise NotFound("webhook", endpoint_id)
            old = self._cipher.decrypt(rows[0][0], _SECRET_CONTEXT + endpoint_id)
            await db.execute(
                "UPDATE webhook_endpoints SET secret_enc = ?, previous_secret_enc = ?,"
                " previous_until = ?, updated_at = ? WHERE id = ?",
                (self._cipher.encrypt(secret, _SECRET_CONTEXT + endpoint_id),
                 self._cipher.encrypt(old, _SECRET_CONTEXT + endpoint_id + ":previous"),
                 grace_until, now, endpoint_id))
        return await self.get_webhook(endpoint_id)

    async def claim_deliveries(self, now: float, lease_s: float, limit: int) -> list[Claimed]:
        """The pending deliveries due, leased to the caller until now + lease_s (another
        worker, of this process or another, skips them meanwhile; an expired lease is claimed
        again), oldest event first, with their endpoints' secrets and the leads' numbers."""
        async with self._transaction() as db:
            rows = await db.execute_fetchall(
                "UPDATE webhook_deliveries SET locked_until = ? WHERE id IN (SELECT id FROM"
                f" webhook_deliveries WHERE status = '{PENDING}' AND next_at <= ? AND"
                " (locked_until IS NULL OR locked_until <= ?) ORDER BY next_at, event_id"
                " LIMIT ?) RETURNING id", (now + lease_s, now, now, limit))
        if not rows:
            return []
        ids = [row[0] for row in rows]
        rows = await self._db.execute_fetchall(
            f"SELECT {_DELIVERY_COLUMNS}, e.url, e.full_numbers, e.secret_enc,"
            " e.previous_secret_enc, e.previous_until, l.phone_enc, l.subject_id"
            " FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id"
            " JOIN webhook_endpoints e ON e.id = d.endpoint_id"
            " LEFT JOIN leads l ON l.id = v.lead_id"
            f" WHERE d.id IN ({marks(len(ids))}) ORDER BY v.id", ids)
        ciphers = await self._ciphers(row["subject_id"] for row in rows
                                      if row["subject_id"] is not None)
        claimed = []
        for row in rows:
            secrets = [self._cipher.decrypt(row["secret_enc"], _SECRET_CONTEXT + row["endpoint_id"])]
            if row["previous_secret_enc"] is not None and (row["previous_until"] or 0) > now:
                secrets.append(self._cipher.decrypt(
                    row["previous_secret_enc"], _SECRET_CONTEXT + row["endpoint_id"] + ":previous"))
            cipher = ciphers.get(row["subject_id"])
            phone = None if cipher is None or row["phone_enc"] is None else cipher.decrypt(
                row["phone_enc"], f"leads.phone:{row['lead_id']}")
            claimed.append(Claimed(_delivery(row), row["url"], tuple(secrets),
                                   bool(row["full_numbers"]), json.loads(row["payload"]),
                                   row["event_at"], phone))
        return claimed

    async def record_delivery(self, delivery_id: str, now: float, *, code: int | None,
                              latency_ms: float, error: str | None, delivered: bool,
                              retry_at: float | None) -> None:
        """One attempt's result: delivered, pending again at retry_at, or dead (neither)."""
        status = DELIVERED if delivered else PENDING if retry_at is not None else DEAD
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, status = ?, next_at = ?,"
                " locked_until = NULL, last_code = ?, last_error = ?, last_latency_ms = ?,"
                " delivered_at = ? WHERE id = ?",
                (status, retry_at, code, error, latency_ms, now if delivered else None,
                 delivery_id))
            if cursor.rowcount:  # the history: numbered across replays
                await db.execute(
                    "INSERT INTO webhook_attempts (delivery_id, number, at, code, latency_ms,"
                    " error) SELECT ?, COALESCE(MAX(number), 0) + 1, ?, ?, ?, ? FROM"
                    " webhook_attempts WHERE delivery_id = ?",
                    (delivery_id, now, code, latency_ms, error, delivery_id))

    async def release_deliveries(self, delivery_ids: list[str], next_at: float | None) -> None:
        """Claimed and not tried (an earlier one to the endpoint failed): due at next_at (None:
        at once), no attempt counted."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE webhook_deliveries SET locked_until = NULL, next_at = COALESCE(?, next_at)"
                f" WHERE id IN ({marks(len(delivery_ids))})", (next_at, *delivery_ids))

    async def list_deliveries(self, *, endpoint_id: str | None = None,
                              status: str | None = None, limit: int = 100) -> list[Delivery]:
        terms, params = [], []
        for term, value in (("d.endpoint_id = ?", endpoint_id), ("d.status = ?", status)):
            if value is not None:
                terms.append(term)
                params.append(value)
        where = "WHERE " + " AND ".join(terms) if terms else ""
        rows = await self._db.execute_fetchall(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events v"
            f" ON v.id = d.event_id {where} ORDER BY d.event_id DESC LIMIT ?", (*params, limit))
        return [_delivery(row) for row in rows]

    async def delivery_attempts(self, delivery_id: str) -> list[dict[str, Any]]:
        rows = await self._db.execute_fetchall(
            "SELECT number, at, code, latency_ms, error FROM webhook_attempts"
            " WHERE delivery_id = ? ORDER BY number", (delivery_id,))
        return [dict(row) for row in rows]

    async def replay_deliveries(self, now: float, *, delivery_id: str | None = None,
                                endpoint_id: str | None = None) -> int:
        """Queue again one delivery (any status), or every dead one of an endpoint: due now,
        its attempts counted afresh (the history stays)."""
        if delivery_id is not None:
            where, params = "id = ?", (delivery_id,)
        else:
            where, params = f"endpoint_id = ? AND status = '{DEAD}'", (endpoint_id,)
        async with self._transaction() as db:
            cursor = await db.execute(
                f"UPDATE webhook_deliveries SET status = '{PENDING}', attempts = 0, next_at = ?,"
                f" locked_until = NULL, delivered_at = NULL WHERE {where}", (now, *params))
        if delivery_id is not None and not cursor.rowcount:
            raise NotFound("delivery", delivery_id)
        return cursor.rowcount

    async def prune_outbox(self, delivered_before: float, dead_before: float,
                           limit: int = PRUNE_BATCH) -> int:
        """One batch of the outbox's pruning (retention): up to `limit` deliveries delivered
        before delivered_before, or dead and made before dead_before, with their attempts,
        and the events no delivery is left of. Returns how many deliveries went (0: done)."""
        async with self._transaction() as db:
            rows = await db.execute_fetchall(
                "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries"
                f" WHERE status = '{DELIVERED}' AND delivered_at < ? UNION ALL SELECT id FROM"
                f" webhook_deliveries WHERE status = '{DEAD}' AND created_at < ? LIMIT ?)"
                " RETURNING event_id", (delivered_before, dead_before, limit))
            events = sorted({row[0] for row in rows})
            if events:
                await db.execute(
                    f"DELETE FROM webhook_events WHERE id IN ({marks(len(events))}) AND NOT"
                    " EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id ="
                    " webhook_events.id)", events)
        return len(rows)
