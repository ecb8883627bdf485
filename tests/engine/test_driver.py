"""The engine driver without Asterisk: the shared fake ARI (tests/support/fake_ari.py) and a
real SQLite store. Dispatch, reconcile after a reconnect, orphans, shutdown — asserted on what
the store holds and what the fake was asked, not on the engine's insides."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from callengine.config import DialingConfig
from callengine.calls import engine_prefix
from callengine.engine import Engine
from callengine.flow import Outcome, State, Strategy
from callengine.model import LEAD_CALLING, LEAD_DONE, LEAD_QUEUED, Lead
from callengine.errors import LeaseLost
from callengine.storage import Store, engine_lease
from callengine.telephony import ChannelEnteredApp, NotReady, TelephonyError
from tests.support.engine import DATA_KEY, VISITOR, add_widget, poll, queue_lead
from tests.support.fake_ari import FakeAri, failure

CALLER_ID = "Shop <+48221234567>"  # tests.support.engine.add_widget's

# The ids of this engine's channels and bridges (the default engine id, "main").
OURS = engine_prefix(DialingConfig(max_concurrent_calls=1, poll_interval_s=1.0).engine_id)


@asynccontextmanager
async def engine_running(tmp_path, ari: FakeAri, *, agents=("agent1",),
                         **settings: Any) -> AsyncIterator[tuple[Store, Lead, asyncio.Task]]:
    """A store with one widget and one due lead, and Engine.run() over the fake."""
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=agents, strategy=Strategy.RING_ALL, **settings)
        lead = await queue_lead(store, widget)
        engine = Engine(store, ari, DialingConfig(max_concurrent_calls=2, poll_interval_s=0.05))
        task = asyncio.create_task(engine.run())
        try:
            yield store, lead, task
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def originated(ari: FakeAri, endpoint_part: str) -> Callable[[], Awaitable[str | None]]:
    async def check() -> str | None:
        return next((c[2] for c in ari.requests("originate") if endpoint_part in c[1]), None)
    return check


def lead_is(store: Store, lead_id: str, status: str, progress: str | None = None):
    async def check() -> Lead | None:
        lead = await store.get_lead(lead_id)
        ok = lead.status == status and (progress is None or lead.progress == progress)
        return lead if ok else None
    return check


# ---- dispatch ----------------------------------------------------------------------------------


async def test_a_due_lead_is_called_bridged_and_finished(tmp_path):
    ari = FakeAri(answer=False)
    async with engine_running(tmp_path, ari, agents=("agent1", "agent2")) as (store, lead, _):
        first = await poll(originated(ari, "agent1"))
        second = await poll(originated(ari, "agent2"))
        by_endpoint = {c[1]: c for c in ari.requests("originate")}
        assert set(by_endpoint) == {"PJSIP/agent1", "PJSIP/agent2"}  # ring-all: both at once
        for index, endpoint in enumerate(("PJSIP/agent1", "PJSIP/agent2")):
            _, _, channel_id, app_args, timeout, caller_id = by_endpoint[endpoint]
            assert channel_id.startswith(OURS) and len(channel_id) == len(OURS) + 32
            assert app_args == (lead.id, f"agent:{index}") and timeout == 10
        assert first != second
        assert (await store.get_lead(lead.id)).status == LEAD_CALLING

        ari.answer(first)  # agent1 answers: agent2 is hung up, agent1 hears the whisper
        visitor = await poll(originated(ari, "@pstn"))
        assert ("hangup", second) in ari.calls
        assert ari.requests("play")[0][1:3] == (first, "sound:beep")
        (_, endpoint, _, app_args, timeout, caller_id), = (
            c for c in ari.requests("originate") if c[2] == visitor)
        assert endpoint == f"PJSIP/{VISITOR}@pstn" and app_args == (lead.id, "visitor")
        assert (timeout, caller_id) == (10, CALLER_ID)

        ari.answer(visitor)
        await poll(lead_is(store, lead.id, LEAD_CALLING, State.CONNECTED.value))
        (_, bridge_id), = ari.requests("create_bridge")
        assert bridge_id.startswith(OURS)
        assert ari.requests("add_to_bridge") == [("add_to_bridge", bridge_id, (first, visitor))]
        assert ari.bridges == {bridge_id: [first, visitor]}

        ari.far_end_hangs_up("@pstn")  # the visitor hangs up: the agent is hung up, bridge gone
        done = await poll(lead_is(store, lead.id, LEAD_DONE))
    assert done.outcome == Outcome.CONNECTED.value
    attempt, = await _attempts(tmp_path, lead.id)
    assert (attempt.outcome, attempt.agent, attempt.connected) == (
        Outcome.CONNECTED.value, "PJSIP/agent1", True)
    assert attempt.q850 == 16 and attempt.talk_s is not None
    assert ari.channels == {} and ari.bridges == {}
    assert ("destroy_bridge", bridge_id) in ari.calls


async def test_bridging_retries_a_channel_not_ready_yet(tmp_path):
    """The add-to-bridge retry is the port's: the engine asks once, the client tries again."""
    ari = FakeAri(fail={"add_to_bridge": [NotReady]})
    async with engine_running(tmp_path, ari) as (store, lead, _):
        await poll(lead_is(store, lead.id, LEAD_CALLING, State.CONNECTED.value))
        assert ari.names().count("add_to_bridge") == 2
        ari.far_end_hangs_up("@pstn")
        done = await poll(lead_is(store, lead.id, LEAD_DONE))
    assert done.outcome == Outcome.CONNECTED.value


