"""Agents' presence: what the telephone system says of each agent's endpoint, kept as a view
the dispatcher asks whether an agent can be rung (pure: no I/O, no asyncio).

The view is fed EndpointState reports (callengine.telephony): the whole list after every
(re)connect (`rebuild`: the system does not replay what was missed) and each change as it comes
(`update`). An endpoint is
  offline         the system has no reachable contact for it (a phone not registered, or a
                  qualified contact that stopped answering): it is not rung;
  busy-elsewhere  online, with a channel that is not one of the engine's own (its ids start with
                  the engine's prefix): on a call someone else made or took; not rung;
  free            online and on none but the engine's channels (those the engine counts itself);
  unknown         not reported at all (another technology, or an endpoint the system does not
                  have): rung, and the system says why if that fails, as before presence.
"""

from __future__ import annotations

from collections.abc import Iterable

from callengine.telephony import EndpointState

OFFLINE = "offline"
BUSY_ELSEWHERE = "busy-elsewhere"
FREE = "free"
UNKNOWN = "unknown"

_ONLINE_STATES = {"online", "unknown"}  # ARI's "unknown": the system can't say; don't skip


class Presence:
    def __init__(self, own_prefix: str):
        self._own_prefix = own_prefix  # the engine's channel ids start with it
        self._endpoints: dict[str, EndpointState] = {}

    def rebuild(self, states: Iterable[EndpointState]) -> None:
        """The whole view again, from the system's list (after a (re)connect)."""
        self._endpoints = {state.endpoint: state for state in states}

    def update(self, state: EndpointState) -> bool:
        """One endpoint's new state; True when it can be rung now and could not before (a
        lead may be waiting for it)."""
        before = self.state(state.endpoint)
        self._endpoints[state.endpoint] = state
        return before in (OFFLINE, BUSY_ELSEWHERE) and self.state(state.endpoint) == FREE

    def state(self, endpoint: str) -> str:
        reported = self._endpoints.get(endpoint)
        if reported is None:
            return UNKNOWN
        if reported.state not in _ONLINE_STATES:
            return OFFLINE
        if any(not c.startswith(self._own_prefix) for c in reported.channel_ids):
            return BUSY_ELSEWHERE
        return FREE

    def can_ring(self, endpoint: str) -> bool:
        return self.state(endpoint) in (FREE, UNKNOWN)

    def unavailable(self) -> dict[str, str]:
        """Each reported endpoint that can't be rung now → why (OFFLINE, BUSY_ELSEWHERE)."""
        return {endpoint: why for endpoint in self._endpoints
                if (why := self.state(endpoint)) in (OFFLINE, BUSY_ELSEWHERE)}


__all__ = ["BUSY_ELSEWHERE", "FREE", "OFFLINE", "UNKNOWN", "Presence"]
