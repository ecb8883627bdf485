"""The webhooks' outbox: each event written by the transaction of the change it reports, and
rolled back with it; none while no endpoint wants it; a change written twice, one event."""

from __future__ import annotations

import time

import pytest

from callengine.flow import Outcome, Result
from callengine.hooks import events
from callengine.model import LEAD_CALLING, Consent
from callengine.storage import Store, outbox
from tests.support.engine import DATA_KEY, VISITOR, add_widget

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def _lead(store: Store, widget, phone: str = VISITOR):
    lead = await store.create_lead(
        widget, phone_e164=phone, phone_region="PL", phone_kind="mobile", name="Ann",
        email="ann@example.com", consent=Consent(True, False, "v1"), now=time.time())
    await store.get_lead(lead.id)  # moved into the store
    return lead


async def _types(store: Store) -> list[str]:
    return [d.event_type for d in reversed(await store.list_deliveries())]


async def _payloads(store: Store) -> dict[str, dict]:
    claimed = await store.claim_deliveries(time.time(), 60, 100)
    for item in claimed:
        await store.release_deliveries([item.delivery.id], None)
    return {c.delivery.event_type: c.payload for c in claimed}


def _result(connected: bool = True) -> Result:
    return Result(outcome=Outcome.CONNECTED if connected else Outcome.AGENTS_NO_ANSWER,
                  connected=connected, agent="PJSIP/agent1", talk_s=12.0 if connected else None)


async def test_a_call_writes_its_events_with_its_changes(open_store):
    async with open_store() as store:
        widget = await add_widget(store)
        await store.add_webhook("http://crm.example/hook", "", ("*",), False, SECRET, 1.0)
        lead = await _lead(store, widget)
        assert await _types(store) == [events.LEAD_CREATED]
        attempt = await store.start_attempt(lead.id, time.time())
        await store.set_progress(lead.id, "connected", True, attempt.id, time.time())
        await store.set_progress(lead.id, "connected", True, attempt.id, time.time())  # once
        await store.finish_attempt(attempt, _result(), time.time(), None)
        assert await _types(store) == [events.LEAD_CREATED, events.CALL_CONNECTED,
                                       events.ATTEMPT_FINISHED, events.LEAD_DONE]
        payloads = await _payloads(store)
        text = repr(payloads)
        assert VISITOR not in text and "Ann" not in text and "ann@example.com" not in text
        assert payloads[events.LEAD_CREATED]["consent"] == {"marketing": True,
                                                            "recording": False}
        assert payloads[events.ATTEMPT_FINISHED]["outcome"] == Outcome.CONNECTED.value
        assert payloads[events.LEAD_DONE] == {"lead_id": lead.id, "outcome": "connected",
                                              "attempts": 1, "closed_at": pytest.approx(
                                                  payloads[events.LEAD_DONE]["closed_at"])}


async def test_a_retry_is_no_lead_done(open_store):
    async with open_store() as store:
        widget = await add_widget(store)
        await store.add_webhook("http://crm.example/hook", "", (events.LEAD_DONE,
                                                                events.ATTEMPT_FINISHED),
                                False, SECRET, 1.0)
        lead = await _lead(store, widget)
        attempt = await store.start_attempt(lead.id, time.time())
        await store.finish_attempt(attempt, _result(False), time.time(), time.time() + 60)
        assert await _types(store) == [events.ATTEMPT_FINISHED]  # subscribed to two only


async def test_an_event_that_fails_rolls_its_change_back(open_store, monkeypatch):
    async with open_store() as store:
        widget = await add_widget(store)
        await store.add_webhook("http://crm.example/hook", "", ("*",), False, SECRET, 1.0)
        lead = await _lead(store, widget)
        attempt = await store.start_attempt(lead.id, time.time())

        async def broken(db, event_type, *args):
            if event_type == events.LEAD_DONE:  # after attempt.finished, in the same commit
                raise RuntimeError("disk full")
            await real(db, event_type, *args)

        real = outbox.emit
        monkeypatch.setattr(outbox, "emit", broken)
        with pytest.raises(RuntimeError):
            await store.finish_attempt(attempt, _result(), time.time(), None)
        assert (await store.get_lead(lead.id)).status == LEAD_CALLING
        assert (await store.attempts_for(lead.id))[0].status == "active"
        assert await _types(store) == [events.LEAD_CREATED]  # no attempt.finished either
        monkeypatch.setattr(outbox, "emit", real)
        await store.finish_attempt(attempt, _result(), time.time(), None)
        assert await _types(store) == [events.LEAD_CREATED, events.ATTEMPT_FINISHED,
                                       events.LEAD_DONE]


async def test_no_endpoint_no_event_and_a_disabled_one_gets_none(open_store):
    async with open_store() as store:
        widget = await add_widget(store)
        await _lead(store, widget)
        endpoint = await store.add_webhook("http://crm.example/hook", "", ("*",), False,
                                           SECRET, 1.0)
        await store.update_webhook(endpoint.id, 2.0, enabled=False)
        await _lead(store, widget, "+48601234568")
        assert await _types(store) == []
        rows = await store._db.execute_fetchall("SELECT COUNT(*) FROM webhook_events")
        assert rows[0][0] == 0


@pytest.mark.sqlite_only  # the intake journal's move
async def test_a_lead_moved_twice_is_created_once(tmp_path):
    """A crash between the store's commit of a move and the journal's forgetting: the next
    move finds the lead there (INSERT OR IGNORE) and writes no second lead.created (SQLite's
    intake journal)."""
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store)
        await store.add_webhook("http://crm.example/hook", "", ("*",), False, SECRET, 1.0)
        lead = await _lead(store, widget)
        from callengine.storage.intake import JOURNAL_COLUMNS, _move_rows

        again, = await store._db.execute_fetchall(
            f"SELECT {', '.join(JOURNAL_COLUMNS)} FROM leads WHERE id = ?", (lead.id,))
        await store._transaction_in_thread(_move_rows, [again])
        assert await _types(store) == [events.LEAD_CREATED]


async def test_recording_ready_and_subject_erased(open_store):
    async with open_store() as store:
        widget = await add_widget(store)
        await store.add_webhook("http://crm.example/hook", "",
                                (events.RECORDING_READY, events.SUBJECT_ERASED), False, SECRET,
                                1.0)
        lead = await _lead(store, widget)
        attempt = await store.start_attempt(lead.id, time.time())
        await store.add_recording("rec1", attempt, "rtp", "k" * 16, time.time(),
                                  sample_rate=8000)
        await store.finish_recording("rec1", status="complete", now=time.time(),
                                     duration_s=3.0, bytes_in=48000, segments=3,
                                     sha256="ab" * 32, problem=None)
        assert await _types(store) == [events.RECORDING_READY]
        await store.purge_leads([lead.id], time.time(), "erasure")
        assert await _types(store) == [events.RECORDING_READY, events.SUBJECT_ERASED]
        payloads = await _payloads(store)
        assert payloads[events.SUBJECT_ERASED]["lead_ids"] == [lead.id]
        assert payloads[events.RECORDING_READY]["bytes"] == 48000
        claimed = await store.claim_deliveries(time.time(), 60, 10)
        assert all(c.phone_e164 is None for c in claimed)  # erased: no number to add