async def test_agent_busy_closes_the_lead(tmp_path):
    ari = FakeAri(answer=False)
    async with engine_running(tmp_path, ari) as (store, lead, _):
        agent = await poll(originated(ari, "agent1"))
        ari.reject(agent, 17, "User busy")
        done = await poll(lead_is(store, lead.id, LEAD_DONE))
    assert done.outcome == Outcome.AGENTS_BUSY.value
    assert not ari.requests("create_bridge") and ari.channels == {}


async def test_a_refused_originate_is_a_failed_leg(tmp_path):
    """POST /channels answering 500 "Allocation failed" (an unknown endpoint)."""
    ari = FakeAri(fail={"originate": [TelephonyError]})
    async with engine_running(tmp_path, ari) as (store, lead, _):
        done = await poll(lead_is(store, lead.id, LEAD_DONE))
    assert done.outcome == Outcome.FAILED.value
    attempt, = await _attempts(tmp_path, lead.id)
    assert attempt.cause == "no agent could be called (originate failed)"


async def test_an_unavailable_asterisk_interrupts_instead(tmp_path):
    """Not an answer from Asterisk at all: its problem, not the endpoint's; tried again."""
    ari = FakeAri(fail={"originate": [failure(TelephonyError, "POST /channels", unavailable=True)]})
    async with engine_running(tmp_path, ari, max_attempts=2, retry_delay_s=3600) as (
            store, lead, _):
        await poll(originated(ari, "agent1"))

        async def requeued():
            current = await store.get_lead(lead.id)
            return current.status == LEAD_QUEUED and current.attempts == 1 and current
        queued = await poll(requeued)
    assert queued.next_attempt_at is not None
    attempt, = await _attempts(tmp_path, lead.id)
    assert attempt.cause == "interrupted: Asterisk unavailable"


# ---- reconcile after a reconnect ---------------------------------------------------------------


async def test_a_leg_that_vanished_while_disconnected_interrupts_the_attempt(tmp_path):
    ari = FakeAri(answer=False)
    async with engine_running(tmp_path, ari, max_attempts=2, retry_delay_s=3600) as (
            store, lead, _):
        agent = await poll(originated(ari, "agent1"))
        ari.reconnect(vanished=(agent,))
        queued = await poll(lead_is(store, lead.id, LEAD_QUEUED))
    assert queued.attempts == 1 and queued.next_attempt_at is not None  # tried again later
    attempt, = await _attempts(tmp_path, lead.id)
    assert attempt.outcome == Outcome.FAILED.value
    assert attempt.cause == "interrupted: ARI events lost"


async def test_an_asterisk_restart_interrupts_a_connected_call(tmp_path):
    ari = FakeAri()
    async with engine_running(tmp_path, ari) as (store, lead, _):
        await poll(lead_is(store, lead.id, LEAD_CALLING, State.CONNECTED.value))
        ari.reconnect(restarted=True)  # every channel and bridge is gone with it
        done = await poll(lead_is(store, lead.id, LEAD_DONE))
    attempt, = await _attempts(tmp_path, lead.id)
    assert (attempt.outcome, attempt.connected) == (Outcome.FAILED.value, True)
    assert attempt.cause == "interrupted: Asterisk restarted"
    assert done.outcome == Outcome.FAILED.value
    assert ari.channels == {} and ari.bridges == {}


