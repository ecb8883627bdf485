"""Each strategy's ring order over a series of leads, and retries on their schedule: the fake
ARI, a real store, the real Engine. A lead is made only once the one before it is done, so
each call has every agent free; an agent rung and not answering is refused with 19."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from callengine.config import DialingConfig
from callengine.engine import Engine
from callengine.flow import Strategy
from callengine.model import LEAD_DONE, LEAD_QUEUED, Consent, Lead
from callengine.ringorder import ring_order
from callengine.storage import Store
from tests.support.engine import DATA_KEY, VISITOR, add_widget, poll
from tests.engine.test_scheduled import T0, Clock
from tests.support.fake_ari import FakeAri

AGENTS = ("agent1", "agent2", "agent3")
ENDPOINTS = tuple(f"PJSIP/{a}" for a in AGENTS)

@asynccontextmanager
async def engine(store: Store, ari: FakeAri, **kw) -> AsyncIterator[Engine]:
    running = Engine(store, ari, DialingConfig(max_concurrent_calls=2, poll_interval_s=0.05),
                     **kw)
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def new_lead(store: Store, widget, eng: Engine, i: int, now: float) -> Lead:
    lead = await store.create_lead(
        widget, phone_e164=f"{VISITOR[:-2]}{i:02d}", phone_region="PL", phone_kind="mobile",
        name=None, email=None, consent=Consent(False, False, "v1"), now=now)
    eng.wake()
    return lead


def leg_of(ari: FakeAri, lead: Lead, leg: str, nth: int = 0):
    async def check():
        found = [c for c in ari.requests("originate") if c[3] == (lead.id, leg)]
        return found[nth] if len(found) > nth else None
    return check


async def lead_status(store: Store, lead_id: str, status: str) -> Lead:
    async def check():
        lead = await store.get_lead(lead_id)
        return lead if lead.status == status else None
    return await poll(check)


async def ring_through(ari: FakeAri, store: Store, lead: Lead,
                       answer: int | None = None) -> list[str]:
    """Drive one call: each agent leg refused in turn (the `answer`-th answered and the call
    connected and ended); returns the endpoints in the order they were rung."""
    order = []
    for index in range(len(ENDPOINTS)):
        _, endpoint, channel, *_ = await poll(leg_of(ari, lead, f"agent:{index}"))
        order.append(endpoint)
        if index == answer:
            ari.answer(channel)
            visitor = (await poll(leg_of(ari, lead, "visitor")))[2]
            ari.answer(visitor)
            ari.reject(visitor, 16, "Normal Clearing")
            break
        ari.reject(channel, 19, "No Answer")
    await lead_status(store, lead.id, LEAD_DONE)
    return order


async def series(ari: FakeAri, store: Store, widget, eng: Engine, leads: range,
                 answer: int | None = None) -> list[list[str]]:
    return [await ring_through(ari, store, await new_lead(store, widget, eng, i, time.time()),
                               answer=answer) for i in leads]


async def test_sequential_always_starts_with_the_first(tmp_path):
    ari = FakeAri(answer=False)
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=AGENTS, strategy=Strategy.SEQUENTIAL)
        async with engine(store, ari) as eng:
            orders = await series(ari, store, widget, eng, range(3))
    assert orders == [list(ENDPOINTS)] * 3


async def test_round_robin_rotates_the_start_and_keeps_it_over_a_restart(tmp_path):
    ari = FakeAri(answer=False)
    a1, a2, a3 = ENDPOINTS
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=AGENTS, strategy=Strategy.ROUND_ROBIN)
        async with engine(store, ari) as eng:
            first = await series(ari, store, widget, eng, range(2), answer=0)
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:  # restarted
        async with engine(store, ari) as eng:
            then = await series(ari, store, widget, eng, range(2, 5))
    assert first == [[a1], [a2]]  # each answered by the first rung
    assert then == [[a3, a1, a2], [a1, a2, a3], [a2, a3, a1]]


async def test_least_recent_rings_the_longest_idle_first(tmp_path):
    ari = FakeAri(answer=False)
    a1, a2, a3 = ENDPOINTS
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=AGENTS, strategy=Strategy.LEAST_RECENT)
        async with engine(store, ari) as eng:
            orders = []
            for i, answer in enumerate((1, 0, 0, 0, 2)):
                lead = await new_lead(store, widget, eng, i, time.time())
                orders.append(await ring_through(ari, store, lead, answer=answer))
        attempts = [a for lead in await store.list_leads(limit=10)
                    for a in await store.attempts_for(lead.id)]
    assert orders == [
        [a1, a2],  # nobody called yet: the group's order; agent2 answers
        [a1],  # agent1 and agent3 never called: agent1 (group order) answers
        [a3],  # agent3 never called
        [a2],  # agent2's call ended longest ago
        [a1, a3, a2],  # then agent1's; agent3's last call is newer, agent2's newest
    ]
    assert sorted(a.agent for a in attempts) == sorted([a2, a1, a3, a2, a2])


async def test_random_rings_in_the_order_its_seeded_source_gives(tmp_path):
    ari = FakeAri(answer=False)
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=AGENTS, strategy=Strategy.RANDOM)
        async with engine(store, ari, rng=random.Random(2026)) as eng:
            orders = await series(ari, store, widget, eng, range(6))
    same = random.Random(2026)
    expected = [list(ring_order(Strategy.RANDOM, ENDPOINTS, set(ENDPOINTS), rng=same))
                for _ in range(6)]
    assert orders == expected
    assert len({tuple(o) for o in orders}) > 1  # not one fixed order


async def test_ring_all_rings_every_free_agent_at_once(tmp_path):
    ari = FakeAri(answer=False)
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=AGENTS, strategy=Strategy.RING_ALL)
        async with engine(store, ari) as eng:
            for i in range(2):
                lead = await new_lead(store, widget, eng, i, time.time())
                await poll(leg_of(ari, lead, "agent:2"))  # all three before any answer
                legs = [c for c in ari.requests("originate") if c[3][0] == lead.id]
                assert [c[1] for c in legs] == list(ENDPOINTS)
                for c in legs:
                    ari.reject(c[2], 19, "No Answer")
                done = await lead_status(store, lead.id, LEAD_DONE)
                assert done.outcome == "agents-no-answer"


async def test_retries_wait_their_schedule_per_outcome(tmp_path):
    """agents-busy: 120 s, then 300 s; the clock is the test's, moved to each due time."""
    clock, ari = Clock(), FakeAri(answer=False)
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1",), max_attempts=4,
                                  retry_on=[], retry_schedule={
                                      "agents-busy": [120, 300],
                                      "agents-no-answer": {"delays": [60], "max_retries": 1}})
        async with engine(store, ari, clock=clock) as eng:
            lead = await new_lead(store, widget, eng, 0, clock.now)
            due = []
            for nth, (cause, text) in enumerate(((17, "User busy"), (17, "User busy"),
                                                 (19, "No Answer"), (19, "No Answer"))):
                channel = (await poll(leg_of(ari, lead, "agent:0", nth)))[2]
                ari.reject(channel, cause, text)
                if nth == 3:
                    break
                queued = await lead_status(store, lead.id, LEAD_QUEUED)
                due.append(queued.next_attempt_at - clock.now)
                clock.now = queued.next_attempt_at  # nothing is dialled before: see below
                eng.wake()
            closed = await lead_status(store, lead.id, LEAD_DONE)
            attempts = await store.attempts_for(lead.id)
    assert due == [120, 300, 60]
    assert [a.started_at - T0 for a in attempts] == [0, 120, 420, 480]
    assert [a.outcome for a in attempts] == ["agents-busy", "agents-busy",
                                             "agents-no-answer", "agents-no-answer"]
    assert closed.attempts == 4 and closed.outcome == "agents-no-answer"


async def test_a_no_answer_past_its_max_retries_closes_the_lead(tmp_path):
    clock, ari = Clock(), FakeAri(answer=False)
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1",), max_attempts=5, retry_on=[],
                                  retry_schedule={"agents-no-answer": {"delays": [60],
                                                                       "max_retries": 1}})
        async with engine(store, ari, clock=clock) as eng:
            lead = await new_lead(store, widget, eng, 0, clock.now)
            ari.reject((await poll(leg_of(ari, lead, "agent:0")))[2], 19, "No Answer")
            queued = await lead_status(store, lead.id, LEAD_QUEUED)
            assert queued.next_attempt_at == T0 + 60
            clock.now = T0 + 60
            eng.wake()
            ari.reject((await poll(leg_of(ari, lead, "agent:0", 1)))[2], 19, "No Answer")
            closed = await lead_status(store, lead.id, LEAD_DONE)
    assert closed.attempts == 2 and closed.next_attempt_at is None
