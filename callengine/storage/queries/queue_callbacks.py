"""Store's queue callbacks: a queue lead's place in line and its consent evidence (the lead
itself is written by the intake journal like any other)."""

from __future__ import annotations

import json
from typing import Any

from callengine.storage.base import StoreBase
from callengine.storage.sql import marks


class QueueCallbackQueries(StoreBase):
    async def add_queue_callback(self, lead_id: str, queue: str, joined_at: float,
                                 evidence: dict[str, Any]) -> None:
        await self._settled()  # the lead, journaled, is in the store before its row refers to it
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO queue_callbacks (lead_id, queue, joined_at, evidence)"
                " VALUES (?, ?, ?, ?)", (lead_id, queue, joined_at, json.dumps(evidence)))

    async def queue_callbacks(self, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Each of these leads that is a queue callback → {queue, joined_at, evidence}."""
        if not lead_ids:
            return {}
        rows = await self._db.execute_fetchall(
            "SELECT lead_id, queue, joined_at, evidence FROM queue_callbacks"
            f" WHERE lead_id IN ({marks(len(lead_ids))})", tuple(lead_ids))
        return {row[0]: {"queue": row[1], "joined_at": row[2],
                         "evidence": json.loads(row[3])} for row in rows}