async def test_a_hangup_while_disconnected_ends_a_connected_call_normally(tmp_path):
    ari = FakeAri()
    async with engine_running(tmp_path, ari) as (store, lead, _):
        await poll(lead_is(store, lead.id, LEAD_CALLING, State.CONNECTED.value))
        ari.reconnect(vanished=(ari.channel_for("@pstn"),))
        done = await poll(lead_is(store, lead.id, LEAD_DONE))
    assert done.outcome == Outcome.CONNECTED.value
    assert ari.channels == {} and ari.bridges == {}


# ---- orphans -----------------------------------------------------------------------------------


async def test_orphans_are_cleared_on_connect_and_strangers_refused(tmp_path):
    ari = FakeAri()
    orphan, orphan_bridge = OURS + "0" * 32, OURS + "1" * 32
    ari.add_channel(orphan, "PJSIP/agent9")  # left by this engine before it died
    ari.add_channel("1733.42", "PJSIP/desk-phone")  # not ours: another app's
    theirs, their_bridge = engine_prefix("b") + "2" * 32, engine_prefix("b") + "3" * 32
    ari.add_channel(theirs, "PJSIP/agent8")  # another engine's call on the same Asterisk
    ari.add_bridge(orphan_bridge)
    ari.add_bridge("conference-1")
    ari.add_bridge(their_bridge)
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        engine = Engine(store, ari, DialingConfig(max_concurrent_calls=1, poll_interval_s=0.05))
        task = asyncio.create_task(engine.run())
        try:
            await asyncio.wait_for(engine.ready.wait(), 5)
            assert ("hangup", orphan) in ari.calls and ("destroy_bridge", orphan_bridge) in ari.calls
            assert "1733.42" in ari.channels and "conference-1" in ari.bridges
            assert theirs in ari.channels and their_bridge in ari.bridges
            # A channel we did not originate enters our app (a misrouted dialplan): refused.
            ari.add_channel("stranger-1", "PJSIP/someone")
            ari.emit(ChannelEnteredApp("stranger-1", (), "PJSIP/someone-00000007"))

            async def hung_up():
                return ("hangup", "stranger-1") in ari.calls
            await poll(hung_up)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert set(ari.channels) == {"1733.42", theirs}
    assert set(ari.bridges) == {"conference-1", their_bridge}


async def test_a_restarted_engine_closes_its_own_open_attempts_only(tmp_path):
    """Attempts left open by this engine (and by one from before attempts named theirs) are
    closed as interrupted; another engine's, on the same store, go on being that engine's."""
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1",), duplicate_window_s=0)
        leads = [await queue_lead(store, widget) for _ in range(3)]
        for lead, engine in zip(leads, ("main", None, "b")):
            await store.start_attempts([lead.id], time.time(), engine=engine)
        assert len(await store.active_attempts()) == 3
        engine = Engine(store, FakeAri(), DialingConfig(max_concurrent_calls=1,
                                                        poll_interval_s=0.05))
        task = asyncio.create_task(engine.run())
        try:
            await asyncio.wait_for(engine.ready.wait(), 5)
            mine, old, theirs = [(await store.attempts_for(lead.id))[0] for lead in leads]
            assert (mine.status, old.status, theirs.status) == ("done", "done", "active")
            assert mine.cause == old.cause == "interrupted: the engine restarted"
            assert [a.id for a in await store.active_attempts("b")] == [theirs.id]
            assert await store.active_attempts("main") == []
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


# ---- several engines on one store: leases and takeover ------------------------------------------


def leased(ttl: float = 0.3) -> DialingConfig:
    """A short lease (renewed every ttl/3): a takeover within the test's patience."""
    return DialingConfig(max_concurrent_calls=1, poll_interval_s=0.05, engine_lease_s=ttl)


