"""What every service is built from (the store, the recordings, a clock, the edge's name) and
the two acts they share: writing the audit log and unmasking numbers on request."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from callengine.access import Permission, Principal, require
from callengine.recordings import RecordingVault
from callengine.storage import Store


@dataclass(frozen=True)
class Context:
    store: Store
    vault: RecordingVault | None = None  # recordings; without private keys, no playback
    clock: Callable[[], float] = time.time
    on_lead: Callable[[], None] = lambda: None  # tells the engine a lead is waiting
    channel: str = "api"  # which edge acts ("api", "cli"): the detail of an unmask entry

    async def audit(self, who: Principal, action: str, target: str, detail: str) -> None:
        await self.store.audit(who, action, target, detail, self.clock())

    async def unmask(self, who: Principal, wanted: bool, target: str) -> bool:
        """Numbers stay masked unless asked for by a role that may see them: audited."""
        if not wanted:
            return False
        require(who, Permission.UNMASK)
        await self.audit(who, "numbers.unmask", target, self.channel)
        return True


class Service:
    def __init__(self, context: Context):
        self.ctx = context
        self.store = context.store
