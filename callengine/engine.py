"""The driver: runs one CallFlow per attempt of the due leads its dispatcher picks
(callengine.dispatch), feeds it telephony events and executes its commands through the
Telephony port (callengine.telephony), persisting every milestone. It knows no wire format: the composition root hands it an implementation.

Ownership: `Engine.run()` owns one TaskGroup holding the event pump, the dispatcher and one task
per active call. Routing: we choose every channel, bridge and playback id ("ce-<engine id>-" +
uuid), and register it before asking Asterisk for it, so no event can arrive for an id we don't
know yet; of what is left after a reconnect, only what carries this engine's id is hung up.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping

from callengine import flow, policy
from callengine.calls import ID_PREFIX, ActiveCall, CallLog, call_ids, engine_prefix, new_id
from callengine.config import DialingConfig
from callengine.dispatch import Dispatcher, call_plan
from callengine.errors import AttemptClosed, LeaseLost
from callengine.inbound import InboundChannels, InboundHandler
from callengine.model import Attempt, Group, Lead, Widget
from callengine.presence import Presence
from callengine.recordings import RecordingSetup, close_interrupted_recordings
from callengine.storage import Store
from callengine.takeover import EngineLease
from callengine.telephony import (
    AsteriskShuttingDown,
    ChannelDestroyed,
    ChannelEnteredApp,
    ChannelRinging,
    Connected,
    DigitPressed,
    Disconnected,
    EndpointState,
    Gone,
    NodeDown,
    PlaybackFinished,
    Telephony,
    TelephonyError,
    quietly,
)

log = logging.getLogger(__name__)

class Engine:
    def __init__(
        self,
        store: Store,
        ari: Telephony,
        dialing: DialingConfig,
        *,
        recording: RecordingSetup | None = None,
        clock: Callable[[], float] = time.time,
        on_finished: Callable[[flow.Result], None] = lambda result: None,  # (metrics)
        rng: random.Random | None = None,  # the random strategy's order (seeded in tests)
        inbound: Mapping[str, InboundHandler] | None = None,  # purpose → handler (inbound.py)
    ):
        self._recording, self._on_finished = recording, on_finished
        self._store = store
        self._ari = ari
        self._dialing = dialing
        self._clock = clock
        self._calls: dict[str, ActiveCall] = {}  # attempt id → call
        self._channels: dict[str, tuple[ActiveCall, str]] = {}  # channel id → (call, leg)
        self._playbacks: dict[str, tuple[ActiveCall, str]] = {}
        self._inbound = InboundChannels(ari, inbound or {})
        self._reserved: set[str] = set()  # agent endpoints held by a call
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()  # events connected and reconciled: safe to dial
        self._asterisk_started: dict[str, str] = {}  # node → its startup time
        self._connected: set[str] = set()  # nodes whose events come in (callengine.nodes)
        self._tasks: asyncio.TaskGroup | None = None
        self._prefix = engine_prefix(dialing.engine_id)  # its channels' and bridges' ids
        # its lease in the store, renewed while it runs; it takes over from stopped engines
        self._lease = EngineLease(store, ari, dialing, clock, self._ready, self._close_attempts)
        # agents' endpoints as Asterisk reports them (another engine's call makes one busy)
        self.presence = Presence(self._prefix)
        self._dispatcher = Dispatcher(store, dialing, clock, self._reserved,
                                      rng or random.Random(), self.presence, self._lease.owner)

    # ---- public ---------------------------------------------------------------------------

    def wake(self) -> None:
        """A lead was queued: look at the queue now rather than at the next poll."""
        self._wake.set()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    @property
    def ready(self) -> asyncio.Event:
        return self._ready

    def agent_activity(self) -> dict[str, str]:
        """What each agent endpoint this engine holds is doing (the panel's live board):
        "on-call" (answered), "ringing" (its leg is being dialled or rings) or "held" (kept
        for a call that rings the others first); else "offline" or "busy-elsewhere" as Asterisk
        reports it (callengine.presence). An endpoint not named is free here."""
        activity: dict[str, str] = {}
        for call in self._calls.values():
            for index, endpoint in enumerate(call.flow.plan.agent_endpoints):
                leg = flow.agent_leg(index)
                if endpoint not in call.held:
                    continue
                if call.flow.agent == leg:
                    activity[endpoint] = "on-call"
                elif leg in call.flow.live:
                    activity[endpoint] = "ringing"
                else:
                    activity[endpoint] = "held"
        return {**self.presence.unavailable(), **activity}

    async def run(self) -> None:
        await self._lease.take()
        try:
            # Recordings first, as when a call ends: once a lead reads closed, its recording is.
            await self._close_attempts(await self._store.active_attempts(self._dialing.engine_id),
                                       "interrupted: the engine restarted")
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                tasks.create_task(self._pump_events(), name="ari-events")
                tasks.create_task(self._dispatch_forever(), name="dispatcher")
                tasks.create_task(self._lease.keep(), name="engine-lease")
                if self._recording is not None and self._recording.watchdog is not None:
                    tasks.create_task(self._recording.watchdog(), name="recording-watchdog")
        except* LeaseLost:
            log.error("engine %s lost its lease (another engine took its calls over, or another "
                      "process runs with this engine id): stopping, no more calls from here",
                      self._dialing.engine_id)
            raise
        finally:
            await self._lease.release()

    # ---- recovery -------------------------------------------------------------------------

    async def _close_attempts(self, attempts: list[Attempt], cause: str) -> None:
        """Attempts still 'active' in the store whose engine died mid-call (this one before its
        restart, or another that stopped): their recordings marked incomplete, then each
        attempt closed and its lead retried or closed. Their channels are hung up as orphans
        (_reconcile after a restart; EngineLease before this, for another engine's)."""
        if self._recording is not None:
            await close_interrupted_recordings(self._store, self._recording.vault, self._clock,
                                               [attempt.id for attempt in attempts])
        for attempt in attempts:
            lead = await self._store.get_lead(attempt.lead_id)
            widget = await self._store.get_widget(lead.widget_id)
            result = flow.Result(flow.Outcome.FAILED, cause=cause,
                                 retryable=not attempt.connected, connected=attempt.connected)
            await self._finish(lead, attempt, widget, result, CallLog(log, call_ids(lead, attempt)))

    async def _reconcile(self, asterisk_started: str, node: str) -> None:
        """After every (re)connect: Asterisk does not replay missed events, so compare (the
        channels of every node up; a node that restarted took only its own calls' legs)."""
        channels = await self._ari.channel_ids()
        restarted = self._asterisk_started.get(node) not in (None, asterisk_started)
        self._asterisk_started[node] = asterisk_started
        now = self._clock()
        for call in list(self._calls.values()):
            gone = frozenset(
                leg for leg in call.created
                if leg in call.flow.live and call.legs.get(leg) not in channels
            )
            if restarted and gone:
                call.log.warning("Asterisk restarted during the call")
                call.events.put_nowait(flow.Interrupted(now, "Asterisk restarted", gone))
                continue
            if gone and call.flow.state is not flow.State.CONNECTED:
                # Why a ringing leg vanished is unknowable now (timeout? answered while our
                # app was unregistered, which makes Asterisk hang it up?): try again later.
                call.log.warning("legs %s vanished while events were lost", ", ".join(gone))
                call.events.put_nowait(flow.Interrupted(now, "ARI events lost", gone))
                continue
            for leg in gone:  # a hangup during the talk: the call ended as calls do
                call.log.info("leg %s hung up while events were lost", leg)
                call.events.put_nowait(flow.LegGone(now, leg, 0, "hung up while disconnected"))
            for leg, state in ((leg, channels.get(cid)) for leg, cid in call.legs.items()):
                flow_leg = call.flow.live.get(leg)
                if state == "Up" and flow_leg is not None and not flow_leg.answered:
                    call.events.put_nowait(flow.LegAnswered(now, leg))
        self._inbound.reconcile(channels)
        self.presence.rebuild(await self._ari.endpoint_states())
        for channel_id in channels:
            if channel_id.startswith(self._prefix) and channel_id not in self._channels:
                log.warning("hanging up orphaned channel %s", channel_id)
                await quietly(self._ari.hangup(channel_id))
        owned = {call.bridge_id for call in self._calls.values()}
        for bridge_id in await self._ari.bridge_ids():
            if bridge_id.startswith(self._prefix) and bridge_id not in owned:
                log.warning("destroying orphaned bridge %s", bridge_id)
                await quietly(self._ari.destroy_bridge(bridge_id))

    # ---- events ---------------------------------------------------------------------------

    async def _pump_events(self) -> None:
        async for event in self._ari.events():
            now = self._clock()
            match event:
                case Connected(asterisk_started=started, node=node):
                    try:
                        await self._reconcile(started, node)
                    except TelephonyError as exc:
                        log.warning("reconcile failed, dialling stays paused: %s", exc)
                        continue
                    self._connected.add(node)
                    self._ready.set()
                    self.wake()
                case Disconnected(node=node):
                    self._node_lost(node)
                case NodeDown(channel_ids=lost, reason=reason):  # its calls end, that the cause
                    self._close_lost_channels(frozenset(lost), reason, now)
                case ChannelRinging(channel_id=cid):
                    self._route(cid, lambda leg: flow.LegRinging(now, leg))
                case ChannelEnteredApp(channel_id=cid, name=name):
                    target = self._channels.get(cid)
                    if target is not None:
                        target[0].names[target[1]] = name
                    if (not self._route(cid, lambda leg: flow.LegAnswered(now, leg))
                            and not self._inbound.take(event, self._tasks)):
                        # Nothing enters our app but what we originate or the dialplan hands
                        # over for a purpose we serve: refuse strangers.
                        log.warning("hanging up unexpected channel %s in our app", cid)
                        await quietly(self._ari.hangup(cid))
                case AsteriskShuttingDown(channel_id=cid, node=node, reason=reason):
                    self._node_lost(node)  # no new calls there until it is back (Connected)
                    self._route(cid, lambda leg: flow.Interrupted(now, reason))
                case ChannelDestroyed(channel_id=cid, cause=cause, cause_text=text):
                    if not self._inbound.route(cid, event):
                        self._route(cid, lambda leg: flow.LegGone(now, leg, cause, text))
                case DigitPressed(channel_id=cid, digit=digit):
                    if not self._inbound.route(cid, event):
                        self._route(cid, lambda leg: flow.DigitPressed(now, leg, digit))
                case EndpointState():
                    if self.presence.update(event):
                        self.wake()  # an agent came online or got free: a lead may wait
                case PlaybackFinished(playback_id=pid, channel_id=cid, failed=failed):
                    if cid is not None and self._inbound.route(cid, event):
                        continue
                    target = self._playbacks.pop(pid, None)
                    if target is not None:
                        call, leg = target
                        call.events.put_nowait(flow.PlaybackDone(now, leg, failed))

    def _node_lost(self, node: str) -> None:
        self._connected.discard(node)
        if not self._connected:  # while one node is up, it dials
            self._ready.clear()

    def _close_lost_channels(self, lost: frozenset[str], reason: str, now: float) -> None:
        for call in list(self._calls.values()):  # its legs elsewhere are hung up as it ends
            if gone := call.live_legs_on(lost):
                call.log.warning("%s: legs %s lost", reason, ", ".join(sorted(gone)))
                call.events.put_nowait(flow.Interrupted(now, reason, gone))
        for channel_id in lost:
            self._inbound.route(channel_id, ChannelDestroyed(channel_id, 0, reason))

    def _route(self, channel_id: str, make: Callable[[str], flow.Event]) -> bool:
        target = self._channels.get(channel_id)
        if target is None:
            return False
        call, leg = target
        call.events.put_nowait(make(leg))
        return True

    # ---- dispatching ----------------------------------------------------------------------

    async def _dispatch_forever(self) -> None:
        while True:
            await self._ready.wait()
            self._wake.clear()
            wait = await self._dispatcher.round(len(self._calls), self._start_call)
            # Until a wake-up (a lead queued, a retry scheduled, a call or agent freed) or the
            # next lead's due time, at most poll_interval_s (leads another process queues, a
            # configuration changed). asyncio.timeout, not wait_for: in 3.11 a wait_for whose
            # wait ends as the task is cancelled returns and drops the cancellation, and the
            # engine never stops.
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _start_call(self, lead: Lead, attempt: Attempt, widget: Widget, group: Group,
                    agents: tuple[str, ...]) -> None:
        plan = call_plan(lead, widget, group, agents, can_record=self._recording is not None)
        call = ActiveCall(
            lead, attempt, widget, flow.CallFlow(plan), agents,
            CallLog(log, call_ids(lead, attempt)), progress=flow.FIRST_PROGRESS.value,
        )
        self._calls[attempt.id] = call
        assert self._tasks is not None
        self._tasks.create_task(self._run_call(call), name=f"call-{attempt.id}")

    # ---- one call -------------------------------------------------------------------------

    async def _run_call(self, call: ActiveCall) -> None:
        call.log.info(
            "calling %d agent(s) of group %s (%s)",
            len(call.agent_endpoints), call.widget.settings.group, call.flow.plan.strategy.value,
        )
        try:
            await self._feed(call, flow.Start(self._clock()))
            while not call.flow.done:
                await self._feed(call, await call.events.get())
        except asyncio.CancelledError:
            await self._abort(call, "the engine stopped")
            raise
        except Exception:
            # A bug must not leave a caller in dead air or an agent ringing: hang up, record.
            call.log.exception("call handling failed; hanging up")
            await self._abort(call, "internal error")
        finally:
            self._forget(call)

    async def _feed(self, call: ActiveCall, event: flow.Event) -> None:
        if (call.flow.state is flow.State.NOTICE and isinstance(event, flow.PlaybackDone)
                and event.leg == flow.VISITOR and not event.failed):
            # The recording notice was played to the visitor (consent evidence), recorded
            # before the call is bridged and recorded.
            await self._store.mark_notice_played(call.attempt.id)
        asked = len(call.flow.acceptances)
        for command in call.flow.handle(event):
            await self._execute(call, command)
        for answer in call.flow.acceptances[asked:]:  # an agent asked to accept answered
            call.log.info("%s asked to accept: %s", answer.agent, answer.answer.value)
        if (isinstance(event, (flow.LegGone, flow.LegAnswered, flow.DigitPressed))
                and flow.is_agent_leg(event.leg)):
            self._release_agents(call)

    async def _execute(self, call: ActiveCall, command: flow.Command) -> None:
        match command:
            case flow.Originate(leg=leg, endpoint=endpoint, timeout=timeout, caller_id=cid):
                await self._originate(call, leg, endpoint, timeout, cid)
            case flow.HangUp(leg=leg):
                channel_id = call.legs.get(leg)
                if channel_id is not None and leg in call.created:
                    await self._hangup(call, leg, channel_id)
            case flow.Play(leg=leg, media=media):
                playback_id = new_id(self._prefix)
                self._playbacks[playback_id] = (call, leg)
                try:
                    await self._ari.play(call.legs[leg], media, playback_id)
                except TelephonyError as exc:
                    call.log.warning("%s could not be played: %s", media, exc)
                    self._playbacks.pop(playback_id, None)
                    call.events.put_nowait(flow.PlaybackDone(self._clock(), leg, failed=True))
            case flow.StopPlaying(leg=leg):
                for pid in [p for p, target in self._playbacks.items() if target == (call, leg)]:
                    await quietly(self._ari.stop_playback(pid))
            case flow.IndicateRinging(leg=leg, on=on):
                await quietly(self._ari.ring(call.legs[leg], on))
            case flow.Bridge(legs=legs):
                await self._bridge(call, legs)
            case flow.StartRecording(leg=leg):
                await self._start_recording(call, leg)
            case flow.DestroyBridge():
                if call.bridge_id is not None:
                    await quietly(self._ari.destroy_bridge(call.bridge_id))
                    call.bridge_id = None
            case flow.StartTimer(name=name, seconds=seconds):
                loop = asyncio.get_running_loop()
                call.timers[name] = loop.call_later(
                    seconds,
                    lambda: call.events.put_nowait(flow.TimerFired(self._clock(), name)),
                )
            case flow.CancelTimer(name=name):
                handle = call.timers.pop(name, None)
                if handle is not None:
                    handle.cancel()
            case flow.Progress(state=state, agent=agent):
                call.log.info("%s%s", state.value, f" (agent {agent})" if agent else "")
                if state.value != call.progress:  # the first was written with the attempt
                    await self._store.set_progress(
                        call.lead.id, state.value, state is flow.State.CONNECTED,
                        call.attempt.id, self._clock(),
                    )
                    call.progress = state.value
            case flow.Finish(result=result):
                call.finished = True
                await self._finish_recording(call, result.talk_s)
                await self._finish(call.lead, call.attempt, call.widget, result, call.log)

    async def _originate(
        self, call: ActiveCall, leg: str, endpoint: str, timeout: int, caller_id: str
    ) -> None:
        channel_id = new_id(self._prefix)
        call.legs[leg] = channel_id
        self._channels[channel_id] = (call, leg)
        # The visitor's endpoint holds their number: log the leg, never the endpoint.
        shown = endpoint if flow.is_agent_leg(leg) else "the visitor"
        # The visitor is dialled on the node of the agent who answered: bridged there.
        near = None if flow.is_agent_leg(leg) else call.legs.get(call.flow.agent or "")
        try:
            await self._ari.originate(
                endpoint, channel_id, app_args=[call.lead.id, leg], timeout=timeout,
                caller_id=caller_id or None, near=near,
            )
        except TelephonyError as exc:
            call.log.warning("originate %s failed: %s", shown, exc.reason)
            self._channels.pop(channel_id, None)
            if exc.unavailable:  # Asterisk's problem, not this endpoint's
                event: flow.Event = flow.Interrupted(
                    self._clock(), "Asterisk unavailable", frozenset({leg})
                )
            else:
                event = flow.LegGone(self._clock(), leg, 0, exc.reason, originate_failed=True)
            call.events.put_nowait(event)
            return
        call.created.add(leg)
        call.log.info("originated %s as %s (%s)", leg, channel_id, shown)

    async def _hangup(self, call: ActiveCall, leg: str, channel_id: str) -> None:
        try:
            await self._ari.hangup(channel_id)
        except Gone:
            # Gone already and we missed the event (e.g. while disconnected).
            call.events.put_nowait(flow.LegGone(self._clock(), leg, 0, "already gone"))
        except TelephonyError as exc:
            call.log.warning("hangup of %s failed: %s", leg, exc)

    async def _bridge(self, call: ActiveCall, legs: tuple[str, ...]) -> None:
        try:
            call.bridge_id = new_id(self._prefix)
            await self._ari.create_bridge(call.bridge_id, near=call.legs[legs[0]])
            await self._ari.add_to_bridge(call.bridge_id, [call.legs[leg] for leg in legs])
        except TelephonyError as exc:
            call.log.error("bridging failed: %s", exc)
            call.events.put_nowait(flow.Interrupted(self._clock(), f"bridging failed: {exc}"))
            return
        call.log.info("agent and visitor bridged in %s", call.bridge_id)

    async def _start_recording(self, call: ActiveCall, leg: str) -> None:
        assert self._recording is not None and call.bridge_id is not None
        tap_channel_id = new_id(self._prefix)
        call.legs["tap"] = tap_channel_id  # registered first: its events may come at once
        self._channels[tap_channel_id] = (call, "tap")
        call.recording = await self._recording.start(
            self._store, call.attempt, channel_id=call.legs[leg],
            channel_name=call.names.get(leg, ""), bridge_id=call.bridge_id,
            tap_channel_id=tap_channel_id, clock=self._clock, call_log=call.log,
        )

    async def _finish_recording(self, call: ActiveCall, talk_s: float | None) -> None:
        if call.recording is not None:
            recording, call.recording = call.recording, None
            await recording.finish(talk_s)

    async def _finish(
        self, lead: Lead, attempt: Attempt, widget: Widget, result: flow.Result, call_log: CallLog
    ) -> None:
        settings, now = widget.settings, self._clock()
        earlier = [a.outcome for a in await self._store.attempts_for(lead.id)
                   if a.id != attempt.id] if policy.needs_history(result, settings) else []
        retry_at = policy.retry_at(result, settings, attempt.number, now, earlier)
        try:
            await self._store.finish_attempt(attempt, result, now, retry_at)
        except AttemptClosed:
            call_log.warning("attempt ended here after another engine had closed it (this "
                             "engine's lease had run out): its result is not kept")
            return
        self._on_finished(result)
        call_log.info(
            "attempt ended: %s%s%s",
            result.outcome.value,
            f" ({result.cause})" if result.cause else "",
            f"; retry in {retry_at - now:.0f} s" if retry_at is not None else "; lead closed",
        )
        if retry_at is not None:
            self.wake()

    async def _abort(self, call: ActiveCall, reason: str) -> None:
        """End a call the flow can no longer drive: hang up everything, record why.

        Bounded in time and never raising: it runs while the call's task is being cancelled."""
        if call.finished:
            return
        try:
            async with asyncio.timeout(10):
                call.flow.handle(flow.Interrupted(self._clock(), reason))
                for leg in list(call.flow.live):
                    await self._execute(call, flow.HangUp(leg))
                await self._execute(call, flow.DestroyBridge())
                assert call.flow.pending is not None
                await self._finish_recording(call, call.flow.pending.talk_s)
                await self._finish(call.lead, call.attempt, call.widget, call.flow.pending, call.log)
        except Exception:
            call.log.exception("could not end the call cleanly; the next reconcile will")

    def _release_agents(self, call: ActiveCall) -> None:
        """Give back the agents this call holds and no longer needs: those whose leg is gone
        and, once one answered, those it kept for later (sequential) and never rang."""
        endpoints = call.flow.plan.agent_endpoints
        needed = {endpoints[int(leg.split(":")[1])] for leg in call.flow.live
                  if flow.is_agent_leg(leg)}
        if not call.flow.agent_taken:  # (an agent asked to accept may still decline)
            needed.update(endpoints[call.flow.next_agent:])  # still to be rung in turn
        released = call.held - needed
        if released:
            call.held -= released
            self._reserved -= released  # held by this call only: dispatch reserves the free
            self.wake()  # a lead may be waiting for these agents

    def _forget(self, call: ActiveCall) -> None:
        for handle in call.timers.values():
            handle.cancel()
        for channel_id in call.legs.values():
            self._channels.pop(channel_id, None)
        for playback_id in [p for p, (c, _) in self._playbacks.items() if c is call]:
            del self._playbacks[playback_id]
        self._reserved.difference_update(call.held)  # not those given back and held by others
        call.held.clear()
        self._calls.pop(call.attempt.id, None)
        self.wake()


__all__ = ["Engine", "ActiveCall", "ID_PREFIX"]
