"""The dispatcher's writes and reads of a round: the attempts of many leads started in one
transaction, and the widgets and groups of a round read together."""

from __future__ import annotations

import time

import pytest

from callengine.errors import Conflict, NotFound
from callengine.flow import Strategy
from callengine.model import LEAD_CALLING, LEAD_QUEUED, Consent
from callengine.storage import Store
from tests.support.engine import add_widget


async def _lead(store: Store, widget, phone: str):
    return await store.create_lead(
        widget, phone_e164=phone, phone_region="PL", phone_kind="mobile", name=None,
        email=None, consent=Consent(False, False, "v1"), now=time.time())


async def test_a_round_starts_the_queued_leads_and_leaves_out_the_others(open_store):
    async with open_store() as store:
        widget = await add_widget(store)
        first, second, busy = [await _lead(store, widget, f"+4860123456{i}") for i in range(3)]
        await store.start_attempt(busy.id, time.time())
        started = await store.start_attempts([first.id, busy.id, second.id], time.time(),
                                             progress="ringing-agents")
        assert sorted(started) == sorted([first.id, second.id])
        for lead in (first, second):
            now = await store.get_lead(lead.id)
            assert (now.status, now.progress, now.attempts) == (LEAD_CALLING, "ringing-agents", 1)
            attempt, = await store.attempts_for(lead.id)
            assert attempt == started[lead.id] and attempt.status == "active"
        assert len(await store.attempts_for(busy.id)) == 1  # no second attempt
        with pytest.raises(Conflict):
            await store.start_attempt(busy.id, time.time())
        assert await store.start_attempts([], time.time()) == {}
        assert (await store.get_lead(busy.id)).status != LEAD_QUEUED


async def test_a_rounds_widgets_come_with_their_groups_agents_in_order(open_store):
    async with open_store() as store:
        one = await add_widget(store, agents=("b", "a"), strategy=Strategy.SEQUENTIAL,
                               widget_id="one")
        two = await add_widget(store, agents=("a",), widget_id="two")
        plans = await store.dialling_plans([one.id, two.id, one.id])
        assert plans == {one.id: (one, await store.get_group("g-one")),
                         two.id: (two, await store.get_group("g-two"))}
        assert [a.name for a in plans[one.id][1].agents] == ["b", "a"]
        assert await store.dialling_plans([]) == {}
        with pytest.raises(NotFound):
            await store.dialling_plans(["nowhere"])
