"""Several Asterisk nodes behind one Telephony port (docs/scale-out.md, "Several Asterisk nodes").

The engine asks for channels, bridges and playbacks by id; this port remembers which node each
id lives on and sends every request there:

- an agent's leg goes to a node where the agent's endpoint is online (agents belong to the
  node their phone registers with);
- the visitor's leg and the bridge go to the node of the agent who answered
  (`near=<that leg's channel id>`), through that node's own trunk: a call never spans nodes;
- a channel the dialplan hands over, or one found in a listing, lives where it was seen.

Events of all nodes come out as one stream, Connected/Disconnected/AsteriskShuttingDown naming
their node, and each endpoint's state merged over the nodes that are up (online on one node is
online). A node whose events stay lost for `down_after_s` is taken for down: NodeDown names the
channels it held, so their calls are closed with a cause, and its agents read offline until it
is back. No I/O of its own: it composes the nodes' own ports (one AriClient each in
production, fakes in tests).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Protocol

from callengine.telephony import (
    AsteriskShuttingDown,
    ChannelDestroyed,
    Connected,
    Disconnected,
    EndpointState,
    ExternalMedia,
    ExternalMediaChannel,
    Gone,
    NodeDown,
    PlaybackFinished,
    Telephony,
    TelephonyError,
    TelephonyEvent,
)

log = logging.getLogger(__name__)


class NodePort(Telephony, ExternalMedia, Protocol):
    """What one node offers: both ports (an AriClient)."""


# Engines name what they create "ce-…" (callengine.calls.ID_PREFIX); only those are looked up
# by id later without an event first (orphans, another engine's calls), so only those listed are
# remembered: the rest of a node's channels would pile up here, their ends never reported.
_OURS = "ce-"


def _ours(ids: Iterable[str]) -> list[str]:
    return [i for i in ids if i.startswith(_OURS)]


_STATE_RANK = {"online": 2, "offline": 1}  # merging: online anywhere beats offline beats unknown


class AsteriskNodes:
    """Telephony and ExternalMedia over several nodes, by name, in preference order (the first
    one up is asked when nothing else decides)."""

    def __init__(self, nodes: Mapping[str, NodePort], *, down_after_s: float = 20.0):
        if not nodes:
            raise ValueError("at least one Asterisk node")
        self._nodes = dict(nodes)
        self._down_after_s = down_after_s
        self._where: dict[str, str] = {}  # channel, bridge or playback id → node
        self._up: set[str] = set()
        self._stopping: set[str] = set()  # said it is shutting down: no new legs there
        self._down: set[str] = set()  # NodeDown told, until it connects again
        self._states: dict[str, dict[str, EndpointState]] = {name: {} for name in nodes}
        self._merged: dict[str, EndpointState] = {}  # as last told to the consumer

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._nodes)

    def node_of(self, resource_id: str) -> str | None:
        return self._where.get(resource_id)

    def up(self) -> frozenset[str]:
        return frozenset(self._up)

    # ---- routing ------------------------------------------------------------------------------

    def _home(self, resource_id: str) -> str:
        node = self._where.get(resource_id)
        if node is not None:
            return node
        if len(self._nodes) == 1:
            return next(iter(self._nodes))
        raise Gone(f"{resource_id} is on no Asterisk node this engine knows of")

    def _port(self, resource_id: str) -> NodePort:
        return self._nodes[self._home(resource_id)]

    def _preferred(self) -> str:
        return next((name for name in self._nodes
                     if name in self._up and name not in self._stopping), next(iter(self._nodes)))

    def _nodes_for_endpoint(self, endpoint: str) -> list[str]:
        """Where to ring an endpoint, best first: the nodes up where it is online, then those
        up that know it, then the first up."""
        ranked: list[str] = []
        for wanted in ("online", None):
            ranked += [name for name in self._nodes if name in self._up
                       and name not in self._stopping and name not in ranked
                       and (state := self._states[name].get(endpoint)) is not None
                       and wanted in (None, state.state)]
        return ranked or [self._preferred()]

    def _placed(self, resource_id: str, near: str | None, default: str) -> str:
        node = self._home(near) if near is not None else default
        self._where[resource_id] = node
        return node

    # ---- Telephony ----------------------------------------------------------------------------

    async def originate(self, endpoint: str, channel_id: str, *, app_args: list[str],
                        timeout: int, caller_id: str | None = None,
                        near: str | None = None) -> None:
        """An agent's leg goes to the best node for its endpoint, and to the next one where the
        node does not answer at all (going down, its events not lost yet); any other leg goes
        to the node of `near`."""
        candidates = self._nodes_for_endpoint(endpoint) if near is None else [self._home(near)]
        for node in candidates:
            self._where[channel_id] = node
            try:
                await self._nodes[node].originate(endpoint, channel_id, app_args=app_args,
                                                  timeout=timeout, caller_id=caller_id)
                return
            except TelephonyError as exc:
                self._where.pop(channel_id, None)
                if not exc.unavailable or node == candidates[-1]:
                    raise
                log.warning("Asterisk node %s unavailable for %s (%s); trying node %s",
                            node, channel_id, exc.reason, candidates[candidates.index(node) + 1])

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self._port(channel_id).hangup(channel_id, reason)

    async def play(self, channel_id: str, media: str, playback_id: str) -> None:
        self._placed(playback_id, channel_id, "")
        await self._port(channel_id).play(channel_id, media, playback_id)

    async def stop_playback(self, playback_id: str) -> None:
        await self._port(playback_id).stop_playback(playback_id)

    async def answer_channel(self, channel_id: str) -> None:
        await self._port(channel_id).answer_channel(channel_id)

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str
                                   ) -> None:
        await self._port(channel_id).continue_in_dialplan(channel_id, context, extension)

    async def ring(self, channel_id: str, on: bool) -> None:
        await self._port(channel_id).ring(channel_id, on)

    async def create_bridge(self, bridge_id: str, near: str | None = None) -> None:
        node = self._placed(bridge_id, near, self._preferred())
        await self._nodes[node].create_bridge(bridge_id)

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str], *,
                            timeout: float | None = None) -> int:
        return await self._port(bridge_id).add_to_bridge(bridge_id, channel_ids, timeout=timeout)

    async def destroy_bridge(self, bridge_id: str) -> None:
        port = self._port(bridge_id)
        self._where.pop(bridge_id, None)
        await port.destroy_bridge(bridge_id)

    async def channel_ids(self) -> dict[str, str]:
        """The channels of every node that is up (a node down has none to offer)."""
        found: dict[str, str] = {}
        for name in self._listed_nodes():
            channels = await self._nodes[name].channel_ids()
            self._where.update(dict.fromkeys(_ours(channels), name))
            found.update(channels)
        return found

    async def bridge_ids(self) -> list[str]:
        found: list[str] = []
        for name in self._listed_nodes():
            bridges = await self._nodes[name].bridge_ids()
            self._where.update(dict.fromkeys(_ours(bridges), name))
            found += bridges
        return found

    async def endpoint_states(self) -> list[EndpointState]:
        for name in self._listed_nodes():
            self._states[name] = {s.endpoint: s for s in await self._nodes[name].endpoint_states()}
        self._merged = self._merge()
        return list(self._merged.values())

    def _listed_nodes(self) -> list[str]:
        # With one node, ask it even while its events are lost: its answer (or error) is the news.
        return list(self._nodes) if len(self._nodes) == 1 else [n for n in self._nodes
                                                                 if n in self._up]

    # ---- ExternalMedia ------------------------------------------------------------------------

    async def external_media(self, channel_id: str, external_host: str, format: str,
                             near: str | None = None) -> ExternalMediaChannel:
        node = self._placed(channel_id, near, self._preferred())
        return await self._nodes[node].external_media(channel_id, external_host, format)

    async def channel_var(self, channel_id: str, name: str) -> str:
        return await self._port(channel_id).channel_var(channel_id, name)

    # ---- events -------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[TelephonyEvent]:
        """Every node's events as one stream. Owns one pump task per node (cancelled when the
        stream is closed; a pump's failure is raised here) and a down timer per node whose
        events are lost. Not a TaskGroup: a generator must not yield inside one."""
        queue: asyncio.Queue[tuple[str, TelephonyEvent | Exception | None]] = asyncio.Queue()
        timers: dict[str, asyncio.TimerHandle] = {}
        loop = asyncio.get_running_loop()

        async def pump(name: str, port: NodePort) -> None:
            try:
                async for event in port.events():
                    await queue.put((name, event))
            except Exception as exc:
                await queue.put((name, exc))

        pumps = [asyncio.create_task(pump(name, port), name=f"ari-events-{name}")
                 for name, port in self._nodes.items()]
        try:
            while True:
                name, event = await queue.get()
                match event:
                    case Exception():
                        raise event
                    case None:  # its down timer fired
                        timers.pop(name, None)
                        if name not in self._up:
                            for out in self._node_down(name):
                                yield out
                    case Connected():
                        if (timer := timers.pop(name, None)) is not None:
                            timer.cancel()
                        self._up.add(name)
                        self._stopping.discard(name)
                        self._down.discard(name)
                        log.info("Asterisk node %s connected", name)
                        yield Connected(event.asterisk_started, node=name)
                    case Disconnected():
                        self._up.discard(name)
                        if name not in timers and name not in self._down:
                            timers[name] = loop.call_later(
                                self._down_after_s, queue.put_nowait, (name, None))
                        yield Disconnected(event.reason, node=name)
                        for out in self._changed_endpoints():  # its agents: not here now
                            yield out
                    case AsteriskShuttingDown():
                        self._stopping.add(name)
                        reason = (f"Asterisk node {name} shut down" if len(self._nodes) > 1
                                  else event.reason)
                        yield AsteriskShuttingDown(event.channel_id, node=name, reason=reason)
                    case EndpointState():
                        self._states[name][event.endpoint] = event
                        for out in self._changed_endpoints():
                            yield out
                    case _:
                        self._track(name, event)
                        yield event
        finally:
            for timer in timers.values():
                timer.cancel()
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    def _track(self, name: str, event: TelephonyEvent) -> None:
        match event:
            case ChannelDestroyed(channel_id=cid):
                self._where.pop(cid, None)
            case PlaybackFinished(playback_id=pid):
                self._where.pop(pid, None)
            case _:
                cid = getattr(event, "channel_id", None)
                if cid is not None:
                    self._where.setdefault(cid, name)

    def _node_down(self, name: str) -> list[TelephonyEvent]:
        reason = f"Asterisk node {name} down"
        self._down.add(name)
        held = tuple(rid for rid, node in self._where.items() if node == name)
        for rid in held:
            del self._where[rid]
        log.error("%s: no events for %.0f s; closing its %d channel(s), its agents offline",
                  reason, self._down_after_s, len(held))
        self._states[name] = {}
        return [NodeDown(name, held, reason), *self._changed_endpoints()]

    def _merge(self) -> dict[str, EndpointState]:
        merged: dict[str, EndpointState] = {}
        for name in self._nodes:
            if len(self._nodes) > 1 and name not in self._up:
                continue
            for endpoint, state in self._states[name].items():
                seen = merged.get(endpoint)
                if seen is None:
                    merged[endpoint] = state
                    continue
                best = max(seen.state, state.state, key=lambda s: _STATE_RANK.get(s, 0))
                merged[endpoint] = EndpointState(endpoint, best,
                                                 seen.channel_ids + state.channel_ids)
        return merged

    def _changed_endpoints(self) -> list[EndpointState]:
        merged = self._merge()
        changed = [state for endpoint, state in merged.items()
                   if self._merged.get(endpoint) != state]
        changed += [EndpointState(endpoint, "offline") for endpoint in self._merged
                    if endpoint not in merged]
        self._merged = merged
        return changed


__all__ = ["AsteriskNodes", "NodePort"]
