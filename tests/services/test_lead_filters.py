"""Leads.list and Leads.count filtered by widget, status, outcome and creation date, each and
together, over a seeded set (tests/support/lead_filters.py); the filters checked (InvalidInput
naming the field); the listing walks an index, whatever the filters."""

from __future__ import annotations

import sqlite3

import pytest

from callengine.access import Principal, Role
from callengine.errors import InvalidInput
from callengine.model import LEAD_OUTCOMES
from callengine.services import Services
from callengine.storage import LeadFilter, Store
from callengine.storage.queries.leads import _lead_where
from tests.support.engine import DATA_KEY
from tests.support.lead_filters import NEWEST_FIRST, add_widgets, at, seed_leads

VIEWER = Principal("view", Role.VIEWER)

# filters → the names of the leads they take (tests/support/lead_filters.LEADS)
CASES = [
    ({}, "abcdef"),
    ({"widget_id": "desk"}, "cd"),
    ({"widget_id": "nowhere"}, ""),
    ({"status": "queued"}, "de"),  # d: queued again after its attempt; e: never called
    ({"status": "done"}, "abcf"),
    ({"outcome": "connected"}, "ac"),
    ({"outcome": "agents-no-answer"}, "d"),  # a queued lead's last outcome counts
    ({"outcome": "erased"}, ""),
    ({"created_from": "2026-11-02"}, "bcdef"),  # c at 00:00:00 of the 2nd: inclusive
    ({"created_to": "2026-11-02"}, "a"),  # ... and exclusive as `to`
    ({"created_from": "2026-11-02", "created_to": "2026-11-03"}, "bc"),  # b at 23:59:59
    ({"created_from": "2026-11-03T12:00:00+00:00"}, "df"),  # a timestamp: to the second
    ({"created_from": "2026-11-03T13:00:00+01:00"}, "df"),  # with its offset
    ({"created_to": "2026-11-03T12:00:00Z"}, "abce"),
    ({"widget_id": "shop", "status": "done"}, "abf"),
    ({"widget_id": "shop", "outcome": "connected", "created_from": "2026-11-01",
      "created_to": "2026-11-02"}, "a"),
    ({"status": "done", "outcome": "agents-no-answer"}, ""),
    ({"status": "queued", "outcome": "agents-no-answer", "widget_id": "desk"}, "d"),
    ({"widget_id": "desk", "created_from": "2026-11-03"}, "d"),
    ({"outcome": "connected", "created_from": "2026-11-02"}, "c"),
]


@pytest.fixture
async def seeded(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store:
        await add_widgets(store)
        ids = await seed_leads(store)
        yield Services(store, channel="api"), store, ids, tmp_path / "ce.db"


@pytest.mark.parametrize("filters, names", CASES)
async def test_each_filter_and_their_combinations(seeded, filters, names):
    services, _, ids, _ = seeded
    rows = await services.leads.list(VIEWER, **filters, limit=100)
    wanted = [ids[name] for name in NEWEST_FIRST if name in names]
    assert [row["id"] for row in rows] == wanted  # newest first
    assert await services.leads.count(VIEWER, **filters) == len(wanted)


async def test_a_listing_is_a_page_the_count_is_all(seeded):
    services, _, ids, _ = seeded
    rows = await services.leads.list(VIEWER, status="done", limit=2)
    assert [row["id"] for row in rows] == [ids["f"], ids["b"]]
    assert await services.leads.count(VIEWER, status="done") == 4


async def test_the_outcomes_are_the_ones_stored():
    assert LEAD_OUTCOMES == ("connected", "agents-no-answer", "agents-busy", "visitor-busy",
                             "visitor-no-answer", "visitor-unreachable", "failed", "erased")


@pytest.mark.parametrize("filters, field, words", [
    ({"outcome": "nope"}, "outcome", "connected, agents-no-answer"),
    ({"outcome": "Connected"}, "outcome", "or erased"),
    ({"status": "closed"}, "status", "queued, calling or done"),
    ({"created_from": "yesterday"}, "from", "not a date"),
    ({"created_from": "2026-11-02 "}, "from", "not a date"),
    ({"created_to": "2026-13-01"}, "to", "not a date"),
    ({"created_from": "2026-11-02", "created_to": "2026-11-02"}, "to", "later than from"),
    ({"created_from": "2026-11-03", "created_to": "2026-11-02"}, "to", "later than from"),
])
async def test_a_bad_filter_is_refused_naming_its_field(seeded, filters, field, words):
    services, store, _, _ = seeded
    for call in (lambda: services.leads.list(VIEWER, **filters, limit=10),
                 lambda: services.leads.count(VIEWER, **filters)):
        with pytest.raises(InvalidInput) as refused:
            await call()
        assert refused.value.field == field and words in refused.value.message
    assert await store.audit_entries() == []  # nothing read, nothing written


async def test_an_api_listing_audits_its_filters(seeded):
    services, store, _, _ = seeded
    await services.leads.list(VIEWER, widget_id="shop", outcome="connected",
                              created_from="2026-11-01", created_to="2026-11-05", limit=10)
    await services.leads.list(VIEWER, status="queued", limit=10)
    assert [(e.action, e.target, e.detail) for e in await store.audit_entries()] == [
        ("token.use", "leads:1 widget=shop status=* outcome=connected from=2026-11-01"
                      " to=2026-11-05", "leads.list"),
        ("token.use", "leads:2 widget=* status=queued", "leads.list"),  # as it always read
    ]


async def test_the_store_counts_and_lists_with_one_filter(seeded):
    _, store, ids, _ = seeded
    where = LeadFilter(widget_id="shop", created_from=at("2026-11-02 00:00:00"))
    assert [lead.id for lead in await store.list_leads(where)] == [ids[n] for n in "feb"]
    assert await store.count_leads(where) == 3
    assert await store.count_leads() == len(await store.list_leads()) == 6
    assert await store.count_leads(LeadFilter()) == 6


@pytest.mark.parametrize("where", [
    None, LeadFilter(status="done"), LeadFilter(outcome="connected"),
    LeadFilter(created_from=1.0), LeadFilter(created_from=1.0, created_to=2.0),
    LeadFilter(status="done", outcome="connected"),
])
@pytest.mark.sqlite_only  # SQLite's query plan
async def test_a_listing_without_a_widget_walks_the_creation_index(seeded, where):
    """No sort of the whole table for a page (1,000,000 leads: 3-4 s without the index),
    with the store's own WHERE clause (the metrics' leads_outcomes index is not taken)."""
    *_, db = seeded
    where, _ = _lead_where(where, newest_first=True)
    with sqlite3.connect(db) as con:
        plan = con.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM leads {where} ORDER BY created_at DESC LIMIT 5",
            ("x",) * where.count("?")).fetchall()
    details = " | ".join(row[-1] for row in plan)
    assert "leads_created" in details and "TEMP B-TREE" not in details, details
