"""The live board: the calls in progress (each active attempt with its lead's masked number,
widget and progress) and each agent's availability; for whoever reads leads. Masked always;
reading it is not audited (nothing personal beyond masked numbers).

An agent is "disabled", else what the engine in this process has it doing ("on-call",
"ringing", "held" for a call ringing others first), else "paused", else what Asterisk says of
its endpoint ("offline": no registered phone; "busy-elsewhere": on a call the engine did not
make) or "free"; "unknown" where no engine runs beside the panel (a paused agent reads
"paused" there too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callengine.access import Permission, Principal, require
from callengine.errors import NotFound
from callengine.model import Agent
from callengine.services.base import Service

AGENT_STATES = ("free", "ringing", "on-call", "held", "paused", "offline", "busy-elsewhere",
                "disabled", "unknown")
_ENGINE_CALLS = ("ringing", "on-call", "held")
PROGRESS_STATES = ("ringing-agents", "whisper", "dialling-visitor", "recording-notice",
                   "connected", "ending")  # a call's progress as the board names it


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
        activity = self.ctx.agent_activity() if self.ctx.agent_activity else None
        agents = [{"name": a.name, "enabled": a.enabled, "paused": a.paused,
                   "state": agent_state(a, activity)}
                  for a in await self.store.list_agents()]
        return {"calls": calls, "agents": agents}


def agent_state(agent: Agent, activity: Mapping[str, str] | None) -> str:
    if not agent.enabled:
        return "disabled"
    doing = None if activity is None else activity.get(agent.endpoint, "free")
    if agent.paused and doing not in _ENGINE_CALLS:
        return "paused"
    return doing or "unknown"
