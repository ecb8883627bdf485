"""A lead's live progress, as the widget's event streams read it: the public state of many
leads at once (one query for all the streams of a process) and the identity of the client
asking, for the streams' per-client cap (the keyed hash the intake limits use, never the
address)."""

from __future__ import annotations

from typing import Any

from callengine.services.base import Service

# What a stream sends of a lead: services.views.lead_public_view without its id.
PROGRESS_FIELDS = ("status", "progress", "outcome", "scheduled_for")


class Progress(Service):
    def client(self, address: str | None) -> str | None:
        """The client's keyed hash (FieldCipher.client_hash: IPv6 by its /64); None: no IP."""
        return self.store.client_hash(address)

    async def states(self, leads: dict[str, str]) -> dict[str, dict[str, Any]]:
        """The progress of each lead id → its widget's id that is still there and still that
        widget's: {status, progress, outcome, scheduled_for}. A lead missing from the answer
        is gone (purged, erased)."""
        rows = await self.store.lead_statuses(list(leads))
        return {lead_id: {k: row[k] for k in PROGRESS_FIELDS}
                for lead_id, row in rows.items() if row["widget_id"] == leads.get(lead_id)}
