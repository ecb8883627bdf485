"""Store's reports: a widget's leads with their last attempt (data subjects are in
queries/subjects.py)."""

from __future__ import annotations

from typing import Any

from callengine.model import Lead
from callengine.storage.base import StoreBase
from callengine.storage.rows import to_lead


class ReportQueries(StoreBase):
    async def report_rows(self, widget_id: str, start: float, end: float
                          ) -> list[tuple[Lead | None, dict[str, Any]]]:
        """Every lead of the widget created in [start, end), with its last attempt and whether
        it was recorded; purged and erased leads come from their tombstones (no Lead)."""
        await self._settled()
        rows: list[tuple[Lead | None, dict[str, Any]]] = []
        leads = await self._fetch(
            "SELECT l.*, a.agent AS a_agent, a.agent_ring_s AS a_agent_ring_s,"
            " a.visitor_ring_s AS a_visitor_ring_s, a.talk_s AS a_talk_s, a.q850 AS a_q850,"
            " a.notice_played AS a_notice_played,"
            " (SELECT COUNT(*) FROM recordings r WHERE r.lead_id = l.id) AS a_recordings"
            " FROM leads l LEFT JOIN attempts a ON a.lead_id = l.id AND a.number = l.attempts"
            " WHERE l.widget_id = ? AND l.created_at >= ? AND l.created_at < ?"
            " ORDER BY l.created_at",
            (widget_id, start, end),
        )
        ciphers = await self._rows_ciphers(leads)
        for row in leads:
            extra = {key[2:]: row[key] for key in row.keys() if key.startswith("a_")}
            rows.append((to_lead(row, ciphers), extra))
        rows += [(None, dict(row)) for row in await self._fetch(
            "SELECT * FROM lead_tombstones WHERE widget_id = ? AND created_at >= ?"
            " AND created_at < ? ORDER BY created_at",
            (widget_id, start, end),
        )]
        return rows
