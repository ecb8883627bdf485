"""Engines sharing one store: each engine's lease (engine_lease), renewed only by its holder;
the engines whose lease ran out with attempts open (to be taken over); attempts started only
under a held lease (fenced); an attempt closed by a takeover not closed again. On both backends."""

from __future__ import annotations

import asyncio
import time

import pytest

from callengine.errors import AttemptClosed, LeaseLost
from callengine.flow import Outcome, Result
from callengine.model import LEAD_QUEUED
from callengine.storage import engine_lease
from tests.support.engine import add_widget, queue_lead

NOW = time.time()


async def test_only_the_holder_renews_and_a_released_lease_is_gone_for_it(open_store):
    async with open_store() as store:
        name = engine_lease("a")
        assert await store.acquire_lease(name, "run-1", NOW, 15)
        assert not await store.acquire_lease(name, "run-2", NOW + 1, 15)  # a second process
        assert await store.renew_lease(name, "run-1", NOW + 30, 15)  # expired, still its own
        assert not await store.renew_lease(name, "run-2", NOW + 30, 15)
        assert await store.acquire_lease(name, "taker", NOW + 60, 15)  # expired: taken
        assert not await store.renew_lease(name, "run-1", NOW + 61, 15)
        await store.release_lease(name, "taker")
        assert not await store.renew_lease(name, "run-1", NOW + 62, 15)  # gone: taken over


async def test_engines_to_take_over_are_those_with_open_attempts_and_no_live_lease(open_store):
    async with open_store() as store:
        widget = await add_widget(store, agents=("agent1",), duplicate_window_s=0)
        leads = [await queue_lead(store, widget) for _ in range(4)]
        for lead, engine in zip(leads, ("a", "b", "c", None)):
            await store.start_attempts([lead.id], NOW, engine=engine)
        await store.acquire_lease(engine_lease("b"), "run-b", NOW, 15)  # b is alive
        await store.acquire_lease(engine_lease("c"), "run-c", NOW - 20, 15)  # c went silent
        assert await store.engines_to_take_over("a", NOW) == ["c"]
        assert await store.engines_to_take_over("b", NOW) == ["a", "c"]
        assert await store.engines_to_take_over("b", NOW + 16) == ["a", "c"]  # b: its own
        assert await store.engines_to_take_over("c", NOW + 16) == ["a", "b"]


async def test_attempts_start_only_under_the_engines_lease(open_store):
    async with open_store() as store:
        widget = await add_widget(store, agents=("agent1",), duplicate_window_s=0)
        first, second = [await queue_lead(store, widget) for _ in range(2)]
        with pytest.raises(LeaseLost):  # no lease at all
            await store.start_attempts([first.id], NOW, engine="a", lease_owner="run-1")
        await store.acquire_lease(engine_lease("a"), "run-1", NOW, 15)
        started = await store.start_attempts([first.id], NOW, engine="a", lease_owner="run-1")
        assert list(started) == [first.id]
        await store.acquire_lease(engine_lease("a"), "taker", NOW + 20, 15)  # taken over
        with pytest.raises(LeaseLost):
            await store.start_attempts([second.id], NOW + 21, engine="a", lease_owner="run-1")
        lead = await store.get_lead(second.id)
        assert lead.status == LEAD_QUEUED and lead.attempts == 0  # nothing written


async def test_an_attempt_closed_by_a_takeover_is_not_closed_again(open_store):
    async with open_store() as store:
        widget = await add_widget(store, agents=("agent1",))
        lead = await queue_lead(store, widget)
        attempt = (await store.start_attempts([lead.id], NOW, engine="a"))[lead.id]
        taken = Result(Outcome.FAILED, cause="interrupted: engine a stopped", retryable=True)
        await store.finish_attempt(attempt, taken, NOW + 20, retry_at=NOW + 21)
        late = Result(Outcome.CONNECTED, connected=True, talk_s=30.0)
        with pytest.raises(AttemptClosed):  # the stopped engine, back, ends its call
            await store.finish_attempt(attempt, late, NOW + 40, retry_at=None)
        stored, = await store.attempts_for(lead.id)
        lead = await store.get_lead(lead.id)
    assert stored.outcome == "failed" and stored.cause == "interrupted: engine a stopped"
    assert lead.status == LEAD_QUEUED and lead.next_attempt_at == NOW + 21


async def test_two_engines_claiming_at_once_dial_each_lead_once(open_store):
    """Two engines' stores (two connections, or pools) on one database take turns at the
    same 200 due leads as fast as they can: each lead gets exactly one attempt, none is left."""
    async with open_store() as setup:
        widget = await add_widget(setup, agents=("agent1",), duplicate_window_s=0,
                                  max_leads_per_hour=1000)
        leads = []
        for n in range(200):
            leads.append(await queue_lead(setup, widget, phone=f"+4860{n:07d}"))
    claimed: dict[str, list[str]] = {"a": [], "b": []}

    async def engine(name: str) -> None:
        async with open_store() as store:
            await store.acquire_lease(engine_lease(name), f"run-{name}", NOW, 60)
            while due := await store.due_leads(time.time(), limit=20):
                started = await store.start_attempts(
                    [lead.id for lead in due], time.time(), engine=name,
                    lease_owner=f"run-{name}")
                claimed[name] += started

    await asyncio.gather(engine("a"), engine("b"))
    async with open_store() as store:
        attempts = {lead.id: await store.attempts_for(lead.id) for lead in leads}
    assert sorted(claimed["a"] + claimed["b"]) == sorted(lead.id for lead in leads)
    assert all(len(found) == 1 for found in attempts.values())
    assert {a.engine for found in attempts.values() for a in found} <= {"a", "b"}


async def test_two_engines_taking_in_the_same_new_number_share_its_subject(open_store):
    """The same new number comes in at two engines at once (a double click through a load
    balancer): one data subject is kept in the keystore, and both leads are readable with it."""
    async with open_store() as setup:
        widget = await add_widget(setup, agents=("agent1",), duplicate_window_s=0,
                                  max_leads_per_hour=1000)
    numbers = [f"+4860{n:07d}" for n in range(30)]
    async with open_store() as a, open_store() as b:
        pairs = [await asyncio.gather(queue_lead(a, widget, phone=number),
                                      queue_lead(b, widget, phone=number))
                 for number in numbers]
    async with open_store() as store:
        for number, (one, two) in zip(numbers, pairs):
            first, second = await store.get_lead(one.id), await store.get_lead(two.id)
            assert (first.phone_e164, second.phone_e164) == (number, number)
