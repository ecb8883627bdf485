"""The intake journal: new leads commit beside the store and move into it off the request's path
(storage.JOURNAL_SUFFIX). A purge batch holding the store's write lock must not hold up intake,
and nothing a visitor was told is queued may be lost or counted twice."""

from __future__ import annotations

import asyncio
import time
import sqlite3

import pytest

from callengine.flow import Strategy
from callengine.model import LEAD_QUEUED, Agent, Consent, widget_settings_from_input
from callengine.errors import RateLimited
from callengine.storage import JOURNAL_SUFFIX, Store
from tests.support.engine import DATA_KEY
from tests.support.intake import count_rows, journal_again, journal_lead_and_die

# The SQLite backend's own machinery (its journal, files and transactions).
pytestmark = pytest.mark.sqlite_only

NUMBER = "+48601234567"
LEAD = dict(phone_e164=NUMBER, phone_region="PL", phone_kind="mobile", name="Anna",
            email=None, consent=Consent(False, True, "v7"))


async def _widget(store: Store, **limits):
    await store.add_agent(Agent("alice", "PJSIP/agent1"))
    await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
    return await store.add_widget("shop", "Shop", widget_settings_from_input(
        {"group": "sales", "allowed_regions": ["PL"], "duplicate_window_s": 0, **limits}),
        time.time())


async def test_a_lead_is_readable_at_once_and_ends_in_the_store(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store)
        lead = await store.create_lead(widget, now=time.time(), **LEAD)
        assert await store.get_lead(lead.id) == lead
        assert [due.id for due in await store.due_leads(time.time() + 1, 10)] == [lead.id]
    assert count_rows(tmp_path / "ce.db", "leads") == 1
    assert count_rows(tmp_path / f"ce.db{JOURNAL_SUFFIX}", "new_leads") == 0


async def test_intake_does_not_wait_for_the_store_write_lock(tmp_path):
    """As while a purge batch holds the store: the lead is accepted; reads of leads wait for
    its move, which happens once the lock is free."""
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store)
        async with store.write_lock:
            lead = await asyncio.wait_for(store.create_lead(widget, now=time.time(), **LEAD), 10)
            reading = asyncio.create_task(store.get_lead(lead.id))
            await asyncio.sleep(0.2)
            assert not reading.done()
            assert count_rows(tmp_path / f"ce.db{JOURNAL_SUFFIX}", "new_leads") == 1
        assert (await asyncio.wait_for(reading, 10)).status == LEAD_QUEUED


async def test_rate_limits_count_leads_not_moved_yet(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store, max_leads_per_number_per_day=2, max_leads_per_hour=3)
        now = time.time()
        await store.create_lead(widget, now=now, **LEAD)  # moved
        await store.get_lead((await store.create_lead(widget, now=now, **LEAD)).id)
        async with store.write_lock:  # nothing moves now
            with pytest.raises(RateLimited, match="this number"):
                await store.create_lead(widget, now=now, **LEAD)
            await store.create_lead(widget, now=now, **{**LEAD, "phone_e164": "+48601000001"})
            with pytest.raises(RateLimited, match="hourly limit"):
                await store.create_lead(widget, now=now, **{**LEAD, "phone_e164": "+48601000002"})
    assert count_rows(tmp_path / "ce.db", "leads") == 3


async def test_a_lead_moved_but_not_yet_forgotten_counts_once(tmp_path):
    """A crash between the move's commit and the journal's delete leaves the lead in both."""
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store, max_leads_per_number_per_day=2)
        first = await store.create_lead(widget, now=time.time(), **LEAD)
        await store.get_lead(first.id)  # moved
        journal_again(tmp_path / "ce.db")
        await store.create_lead(widget, now=time.time(), **LEAD)  # 1 lead so far, not 2
        with pytest.raises(RateLimited):
            await store.create_lead(widget, now=time.time(), **LEAD)
        assert len(await store.leads_for_number(NUMBER)) == 2
    assert count_rows(tmp_path / f"ce.db{JOURNAL_SUFFIX}", "new_leads") == 0


def test_a_lead_journaled_by_a_killed_engine_is_moved_at_the_next_open(tmp_path):
    """The process dies right after the visitor's lead is committed, before its move."""
    async def shop() -> None:
        async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
            await _widget(store)

    asyncio.run(shop())
    lead_id = journal_lead_and_die(tmp_path / "ce.db", "shop", **LEAD)
    assert count_rows(tmp_path / "ce.db", "leads") == 0
    assert count_rows(tmp_path / f"ce.db{JOURNAL_SUFFIX}", "new_leads") == 1

    async def reopen():
        async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
            lead = await store.get_lead(lead_id)
            assert (lead.phone_e164, lead.name, lead.status) == (NUMBER, "Anna", LEAD_QUEUED)
            assert [due.id for due in await store.due_leads(time.time() + 1, 10)] == [lead_id]

    asyncio.run(reopen())
    assert count_rows(tmp_path / f"ce.db{JOURNAL_SUFFIX}", "new_leads") == 0


