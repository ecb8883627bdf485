"""Retries on their schedule against the real Asterisk with sipp phones, on a clock the test
moves (no minutes slept): the whole app runs on a ManualClock that stands still unless the test
sets it, so each attempt starts exactly when its retry was due — a second before, nothing — and
the store's attempts say which outcome each had. The calling hours (UTC, weekdays 09:00-17:00)
clip the retry that would fall after closing to the next morning's opening."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from callengine.app import Running, running
from callengine.model import Attempt
from tests.support.engine import add_widget, make_config, poll, submit_lead
from tests.support.phones import Phone

pytestmark = pytest.mark.asterisk

WEEKDAYS = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
T0 = datetime(2030, 1, 7, 16, 50, tzinfo=timezone.utc).timestamp()  # a Monday, 10 min to close
TUESDAY_OPENING = datetime(2030, 1, 8, 9, 0, tzinfo=timezone.utc).timestamp()
QUIET_S = 1.0  # how long "nothing happens" is watched: five of the engine's poll rounds


class ManualClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pstn(role: str) -> Phone:
    return Phone(5070, role, tone_hz=1000, answer_after_ms=300, hangup_after_ms=1500)


async def finished(service: Running, lead_id: str, count: int, timeout: float = 30
                   ) -> list[Attempt]:
    """The lead's attempts once `count` of them are done (and the lead's row says so)."""
    async def done():
        attempts = await service.store.attempts_for(lead_id)
        lead = await service.store.get_lead(lead_id)
        return (len(attempts) == count and all(a.status == "done" for a in attempts)
                and lead.status != "calling" and attempts)
    return await poll(done, timeout)


async def at_its_time(service: Running, clock: ManualClock, lead_id: str, due: float,
                      attempts: int) -> list[Attempt]:
    """A second before `due` no attempt starts; at `due` the next one does; returns the
    attempts once it is done."""
    clock.now = due - 1
    service.engine.wake()
    await asyncio.sleep(QUIET_S)
    assert len(await service.store.attempts_for(lead_id)) == attempts, "called too early"
    clock.now = due
    service.engine.wake()
    return await finished(service, lead_id, attempts + 1)


async def test_busy_then_no_answer_twice_then_answered_each_on_its_schedule(asterisk, tmp_path):
    clock = ManualClock(T0)
    async with running(make_config(tmp_path, asterisk), clock=clock) as service, \
            Phone(5081, "answer", answer_after_ms=200):
        widget = await add_widget(
            service.store, whisper=None, visitor_ring_timeout=5, max_attempts=4,
            time_zone="UTC", hours=WEEKDAYS,
            retry_schedule={"visitor-busy": [120], "visitor-no-answer": [300, 900]})
        async with pstn("busy"):
            lead_id = await submit_lead(service.base_url, widget)
            first, = await finished(service, lead_id, 1)
        lead = await service.store.get_lead(lead_id)
        assert (first.outcome, first.started_at, first.ended_at) == ("visitor-busy", T0, T0)
        assert (lead.status, lead.next_attempt_at) == ("queued", T0 + 120)

        async with pstn("ring_forever"):
            *_, second = await at_its_time(service, clock, lead_id, T0 + 120, 1)
            assert (second.outcome, second.started_at) == ("visitor-no-answer", T0 + 120)
            assert (await service.store.get_lead(lead_id)).next_attempt_at == T0 + 420
            *_, third = await at_its_time(service, clock, lead_id, T0 + 420, 2)
        assert (third.outcome, third.started_at) == ("visitor-no-answer", T0 + 420)
        # 15 min after 16:57 is past closing: the next opening, Tuesday 09:00
        assert (await service.store.get_lead(lead_id)).next_attempt_at == TUESDAY_OPENING

        async with pstn("answer") as visitor:
            clock.now = T0 + 420 + 900  # when the schedule alone would have called: closed
            service.engine.wake()
            await asyncio.sleep(QUIET_S)
            assert len(await service.store.attempts_for(lead_id)) == 3, "called after hours"
            attempts = await at_its_time(service, clock, lead_id, TUESDAY_OPENING, 3)
        lead = await service.store.get_lead(lead_id)
    assert [(a.number, a.outcome, a.started_at) for a in attempts] == [
        (1, "visitor-busy", T0), (2, "visitor-no-answer", T0 + 120),
        (3, "visitor-no-answer", T0 + 420), (4, "connected", TUESDAY_OPENING)]
    assert [a.q850 for a in attempts[:1]] == [17]  # the 486: user busy
    assert (lead.status, lead.outcome, lead.attempts) == ("done", "connected", 4)
    assert lead.closed_at == TUESDAY_OPENING and visitor.calls_answered == 1


async def test_retries_stop_at_max_attempts(asterisk, tmp_path):
    """Busy every time, a schedule with a third delay, but max_attempts = 3: done after the
    third; a day later still three."""
    clock = ManualClock(T0 - 3600)
    async with running(make_config(tmp_path, asterisk), clock=clock) as service, \
            Phone(5081, "answer", answer_after_ms=200), pstn("busy") as visitor:
        widget = await add_widget(
            service.store, whisper=None, max_attempts=3, time_zone="UTC", hours=WEEKDAYS,
            retry_schedule={"visitor-busy": [120, 300, 900]})
        lead_id = await submit_lead(service.base_url, widget)
        start = clock.now
        await finished(service, lead_id, 1)
        await at_its_time(service, clock, lead_id, start + 120, 1)
        attempts = await at_its_time(service, clock, lead_id, start + 420, 2)
        lead = await service.store.get_lead(lead_id)
        assert (lead.status, lead.outcome) == ("done", "visitor-busy")
        clock.now = start + 86400
        service.engine.wake()
        await asyncio.sleep(QUIET_S)
        assert len(await service.store.attempts_for(lead_id)) == 3
    assert [(a.outcome, a.started_at) for a in attempts] == [
        ("visitor-busy", start), ("visitor-busy", start + 120), ("visitor-busy", start + 420)]
    assert lead.attempts == 3 and lead.closed_at == start + 420
    assert visitor.calls_received == 3
