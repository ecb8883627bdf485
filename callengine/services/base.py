"""What every service is built from (the store, the recordings, a clock, the edge's name) and
the acts they share: writing the audit log, auditing a token's use, unmasking numbers."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callengine.access import Permission, Principal, require
from callengine.recordings import RecordingVault
from callengine.services.challenges import ChallengeBook
from callengine.storage import Store


@dataclass(frozen=True)
class LoginPolicy:
    """How long sessions last and when logins are locked out ([panel] in the configuration)."""

    idle_timeout_s: float = 30 * 60
    absolute_timeout_s: float = 12 * 3600
    pending_timeout_s: float = 5 * 60  # between the password and the second factor
    max_failures: int = 5  # per account name …
    client_max_failures: int = 20  # … and per client address
    failure_window_s: float = 15 * 60
    lockout_s: float = 15 * 60
    touch_every_s: float = 15.0  # last-seen is written at most this often per session

    @classmethod
    def of(cls, panel: Any) -> LoginPolicy:
        """From the configuration's [panel] (config.PanelConfig)."""
        return cls(idle_timeout_s=panel.idle_timeout_s,
                   absolute_timeout_s=panel.absolute_timeout_s,
                   max_failures=panel.max_failures,
                   client_max_failures=panel.client_max_failures,
                   failure_window_s=panel.lockout_s, lockout_s=panel.lockout_s)


@dataclass(frozen=True)
class Context:
    store: Store
    vault: RecordingVault | None = None  # recordings; without private keys, no playback
    clock: Callable[[], float] = time.time
    on_lead: Callable[[], None] = lambda: None  # tells the engine a lead is waiting
    channel: str = "api"  # which edge acts ("api", "cli"): the detail of an unmask entry
    challenges: ChallengeBook = field(default_factory=lambda: ChallengeBook(os.urandom(32)))
    login_policy: LoginPolicy = field(default_factory=lambda: LoginPolicy())  # the panel's
    # What the agents of the engine in this process are doing (Engine.agent_activity);
    # None where no engine runs (the CLI): the board then says it does not know.
    agent_activity: Callable[[], Mapping[str, str]] | None = None

    async def audit(self, who: Principal, action: str, target: str, detail: str) -> None:
        await self.store.audit(who, action, target, detail, self.clock())

    async def token_use(self, who: Principal, what: str, target: str) -> None:
        """A request of the HTTP API that reads personal data: one entry per use, naming the
        token (its name is the principal's actor; the token itself is never kept). The CLI's
        reads are not token uses (its unmasks, exports and playbacks are audited as such)."""
        if self.channel == "api":
            await self.audit(who, "token.use", target, what)

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
