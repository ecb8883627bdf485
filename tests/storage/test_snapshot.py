"""A backup's snapshot of the database: the leads still in the intake journal are in it, once
each, and a lead purged or erased by the time of the copy is not brought back."""

from __future__ import annotations

import pytest

import asyncio
import sqlite3
import time

from callengine.crypto import FieldCipher
from callengine.model import LEAD_CALLING
from callengine.storage import JOURNAL_SUFFIX, Store
from callengine.storage.schema import MIGRATIONS, split_statements
from callengine.storage.snapshot import snapshot
from tests.storage.test_intake_journal import LEAD, NUMBER, _widget
from tests.support.intake import count_rows
from tests.support.engine import DATA_KEY
from tests.support.intake import journal_again

# The SQLite backend's own machinery (its journal, files and transactions).
pytestmark = pytest.mark.sqlite_only


async def test_a_lead_only_in_the_journal_is_in_the_snapshot(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store)
        moved = await store.create_lead(widget, now=time.time(), **LEAD)
        await store.get_lead(moved.id)
        async with store.write_lock:  # the mover can't take the next one in
            journaled = await store.create_lead(
                widget, now=time.time(), **{**LEAD, "phone_e164": "+48601000001"})
            assert count_rows(tmp_path / f"ce.db{JOURNAL_SUFFIX}", "new_leads") == 1
            data = await asyncio.to_thread(snapshot, tmp_path / "ce.db")
    (tmp_path / "copy.db").write_bytes(data)
    async with Store.open(tmp_path / "copy.db", DATA_KEY, keystore=tmp_path / "ce.db-keys") as copy:
        assert await copy.get_lead(journaled.id) == journaled
        assert await copy.get_lead(moved.id) == moved
        assert [lead.id for lead in await copy.due_leads(time.time() + 1, 10)] == [
            moved.id, journaled.id]


async def test_a_lead_moved_but_still_journaled_is_the_stores(tmp_path):
    """The journal's row of a lead that moved (and is being called) adds nothing."""
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store)
        lead = await store.create_lead(widget, now=time.time(), **LEAD)
        await store.start_attempt(lead.id, time.time())
        journal_again(tmp_path / "ce.db")
        data = await asyncio.to_thread(snapshot, tmp_path / "ce.db")
    (tmp_path / "copy.db").write_bytes(data)
    assert count_rows(tmp_path / "copy.db", "leads") == 1
    async with Store.open(tmp_path / "copy.db", DATA_KEY, keystore=tmp_path / "ce.db-keys") as copy:
        assert (await copy.get_lead(lead.id)).status == LEAD_CALLING


async def test_a_lead_erased_after_the_journal_was_read_stays_erased(tmp_path):
    """As if the journal was read before the mover let go of the lead, and the lead was
    erased before the store was copied: its tombstone is in the copy, so it stays out."""
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store)
        lead = await store.create_lead(widget, now=time.time(), **LEAD)
        await store.get_lead(lead.id)
        journal_again(tmp_path / "ce.db")
        await store.purge_leads([lead.id], time.time(), "erasure")
        data = await asyncio.to_thread(snapshot, tmp_path / "ce.db")
    assert _number_hash(NUMBER) not in data
    (tmp_path / "copy.db").write_bytes(data)
    assert count_rows(tmp_path / "copy.db", "leads") == 0
    assert count_rows(tmp_path / "copy.db", "lead_tombstones") == 1


def test_a_store_without_a_journal(tmp_path):
    """A database no Store opened since journals came (or restored from a backup)."""
    db = sqlite3.connect(tmp_path / "ce.db")
    for script in MIGRATIONS:
        for statement in split_statements(script):
            db.execute(statement)
    db.execute("INSERT INTO agents (name, endpoint) VALUES ('alice', 'PJSIP/agent1')")
    db.commit()
    db.close()
    (tmp_path / "copy.db").write_bytes(snapshot(tmp_path / "ce.db"))
    assert count_rows(tmp_path / "copy.db", "agents") == 1
    assert not (tmp_path / f"ce.db{JOURNAL_SUFFIX}").exists()


def _number_hash(e164: str) -> bytes:
    return FieldCipher(DATA_KEY).number_hash(e164).encode()

