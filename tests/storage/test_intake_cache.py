"""Intake's cache of subjects (number hash → subject, key) against an erasure made by another
process: the CLI's own Store erases a number while the engine's Store keeps taking leads for
it. Every lead the engine accepted is then either readable with its number under a key that
exists, or erased (a tombstone, reason 'erasure'); none is left unreadable and uncounted, and
the leads taken after the erasure belong to a new subject."""

from __future__ import annotations

import pytest

import asyncio
import sqlite3
import time

from callengine.access import Principal, Role
from callengine.model import ERASED, Agent, Consent, widget_settings_from_input
from callengine.flow import Strategy
from callengine.services import Services
from callengine.storage import Store
from tests.support.engine import DATA_KEY

ANNA = "+48601234567"
LEAD = dict(phone_e164=ANNA, phone_region="PL", phone_kind="mobile", name="Anna",
            email="anna@example.com", consent=Consent(False, True, "v7"))
DPO = Principal("dpo", Role.ADMIN)


@pytest.mark.sqlite_only  # the intake journal's race with an erasure
async def test_a_cli_erasure_while_the_engine_takes_leads_for_the_number(tmp_path):
    database, keystore = tmp_path / "ce.db", tmp_path / "ks.db"
    async with Store.open(database, DATA_KEY, keystore=keystore) as engine:
        await engine.add_agent(Agent("alice", "PJSIP/agent1"))
        await engine.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        widget = await engine.add_widget("shop", "Shop", widget_settings_from_input(
            {"group": "sales", "allowed_regions": ["PL"], "max_leads_per_number_per_day": 100}),
            time.time())
        before = [(await engine.create_lead(widget, now=time.time(), **LEAD)).id
                  for _ in range(3)]
        await engine.list_leads()  # moved into the store: the engine knows the subject now
        during: list[str] = []
        stop = asyncio.Event()

        async def intake() -> None:
            while not stop.is_set() and len(during) < 60:
                during.append((await engine.create_lead(widget, now=time.time(), **LEAD)).id)
                await asyncio.sleep(0.001)

        running = asyncio.create_task(intake())
        await asyncio.sleep(0.02)
        async with Store.open(database, DATA_KEY, keystore=keystore) as cli:
            await Services(cli).subjects.erase(DPO, ANNA)
        await asyncio.sleep(0.02)
        stop.set()
        await running
        after = [(await engine.create_lead(widget, now=time.time(), **LEAD)).id
                 for _ in range(2)]

        stored = {lead.id: lead for lead in await engine.list_leads(limit=1000)}
    db = sqlite3.connect(database)
    erased = {row[0] for row in db.execute(
        "SELECT id FROM lead_tombstones WHERE reason = 'erasure'")}
    subjects = {row[0] for row in db.execute("SELECT DISTINCT subject_id FROM leads")}
    db.close()
    keys = {row[0] for row in sqlite3.connect(keystore).execute(
        "SELECT subject_id FROM subject_keys")}

    assert len(during) > 3
    for lead_id in before + during + after:  # every accepted lead: kept or erased, not both
        assert (lead_id in stored) != (lead_id in erased), lead_id
    assert set(before) <= erased
    assert set(after) <= set(stored)  # taken after the erasure: kept, under a new subject
    assert all(lead.phone_e164 == ANNA and lead.name != ERASED for lead in stored.values())
    assert subjects <= keys  # no lead row names a subject whose key is gone
    assert len(keys) == 1
