"""The dispatcher's round: which due leads are called now, by which agents in which order.

One round reads the due leads and their widgets' groups, gives each lead the free agents of its
group (an agent is free when enabled, not paused, held by no call of this engine and neither
offline nor on another's call in Asterisk: callengine.presence) in the order its
strategy tries them (callengine.ringorder, with the rotations and last calls the store keeps),
starts their attempts in one commit (a round-robin group's rotation with them) and hands each
call to the engine. The engine owns the calls; the set of agents they hold is shared.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import replace

from callengine import flow, ringorder
from callengine.config import DialingConfig
from callengine.model import Attempt, Group, Lead, Widget
from callengine.numbers import VisitorNumber, dial_string_digits
from callengine.presence import Presence
from callengine.queue_callback import QUEUE_CALLBACK_CONTEXT
from callengine.ringorder import RingState
from callengine.storage import Store

log = logging.getLogger(__name__)

# The engine's: start this lead's call with this attempt, widget, group and agents (in order).
StartCall = Callable[[Lead, Attempt, Widget, Group, tuple[str, ...]], None]


class Dispatcher:
    def __init__(self, store: Store, dialing: DialingConfig, clock: Callable[[], float],
                 reserved: set[str], rng: random.Random, presence: Presence,
                 lease_owner: str | None = None):
        self._store = store
        self._dialing = dialing
        self._clock = clock
        self._reserved = reserved  # agent endpoints held by a call (the engine's set)
        self._rng = rng
        self._presence = presence  # offline or busy on another's call: not rung
        self._lease_owner = lease_owner  # the engine's lease: no attempt starts without it

    async def round(self, active_calls: int, start_call: StartCall) -> float:
        """One round: a call for each due lead there is room and a free agent for, their
        attempts started in one commit. Returns how long to wait for the next round."""
        ceiling = self._dialing.poll_interval_s
        room = self._dialing.max_concurrent_calls - active_calls
        if room <= 0:
            return ceiling  # a call's end wakes the dispatcher
        now = self._clock()
        limit = room * 4
        due = await self._store.due_leads(now, limit=limit)
        plans = await self._store.dialling_plans(lead.widget_id for lead in due)
        state = await self._ring_state(list(plans.values()))
        queued = await self._store.queue_callbacks(
            [lead.id for lead in due if plans[lead.widget_id][0].settings.queue is not None])
        planned: list[tuple[Lead, Widget, Group, tuple[str, ...]]] = []
        rotations: dict[str, tuple[str, str]] = {}
        try:
            for lead in due:
                if len(planned) >= room:
                    break
                widget, group = plans[lead.widget_id]
                if widget.settings.queue is not None:  # the queue's members answer, not a group
                    placed = queue_placeholder(lead, widget, group, queued.get(lead.id), now)
                    if placed is None:
                        continue
                    group, order = placed
                    free = order
                    planned.append((lead, widget, group, order))
                    continue
                free = tuple(
                    a.endpoint for a in group.agents
                    if a.enabled and not a.paused and a.endpoint not in self._reserved
                    and self._presence.can_ring(a.endpoint)
                )
                if not free:
                    continue  # stays queued until an agent is free
                order = self._order(group, free, state)
                rotation = ringorder.next_rotation(group.strategy, order)
                if rotation is not None:
                    rotations[lead.id] = (group.name, rotation)
                    state = RingState({**state.rotations, group.name: rotation},
                                      state.last_called)
                self._reserved.update(free)  # the next leads of the round must not take them
                planned.append((lead, widget, group, order))
            attempts = await self._store.start_attempts(
                [lead.id for lead, *_ in planned], self._clock(),
                progress=flow.FIRST_PROGRESS.value, rotations=rotations,
                engine=self._dialing.engine_id,
                lease_owner=self._lease_owner) if planned else {}
        except BaseException:
            for *_, free in planned:
                self._reserved.difference_update(free)
            raise
        for lead, widget, group, order in planned:
            attempt = attempts.get(lead.id)
            if attempt is None:  # not queued any more (Conflict)
                self._reserved.difference_update(order)
                continue
            start_call(lead, attempt, widget, group, order)
        if len(due) == limit and attempts:
            return 0  # more may be due than this round looked at
        next_at = await self._store.next_due_at(after=now)
        if next_at is None:
            return ceiling
        return max(0.0, min(ceiling, next_at - self._clock()))

    async def _ring_state(self, plans: list[tuple[Widget, Group]]) -> RingState:
        """The store's rotations and last calls, read only for groups whose order needs them."""
        groups = {group.name: group for _, group in plans}.values()
        rotating = [g.name for g in groups if g.strategy in ringorder.ROTATING]
        endpoints = [a.endpoint for g in groups if g.strategy in ringorder.BY_LAST_CALL
                     for a in g.agents]
        if not rotating and not endpoints:
            return RingState()
        return await self._store.ring_state(rotating, endpoints)

    def _order(self, group: Group, free: tuple[str, ...], state: RingState
               ) -> tuple[str, ...]:
        return ringorder.ring_order(
            group.strategy, [a.endpoint for a in group.agents], free,
            rotation=state.rotations.get(group.name), last_called=state.last_called,
            rng=self._rng)


# How long a queue lead may wait for its place-in-line row (written just after the lead):
# after this, it is placed by its creation time (the handler died between the two writes).
QUEUE_ROW_GRACE_S = 30.0


def queue_placeholder(lead: Lead, widget: Widget, group: Group, callback: dict | None,
                      now: float) -> tuple[Group, tuple[str, ...]] | None:
    """A queue callback's "agent": a Local channel into the dialplan that waits in the queue
    in the caller's old place (by the time they had joined) until a member answers, for up to
    the widget's queue_wait_s; None while its place-in-line row is still being written."""
    if callback is None and now - lead.created_at < QUEUE_ROW_GRACE_S:
        return None
    joined = lead.created_at if callback is None else callback["joined_at"]
    endpoint = f"Local/{joined:.3f}-{widget.settings.queue}@{QUEUE_CALLBACK_CONTEXT}/n"
    waiting = replace(group, strategy=flow.Strategy.SEQUENTIAL, accept_digit=None,
                      ring_timeout=widget.settings.queue_wait_s)
    return waiting, (endpoint,)


def call_plan(lead: Lead, widget: Widget, group: Group, agents: tuple[str, ...], *,
              can_record: bool) -> flow.CallPlan:
    """The flow's plan of one attempt: `agents` in the order they are tried."""
    wants_recording = widget.settings.should_record(lead.consent.recording)
    if wants_recording and not can_record:
        log.warning("[lead %s] widget %s records, but no recording key is configured:"
                    " not recording", lead.id, widget.id)
    return flow.CallPlan(
        agent_endpoints=agents,
        strategy=group.strategy,
        agent_ring_timeout=group.ring_timeout,
        visitor_endpoint=widget.settings.visitor_endpoint.format(
            number=dial_string_digits(
                VisitorNumber(lead.phone_e164, lead.phone_region, lead.phone_kind),
                widget.settings.number_format,
            )
        ),
        visitor_ring_timeout=widget.settings.visitor_ring_timeout,
        caller_id=widget.settings.caller_id,
        whisper=widget.settings.whisper,
        record=wants_recording and can_record,
        recording_notice=widget.settings.recording_notice,
        accept_digit=group.accept_digit,
        accept_timeout=group.accept_timeout,
    )
