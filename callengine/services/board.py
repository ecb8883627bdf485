"""The live board: the calls in progress (each active attempt with its lead's masked number,
widget and progress) and the agents with whether they are enabled; for whoever reads leads.
Masked always; reading it is not audited (nothing personal beyond masked numbers)."""

from __future__ import annotations

from typing import Any

from callengine.access import Permission, Principal, require
from callengine.errors import NotFound
from callengine.services.base import Service


class Board(Service):
    async def snapshot(self, who: Principal) -> dict[str, Any]:
        require(who, Permission.READ_LEADS)
        calls = []
        for attempt in await self.store.active_attempts():
            try:
                lead = await self.store.get_lead(attempt.lead_id)
            except NotFound:  # purged meanwhile
                continue
            calls.append({"lead": lead.id, "widget": lead.widget_id, "phone": lead.phone_masked,
                          "attempt": attempt.number, "progress": lead.progress,
                          "connected": attempt.connected, "started_at": attempt.started_at})
        agents = [{"name": a.name, "enabled": a.enabled} for a in await self.store.list_agents()]
        return {"calls": calls, "agents": agents}
