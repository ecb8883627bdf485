"""Each strategy's ring order over several leads, against the real Asterisk with sipp agents
(agentN on 5080+N). An agent that does not answer rings (180) until the ring timeout: each lead
rings the group one at a time, and the order is the order the phones received the INVITEs.
Not run by helpers: the lead runs it with the machine's one Asterisk."""

from __future__ import annotations

import asyncio

import pytest

from callengine.app import running
from callengine.flow import Strategy
from tests.support.engine import add_widget, make_config, submit_lead, wait_for_lead
from tests.support.phones import Phone, agent_port

pytestmark = pytest.mark.asterisk

AGENTS = ("agent1", "agent2", "agent3")


async def ring_series(asterisk, tmp_path, strategy: Strategy, leads: int, *,
                      answering: dict[int, str] | None = None) -> tuple[list, list]:
    """`leads` leads one after another (each once the one before is done); returns, per
    lead, the agents in the order their phones were rung, and each lead as it ended. An agent
    that does not answer rings for the whole ring timeout (5 s) before the next is tried, so a
    watcher reading the phones' counters every 50 ms sees the order without doubt."""
    roles = {n: (answering or {}).get(n, "ring_forever") for n in (1, 2, 3)}
    phones = {n: Phone(agent_port(n), roles[n], answer_after_ms=200)
              for n in (1, 2, 3)}
    async with running(make_config(tmp_path, asterisk)) as service:
        for phone in phones.values():
            await phone.astart()
        try:
            widget = await add_widget(service.store, agents=AGENTS, strategy=strategy,
                                      ring_timeout=5, whisper=None,
                                      visitor_endpoint="PJSIP/{number}@pstn-void",
                                      visitor_ring_timeout=5,
                                      max_numbers_per_client_per_hour=100,
                                      max_numbers_per_client_per_day=100)
            done, orders = [], []
            for i in range(leads):
                seen = {n: p.calls_received for n, p in phones.items()}
                order: list[int] = []
                watcher = asyncio.create_task(_watch(phones, seen, order))
                # a number of its own each (the same one again would be the same lead back)
                lead_id = await submit_lead(service.base_url, widget, f"+4860123450{i}")
                done.append(await wait_for_lead(service.store, lead_id, timeout=60))
                watcher.cancel()
                orders.append(order)
        finally:
            for phone in phones.values():
                phone.stop()
    return orders, done


async def _watch(phones: dict[int, Phone], seen: dict[int, int], order: list[int]) -> None:
    while True:
        for n, phone in phones.items():
            if n not in order and phone.calls_received > seen[n]:
                order.append(n)
        await asyncio.sleep(0.05)


async def test_sequential_rings_from_the_first_every_time(asterisk, tmp_path):
    orders, done = await ring_series(asterisk, tmp_path, Strategy.SEQUENTIAL, 3)
    assert orders == [[1, 2, 3]] * 3
    assert all(lead.outcome == "agents-no-answer" for lead in done)


async def test_round_robin_rotates_the_start(asterisk, tmp_path):
    orders, _ = await ring_series(asterisk, tmp_path, Strategy.ROUND_ROBIN, 4)
    assert orders == [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 2, 3]]


async def test_least_recent_rings_the_longest_idle_first(asterisk, tmp_path):
    """agent2 answers every call it gets (the others ring unanswered): after its first call it rings
    last, after both others (never called)."""
    orders, done = await ring_series(asterisk, tmp_path, Strategy.LEAST_RECENT, 3,
                                     answering={2: "answer"})
    assert orders == [[1, 2], [1, 3, 2], [1, 3, 2]]
    # nothing listens behind pstn-void: the visitor is unreachable, the agent answered
    assert [lead.outcome for lead in done] == ["visitor-unreachable"] * 3


async def test_random_follows_the_engines_source(asterisk, tmp_path):
    """The composition root's engine has an unseeded source: the order is checked to be a
    permutation each time, and not always the same over enough leads."""
    orders, _ = await ring_series(asterisk, tmp_path, Strategy.RANDOM, 6)
    assert all(sorted(order) == [1, 2, 3] for order in orders)
    assert len({tuple(order) for order in orders}) > 1  # one order six times: 1 in 7776