async def test_erasure_leaves_no_trace_in_the_journal(tmp_path):
    """The journal's log held the lead before its move: erasure must clear it too."""
    from callengine.access import Principal, Role
    from callengine.crypto import FieldCipher
    from callengine.services.subjects import erase_subject

    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store)
        await store.create_lead(widget, now=time.time(), **LEAD)
        await store.create_lead(widget, now=time.time(), **{**LEAD, "phone_e164": "+48601000001"})
        journal = [p for p in tmp_path.glob(f"ce.db{JOURNAL_SUFFIX}*")]
        number_hash = FieldCipher(DATA_KEY).number_hash(NUMBER).encode()
        assert number_hash in b"".join(p.read_bytes() for p in journal)  # the check can see
        await erase_subject(store, NUMBER, Principal("dpo", Role.ADMIN), time.time(), vault=None)
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("ce.db*"))  # the store's too
        assert number_hash not in raw
        assert FieldCipher(DATA_KEY).number_hash("+48601000001").encode() in raw


async def test_a_journal_made_before_the_evidence_columns_gets_them(tmp_path):
    """A journal from before the consent-evidence migration (new_leads without its columns)
    gets them at the next open, and a lead's evidence goes through it into the store."""
    from callengine.storage.intake import EVIDENCE_COLUMNS

    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store)
    journal = sqlite3.connect(tmp_path / f"ce.db{JOURNAL_SUFFIX}")
    for column in EVIDENCE_COLUMNS:
        journal.execute(f"ALTER TABLE new_leads DROP COLUMN {column}")
    journal.close()
    evidence = Consent(False, True, "v7", clause_sha256="ab" * 32, clause_language="pl",
                       notice_version="rec-1", at=5.0, origin="https://shop.example")
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        lead = await store.create_lead(widget, now=time.time(), **{**LEAD, "consent": evidence})
        assert (await store.get_lead(lead.id)).consent == evidence
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        assert (await store.get_lead(lead.id)).consent == evidence  # moved into the store


async def test_two_concurrent_leads_for_the_last_place_of_a_slot(tmp_path):
    """The slot's check runs in the group commit, per lead, counting the batch's earlier rows
    too: of two concurrent requests for the last place exactly one gets it."""
    from callengine.errors import SlotFull

    slot = time.time() + 3600
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store)
        results = await asyncio.gather(*(
            store.create_lead(widget, now=time.time(), scheduled_for=slot, slot_capacity=1,
                              **{**LEAD, "phone_e164": f"+4860123456{n}"})
            for n in range(2)), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["Lead", "SlotFull"]
        assert any(isinstance(r, SlotFull) for r in results)
        assert len(await store.list_leads()) == 1


async def test_a_journal_row_left_behind_never_brings_back_a_purged_lead(tmp_path):
    """A crash between a move's commit and the journal's delete leaves the lead's row in the
    journal; if the lead is erased before the next move, that move must not put it back."""
    database = tmp_path / "ce.db"
    async with Store.open(database, DATA_KEY) as store:
        widget = await _widget(store)
        lead = await store.create_lead(widget, now=time.time(), **LEAD)
        await store.get_lead(lead.id)  # moved
        journal = sqlite3.connect(tmp_path / f"ce.db{JOURNAL_SUFFIX}")
        journal.execute(f"ATTACH DATABASE '{database}' AS s")
        journal.execute("CREATE TEMP TABLE kept AS SELECT * FROM s.leads")  # the row, aside
        await store.purge_leads([lead.id], time.time(), "erasure")
        names = [row[1] for row in journal.execute("PRAGMA main.table_info(new_leads)")]
        shared = [name for name in names if name in
                  {row[1] for row in journal.execute("PRAGMA temp.table_info(kept)")}]
        journal.execute(f"INSERT INTO main.new_leads ({', '.join(shared)})"
                        f" SELECT {', '.join(shared)} FROM kept")
        journal.commit()
        journal.close()
        assert count_rows(tmp_path / f"ce.db{JOURNAL_SUFFIX}", "new_leads") == 1
        await store._move_new_leads()  # what the next open's mover does with the journal
        assert await store.list_leads() == []
        assert count_rows(tmp_path / f"ce.db{JOURNAL_SUFFIX}", "new_leads") == 0
    assert count_rows(database, "leads") == 0
    assert count_rows(database, "lead_tombstones") == 1
