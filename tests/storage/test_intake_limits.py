"""Intake's limits (per number across widgets, per client, per widget), its duplicate window,
and the journal's group commit (storage/limits.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from callengine.crypto import FieldCipher
from callengine.errors import RateLimited
from callengine.flow import Strategy
from callengine.model import Agent, Consent, widget_settings_from_input
from callengine.storage import JOURNAL_SUFFIX, Store
from tests.support.engine import DATA_KEY
from tests.support.intake import count_rows

NUMBER = "+48601234567"
LEAD = dict(phone_e164=NUMBER, phone_region="PL", phone_kind="mobile", name="Anna",
            email=None, consent=Consent(False, True, "v7"))
NOW = 1_796_000_000.0


def lead(k: int | None = None, **extra):
    return {**LEAD, **({} if k is None else {"phone_e164": f"+48601{k:06d}"}), **extra}


async def _widget(store: Store, key: str = "shop", **settings):
    if not await store.list_agents():
        await store.add_agent(Agent("alice", "PJSIP/agent1"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
    return await store.add_widget(key, key.title(), widget_settings_from_input(
        {"group": "sales", "allowed_regions": ["PL"], "duplicate_window_s": 0, **settings}),
        NOW)


async def test_per_number_windows_and_computed_retry_after(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store, max_leads_per_number_per_15min=2)
        await store.create_lead(widget, now=NOW, **lead())
        await store.create_lead(widget, now=NOW + 100, **lead())
        with pytest.raises(RateLimited) as refused:
            await store.create_lead(widget, now=NOW + 200, **lead())
        assert refused.value.limit == "number"
        assert refused.value.retry_after_s == 700  # the first lead leaves the 15 min at NOW+900
        await store.create_lead(widget, now=NOW + 901, **lead())


async def test_per_number_across_widgets_takes_the_strictest_maximum(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        strict = await _widget(store, "strict", max_leads_per_number_per_day=2)
        loose = await _widget(store, "loose", max_leads_per_number_per_day=10)
        await store.create_lead(strict, now=NOW, **lead())
        await store.create_lead(loose, now=NOW + 1000, **lead())
        # two leads of the number in the day, one of them to a widget that allows 2: refused
        # on the loose widget as well
        for widget in (loose, strict):
            with pytest.raises(RateLimited) as refused:
                await store.create_lead(widget, now=NOW + 2000, **lead())
            assert refused.value.limit == "number"
        # another number is not concerned; the loose widget alone allows its 10
        for t in range(9):
            await store.create_lead(loose, now=NOW + 2000 + 1000 * t, **lead(7))


async def test_per_client_distinct_numbers_and_the_widget_stays_open(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store, max_numbers_per_client_per_hour=3,
                               max_numbers_per_client_per_day=4, max_leads_per_hour=5)
        for k in range(3):
            await store.create_lead(widget, now=NOW + k, client="203.0.113.9", **lead(k))
        await store.create_lead(widget, now=NOW + 10, client="203.0.113.9", **lead(0))  # seen
        with pytest.raises(RateLimited) as refused:
            await store.create_lead(widget, now=NOW + 20, client="203.0.113.9", **lead(3))
        assert refused.value.limit == "client"
        assert refused.value.retry_after_s == 3600 - 19  # when lead(1)'s hour ends
        # one client can't lock the widget: everyone else still gets through
        await store.create_lead(widget, now=NOW + 30, client="198.51.100.1", **lead(50))
        with pytest.raises(RateLimited) as refused:
            await store.create_lead(widget, now=NOW + 40, client="198.51.100.2", **lead(51))
        # all five in one minute, [NOW-20, NOW+40): it leaves the hour with its newest lead
        assert refused.value.limit == "widget" and refused.value.retry_after_s == 3590
        # a day's maximum: after the hour, one more number, then none
        await store.create_lead(widget, now=NOW + 3700, client="203.0.113.9", **lead(3))
        with pytest.raises(RateLimited, match="per day"):
            await store.create_lead(widget, now=NOW + 3800, client="203.0.113.9", **lead(4))


async def test_an_ipv6_client_is_its_slash_64(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store, max_numbers_per_client_per_hour=2)
        await store.create_lead(widget, now=NOW, client="2001:db8:1:2::1", **lead(1))
        await store.create_lead(widget, now=NOW, client="2001:db8:1:2:ffff::9", **lead(2))
        with pytest.raises(RateLimited, match="address"):
            await store.create_lead(widget, now=NOW, client="2001:db8:1:2:abcd::1", **lead(3))
        await store.create_lead(widget, now=NOW, client="2001:db8:1:3::1", **lead(3))  # another


def test_the_client_hash_is_keyed_and_never_the_address():
    cipher = FieldCipher(DATA_KEY)
    for address in ("203.0.113.9", "2001:db8:1:2::1", "::ffff:203.0.113.9"):
        hashed = cipher.client_hash(address)
        assert hashed and address not in hashed and "203" not in hashed.replace("", " ")[:0]
        assert "203.0.113" not in hashed and "2001" not in hashed
    assert cipher.client_hash("::ffff:203.0.113.9") == cipher.client_hash("203.0.113.9")
    assert cipher.client_hash("2001:db8:1:2::1") == cipher.client_hash("2001:db8:1:2:9::")
    assert cipher.client_hash("2001:db8:1:2::1") != cipher.client_hash("2001:db8:1:3::1")
    assert FieldCipher(bytes(32)).client_hash("203.0.113.9") != cipher.client_hash("203.0.113.9")
    assert cipher.client_hash(None) is None and cipher.client_hash("not-an-ip") is None


async def test_the_client_address_is_not_stored(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store)
        await store.create_lead(widget, now=time.time(), client="203.0.113.77", **lead())
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("ce.db*"))
    assert b"203.0.113.77" not in raw and b"203.0.113" not in raw


async def test_the_duplicate_window_gives_the_same_lead_back(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store, duplicate_window_s=60)
        other = await _widget(store, "other", duplicate_window_s=60)
        first = await store.create_lead(widget, now=NOW, **lead())
        again = await store.create_lead(widget, now=NOW + 59, **lead())
        assert again.id == first.id and again.duplicate and not first.duplicate
        assert (await store.create_lead(other, now=NOW + 59, **lead())).id != first.id
        later = await store.create_lead(widget, now=NOW + 61, **lead())
        assert later.id != first.id and not later.duplicate
        assert len(await store.leads_for_number(NUMBER)) == 3


@pytest.mark.sqlite_only  # the intake journal's own machinery
async def test_group_commit_n_concurrent_leads_n_rows_durable(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store, max_leads_per_hour=1000)
        async with store.write_lock:  # nothing moves: the rows are in the journal
            leads = await asyncio.gather(*(store.create_lead(widget, now=NOW, **lead(k))
                                           for k in range(200)))
            # each answered only after its commit: another connection sees every one
            assert count_rows(tmp_path / f"ce.db{JOURNAL_SUFFIX}", "new_leads") == 200
        assert len({x.id for x in leads}) == 200
    assert count_rows(tmp_path / "ce.db", "leads") == 200


async def test_under_concurrency_a_limit_lets_exactly_its_maximum_through(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store, max_leads_per_hour=37)
        done = await asyncio.gather(*(store.create_lead(widget, now=NOW, **lead(k))
                                      for k in range(100, 200)), return_exceptions=True)
        assert sum(not isinstance(x, Exception) for x in done) == 37
        assert all(isinstance(x, RateLimited) for x in done if isinstance(x, Exception))
        same = await _widget(store, "same", max_leads_per_number_per_15min=5)
        done = await asyncio.gather(*(store.create_lead(same, now=NOW, **lead(9))
                                      for _ in range(30)), return_exceptions=True)
        assert sum(not isinstance(x, Exception) for x in done) == 5
        assert await store.count_leads() == 42


@pytest.mark.sqlite_only  # the intake journal's own machinery
async def test_one_bad_row_in_a_batch_does_not_fail_the_others(tmp_path):
    import callengine.storage.intake as intake

    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store)
        await store._journal.execute(  # a row holding the id the first lead will get
            "INSERT INTO new_leads (id, widget_id, subject_id, created_at)"
            " VALUES ('clash', ?, 'x', ?)", (widget.id, NOW))
        ids, real = iter(["clash"]), intake.uuid7
        intake.uuid7 = lambda: next(ids, None) or real()
        try:
            async with store.write_lock:  # nothing moves (the dummy row can't)
                done = await asyncio.gather(*(store.create_lead(widget, now=NOW, **lead(k))
                                              for k in range(10)), return_exceptions=True)
                await store._journal.execute("DELETE FROM new_leads WHERE id = 'clash'")
        finally:
            intake.uuid7 = real
        assert isinstance(done[0], sqlite3.IntegrityError)
        assert all(not isinstance(x, Exception) for x in done[1:])
        assert len({x.id for x in done[1:]}) == 9
        # the refused row counts nowhere: its number may ask again at once
        await store.create_lead(widget, now=NOW, **lead(0))
    assert count_rows(tmp_path / "ce.db", "leads") == 10


@pytest.mark.sqlite_only  # the intake journal's own machinery
async def test_counters_are_seeded_from_the_store_leads_of_the_last_day(tmp_path):
    now = time.time()
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await _widget(store, max_leads_per_number_per_day=2)
        await store.create_lead(widget, now=now, **lead())
        await store.create_lead(widget, now=now + 1, **lead())
    db = sqlite3.connect(tmp_path / f"ce.db{JOURNAL_SUFFIX}")  # as a journal made before them
    for table in ("intake_counts", "intake_client_numbers", "intake_recent"):
        db.execute(f"DROP TABLE {table}")
    db.commit()
    db.close()
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        with pytest.raises(RateLimited, match="this number"):
            await store.create_lead(widget, now=now + 2, **lead())
