"""An engine's lease in the store, and taking over from an engine that stopped.

Several engines share one store (and may share an Asterisk). Each holds the lease
`engine:<engine id>` (storage.engine_lease) while it runs, renewed every third of
`dialing.engine_lease_s`, and starts no attempt without it (start_attempts checks the lease in
the same write: fencing). An engine whose lease runs out while it has attempts open is taken
for dead: a live engine takes its lease, hangs up its channels and bridges (ce-<its id>-…),
closes its attempts as interrupted (their leads retry as after a restart) and lets the lease
go. An engine that was only cut off finds its lease gone at its next renewal and stops
(LeaseLost): from then on its calls are the other's. docs/scale-out.md has the whole story.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from callengine.calls import engine_prefix
from callengine.config import DialingConfig
from callengine.errors import LeaseLost
from callengine.model import Attempt
from callengine.storage import Store, engine_lease
from callengine.telephony import Telephony, quietly

log = logging.getLogger(__name__)

CloseAttempts = Callable[[list[Attempt], str], Awaitable[None]]


class EngineLease:
    def __init__(self, store: Store, ari: Telephony, dialing: DialingConfig,
                 clock: Callable[[], float], ready: asyncio.Event, close_attempts: CloseAttempts):
        self._store, self._ari, self._clock = store, ari, clock
        self._engine_id, self._ttl = dialing.engine_id, dialing.engine_lease_s
        self._ready = ready  # the engine's: connected to Asterisk and reconciled
        self._close_attempts = close_attempts
        self._name = engine_lease(self._engine_id)
        # This run's own: a second process with the same engine id, or this one restarted,
        # waits for the lease to be released or to run out.
        self.owner = uuid.uuid4().hex

    async def take(self) -> None:
        """Wait for this engine id's lease. Held by another process, it is one running with
        the same id (a mistake: the two would hang up each other's calls) or one that stopped
        less than a lease ago."""
        waited = False
        while not await self._store.acquire_lease(self._name, self.owner, self._clock(),
                                                  self._ttl):
            if not waited:
                log.warning("engine %s: its lease is held by another process (one running with "
                            "this engine id, or one stopped less than %g s ago): waiting for it",
                            self._engine_id, self._ttl)
                waited = True
            await asyncio.sleep(self._ttl / 3)
        if waited:
            log.info("engine %s: lease taken", self._engine_id)

    async def release(self) -> None:
        await self._store.release_lease(self._name, self.owner)

    async def keep(self) -> None:
        """Forever: renew the lease every third of it (LeaseLost once it was taken: the engine
        stops) and take over from every engine whose lease ran out with calls open."""
        every = self._ttl / 3
        while True:
            await asyncio.sleep(every)
            try:
                held = await self._store.renew_lease(self._name, self.owner, self._clock(),
                                                     self._ttl)
                if held and self._ready.is_set():  # (their channels can be hung up)
                    await self._take_over_stopped()
            except Exception as exc:  # the store busy or away: the next round tries again
                log.warning("engine lease round failed (next in %g s): %s", every, exc)
                continue
            if not held:
                raise LeaseLost(f"engine {self._engine_id} lost its lease")

    async def _take_over_stopped(self) -> None:
        for engine_id in await self._store.engines_to_take_over(self._engine_id, self._clock()):
            lease = engine_lease(engine_id)
            # Holding its lease: no other engine takes over at the same time, and the stopped
            # one, if only cut off, finds its lease gone and dials no more (start_attempts).
            if not await self._store.acquire_lease(lease, self.owner, self._clock(), self._ttl):
                continue
            try:
                await self._take_over(engine_id)
            finally:
                await self._store.release_lease(lease, self.owner)

    async def _take_over(self, engine_id: str) -> None:
        """Hang up what engine_id left on Asterisk first (its agents are not rung twice at
        once), then close its attempts."""
        prefix = engine_prefix(engine_id)
        channels = [c for c in await self._ari.channel_ids() if c.startswith(prefix)]
        for channel_id in channels:
            await quietly(self._ari.hangup(channel_id))
        bridges = [b for b in await self._ari.bridge_ids() if b.startswith(prefix)]
        for bridge_id in bridges:
            await quietly(self._ari.destroy_bridge(bridge_id))
        attempts = [a for a in await self._store.active_attempts(engine_id)
                    if a.engine == engine_id]
        log.warning("engine %s stopped with %d call(s) open (its lease ran out): taking them "
                    "over; %d channel(s) hung up, %d bridge(s) destroyed", engine_id,
                    len(attempts), len(channels), len(bridges))
        await self._close_attempts(attempts, f"interrupted: engine {engine_id} stopped")