async def test_a_stopped_engines_calls_are_taken_over_when_its_lease_runs_out(tmp_path):
    """Engine b dies ringing an agent: its lease runs out, engine main hangs up b's channel and
    bridge (not a third engine's, alive) and closes b's attempt; its lead is dialled again."""
    ari = FakeAri(answer=False)
    theirs, their_bridge = engine_prefix("b") + "2" * 32, engine_prefix("b") + "3" * 32
    alive = engine_prefix("c") + "4" * 32
    ari.add_channel(theirs, "PJSIP/agent8", state="Ringing")
    ari.add_bridge(their_bridge)
    ari.add_channel(alive, "PJSIP/agent9")
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1",), max_attempts=2, retry_delay_s=0)
        lead = await queue_lead(store, widget)
        attempt = (await store.start_attempts([lead.id], time.time(), engine="b"))[lead.id]
        await store.acquire_lease(engine_lease("b"), "run-b", time.time(), 0.5)  # then silent
        await store.acquire_lease(engine_lease("c"), "run-c", time.time(), 3600)
        engine = Engine(store, ari, leased())
        task = asyncio.create_task(engine.run())
        try:
            await poll(originated(ari, "agent1"), timeout=5)  # the lead again, by main
            first, second = await store.attempts_for(lead.id)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert first.id == attempt.id and first.engine == "b"
    assert (first.status, first.cause) == ("done", "interrupted: engine b stopped")
    assert second.engine == "main" and second.number == 2
    assert ("hangup", theirs) in ari.calls and ("destroy_bridge", their_bridge) in ari.calls
    assert alive in ari.channels  # c holds its lease: its call is its own


async def test_an_engine_whose_lease_was_taken_stops_and_dials_no_more(tmp_path):
    """Cut off longer than its lease, an engine finds its lease another's: run() ends with
    LeaseLost (the process exits) instead of dialling beside the engine that took over."""
    ari = FakeAri(answer=False)
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1",))
        engine = Engine(store, ari, leased())
        task = asyncio.create_task(engine.run())
        await asyncio.wait_for(engine.ready.wait(), 5)
        await store.release_lease(engine_lease("main"), engine._lease.owner)
        await store.acquire_lease(engine_lease("main"), "taker", time.time(), 60)
        with pytest.raises(ExceptionGroup) as stopped:
            await asyncio.wait_for(task, 5)
        assert stopped.group_contains(LeaseLost)
        await queue_lead(store, widget)
        await asyncio.sleep(0.3)
    assert ari.requests("originate") == []


async def test_a_second_process_with_the_same_engine_id_waits_for_the_lease(tmp_path, caplog):
    """Two processes with one engine id would hang up each other's calls: the second waits
    (saying so) until the first has stopped, and only then reconciles and dials."""
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        first = Engine(store, FakeAri(), leased(3))
        first_task = asyncio.create_task(first.run())
        await asyncio.wait_for(first.ready.wait(), 5)
        second_ari = FakeAri()
        second = Engine(store, second_ari, leased(3))
        second_task = asyncio.create_task(second.run())
        try:
            await asyncio.sleep(1.5)
            assert not second.ready.is_set() and second_ari.requests("channel_ids") == []
            assert "its lease is held by another process" in caplog.text
            first_task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first_task  # a clean stop releases its lease
            await asyncio.wait_for(second.ready.wait(), 5)
        finally:
            second_task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await second_task


# ---- shutdown ----------------------------------------------------------------------------------


async def test_stopping_the_engine_hangs_up_and_closes_the_attempt(tmp_path):
    ari = FakeAri(answer=False)
    async with engine_running(tmp_path, ari, agents=("agent1", "agent2")) as (store, lead, task):
        agents = [await poll(originated(ari, name)) for name in ("agent1", "agent2")]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert {c[1] for c in ari.requests("hangup")} == set(agents)
        assert ari.channels == {}
        closed = await store.get_lead(lead.id)
    assert closed.status == LEAD_DONE
    attempt, = await _attempts(tmp_path, lead.id)
    assert (attempt.status, attempt.outcome) == ("done", Outcome.FAILED.value)
    assert attempt.cause == "interrupted: the engine stopped"


async def _attempts(tmp_path, lead_id: str):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        return await store.attempts_for(lead_id)


async def test_stopping_right_after_a_wake_up_still_stops(tmp_path):
    """A lead queued in the same instant as the stop: the dispatcher's wait ends on both at
    once, and the stop must win (asyncio.wait_for in 3.11 would drop the cancellation)."""
    ari = FakeAri()
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        engine = Engine(store, ari, DialingConfig(max_concurrent_calls=1, poll_interval_s=5))
        task = asyncio.create_task(engine.run())
        await asyncio.wait_for(engine.ready.wait(), 5)
        await asyncio.sleep(0.05)  # the dispatcher waits for a wake-up
        engine.wake()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=3)
        assert task in done and task.cancelled()
