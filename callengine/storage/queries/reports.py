"""Store's reports and data-subject lookups: a widget's leads with their last attempt, the leads
of one number, and scrubbing the logs after an erasure."""

from __future__ import annotations

from typing import Any

from callengine.model import Lead
from callengine.storage.base import StoreBase
from callengine.storage.rows import to_lead
from callengine.storage.schema import LEAD_DAY


class ReportQueries(StoreBase):
    async def report_rows(self, widget_id: str, start: float, end: float
                          ) -> list[tuple[Lead | None, dict[str, Any]]]:
        """Every lead of the widget created in [start, end), with its last attempt and whether
        it was recorded; purged and erased leads come from their tombstones (no Lead)."""
        await self._settled()
        rows: list[tuple[Lead | None, dict[str, Any]]] = []
        async with self._db.execute(
            "SELECT l.*, a.agent AS a_agent, a.agent_ring_s AS a_agent_ring_s,"
            " a.visitor_ring_s AS a_visitor_ring_s, a.talk_s AS a_talk_s, a.q850 AS a_q850,"
            " (SELECT COUNT(*) FROM recordings r WHERE r.lead_id = l.id) AS a_recordings"
            " FROM leads l LEFT JOIN attempts a ON a.lead_id = l.id AND a.number = l.attempts"
            " WHERE l.widget_id = ? AND l.created_at >= ? AND l.created_at < ?"
            " ORDER BY l.created_at",
            (widget_id, start, end),
        ) as cursor:
            async for row in cursor:
                extra = {key[2:]: row[key] for key in row.keys() if key.startswith("a_")}
                rows.append((to_lead(row, self._cipher), extra))
        async with self._db.execute(
            "SELECT * FROM lead_tombstones WHERE widget_id = ? AND created_at >= ?"
            " AND created_at < ? ORDER BY created_at",
            (widget_id, start, end),
        ) as cursor:
            rows += [(None, dict(row)) async for row in cursor]
        return rows

    # ---- data subjects ---------------------------------------------------------------------

    async def leads_for_number(self, e164: str) -> list[Lead]:
        await self._settled()
        async with self._db.execute(
            # Every day of leads_day_phone: the index alone says which rows hold the number.
            f"SELECT * FROM leads WHERE {LEAD_DAY} >= ? AND phone_hash = ? ORDER BY created_at",
            (-(2**62), self._cipher.number_hash(e164)),
        ) as cursor:
            return [to_lead(row, self._cipher) async for row in cursor]

    async def forget_deleted_pages(self) -> None:
        """After an erasure: fold the WAL back into the database file and truncate it, so old
        page images holding the erased rows don't linger in the log (secure_delete zeroes the
        pages in the database itself)."""
        await self._settled()
        await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert self._journal is not None
        await self._journal.execute("PRAGMA wal_checkpoint(TRUNCATE)")
