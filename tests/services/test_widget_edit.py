"""A widget edited, disabled and enabled, and removed, at the services level over a real store:
each change validated whole before anything is written, seen at once by the intake (the
store's config cache is cleared), and audited with what it changed."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from callengine.storage import LeadFilter
from callengine.access import Forbidden, Principal, Role
from callengine.errors import Conflict, InvalidInput, NotFound, WidgetDisabled, WidgetInUse
from callengine.model import Consent, widget_settings_from_input
from callengine.services import Services
from callengine.services.widgets import public_config
from callengine.storage import Store
from callengine.storage.schema import MIGRATIONS, split_statements
from tests.support.engine import DATA_KEY
from tests.support.shop import disabled_long_ago, shop_with_lead

ADMIN = Principal("ops", Role.ADMIN)
SUPERVISOR = Principal("sup", Role.SUPERVISOR)
LEAD = {"phone": "+48 601 234 567", "consent": {"marketing": False, "recording": False},
        "clause_version": "v1"}


@pytest.fixture
async def env(tmp_path):
    """The "shop" widget with one lead, and a fresh widget "spare" without any."""
    async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store:
        lead = await shop_with_lead(store)
        await store.add_widget("spare", "Spare", widget_settings_from_input(
            {"group": "sales", "challenge": "off"}), time.time())
        yield Services(store, on_lead=lambda: None, channel="test"), store, lead


async def entries(store: Store) -> list[tuple[str, str, str]]:
    return [(e.action, e.target, e.detail) for e in await store.audit_entries()]


async def test_edit_merges_the_settings_given_over_the_current_ones(env):
    services, store, _ = env
    before = await services.config.widget(ADMIN, "shop")
    widget = await services.config.edit_widget(
        ADMIN, "shop", name="Shop online", settings={"colour": "#AA0000", "ask_name": True})
    assert widget.name == "Shop online"
    assert widget.settings.colour == "#aa0000" and widget.settings.ask_name is True
    assert widget.settings.allowed_regions == ("PL",)  # kept: not given
    assert widget.public_key == before.public_key
    assert await services.config.widget(ADMIN, "shop") == widget
    assert await store.get_widget_by_key(widget.public_key) == widget  # no stale cache
    [(action, target, detail)] = await entries(store)
    assert (action, target) == ("config.widget.update", "widget:shop")
    assert json.loads(detail) == {"name": "Shop online", "colour": "#aa0000", "ask_name": True}


async def test_an_edit_changing_nothing_writes_and_audits_nothing(env):
    services, store, _ = env
    await services.config.edit_widget(ADMIN, "shop", name="Shop", settings={"group": "sales"})
    assert await entries(store) == []


@pytest.mark.parametrize("kwargs, field", [
    ({"settings": {"colour": "red"}}, "colour"),
    ({"settings": {"nope": 1}}, "nope"),
    ({"settings": {"recording": "on"}}, "recording_notice"),  # the whole is validated
    ({"settings": ["colour"]}, "settings"),
    ({"name": ""}, "name"),
    ({"name": "a\nb"}, "name"),
    ({"enabled": "no"}, "enabled"),
    ({"settings": {"colour": "#000000"}, "enabled": 0}, "enabled"),  # checked before writing
])
async def test_a_refused_edit_writes_nothing(env, kwargs, field):
    services, store, _ = env
    before = await services.config.widget(ADMIN, "shop")
    with pytest.raises(InvalidInput) as refused:
        await services.config.edit_widget(ADMIN, "shop", **kwargs)
    assert refused.value.field == field
    assert await services.config.widget(ADMIN, "shop") == before
    assert await entries(store) == []


async def test_the_group_must_exist_and_only_admins_edit(env):
    services, store, _ = env
    with pytest.raises(NotFound):
        await services.config.edit_widget(ADMIN, "shop", settings={"group": "nobody"})
    with pytest.raises(NotFound):
        await services.config.edit_widget(ADMIN, "nope", name="x")
    with pytest.raises(Forbidden):
        await services.config.edit_widget(SUPERVISOR, "shop", name="x")
    with pytest.raises(Forbidden):
        await services.config.set_widget_enabled(SUPERVISOR, "shop", False)
    with pytest.raises(Forbidden):
        await services.config.remove_widget(SUPERVISOR, "spare")
    assert (await services.config.widget(ADMIN, "shop")).settings.group == "sales"
    assert await entries(store) == []


async def test_a_disabled_widget_takes_no_new_lead_but_its_leads_stay_queued(env):
    services, store, lead = env
    widget = await services.config.set_widget_enabled(ADMIN, "shop", False)
    assert not widget.enabled and widget.disabled_at is not None
    assert public_config(widget, "en")["enabled"] is False
    fresh = await services.leads.widget_for_key(widget.public_key)  # what the intake reads
    assert not fresh.enabled
    with pytest.raises(WidgetDisabled):
        await services.leads.create(fresh, LEAD)
    with pytest.raises(WidgetDisabled):  # the CRM's route too
        await services.leads.create_for(ADMIN, {**LEAD, "widget": "shop"})
    assert [x.id for x in await store.list_leads(LeadFilter(widget_id="shop"))] == [lead.id]
    assert (await store.get_lead(lead.id)).status == "queued"  # still to be called
    assert await services.config.set_widget_enabled(ADMIN, "shop", False) == widget  # no-op
    again = await services.config.set_widget_enabled(ADMIN, "shop", True)
    assert again.enabled and public_config(again, "en")["enabled"] is True
    assert (await services.leads.create(again, {**LEAD, "phone": "+48 601 234 568"})).id
    assert [a for a, _, _ in await entries(store)] == ["config.widget.disable",
                                                       "config.widget.enable"]


async def test_a_widget_with_leads_is_not_removed_and_says_why(env):
    services, store, lead = env
    with pytest.raises(WidgetInUse) as refused:
        await services.config.remove_widget(ADMIN, "shop")
    assert str(refused.value).startswith("widget 'shop' has 1 lead: disable it instead")
    assert (refused.value.leads, refused.value.tombstones) == (1, 0)
    await store.list_leads()  # moved from the intake journal into the store
    await store.purge_leads([lead.id], time.time(), "retention")  # only its tombstone left
    assert await services.config.widget_references(ADMIN, "shop") == (0, 1)
    with pytest.raises(WidgetInUse, match="tombstones of 1 purged lead"):
        await services.config.remove_widget(ADMIN, "shop")
    assert await services.config.widget(ADMIN, "shop")
    assert await entries(store) == []


async def test_a_lead_still_in_the_intake_journal_counts(env):
    services, store, _ = env
    spare = await store.get_widget("spare")
    await store.create_lead(spare, phone_e164="+48601234569", phone_region="PL",
                            phone_kind="mobile", name=None, email=None,
                            consent=Consent(False, False, "v1"), now=time.time())
    with pytest.raises(WidgetInUse, match="has 1 lead"):
        await services.config.remove_widget(ADMIN, "spare")


async def test_a_widget_without_leads_is_removed_with_its_clauses(env):
    services, store, _ = env
    await services.clauses.create(ADMIN, "spare", {
        "language": "en", "version": "1", "text": "We call back.",
        "privacy_url": "https://spare.example/privacy"})
    key = (await store.get_widget("spare")).public_key
    assert await services.config.widget_references(ADMIN, "spare") == (0, 0)
    with pytest.raises(Conflict, match="is enabled: disable it first"):
        await services.config.remove_widget(ADMIN, "spare")
    await services.config.set_widget_enabled(ADMIN, "spare", False)
    with pytest.raises(Conflict, match="disabled only now: it can be removed in 60 s"):
        await services.config.remove_widget(ADMIN, "spare")
    await disabled_long_ago(store, "spare")
    await services.config.remove_widget(ADMIN, "spare")
    with pytest.raises(NotFound):
        await services.config.widget(ADMIN, "spare")
    with pytest.raises(NotFound):
        await services.leads.widget_for_key(key)  # the intake's cache forgot it
    assert await store.list_clauses("spare") == []
    with pytest.raises(NotFound):
        await services.config.remove_widget(ADMIN, "spare")
    assert (await entries(store))[-1] == ("config.widget.remove", "widget:spare", "name=Spare")
    # the id is free again
    await services.config.add_widget(ADMIN, "spare", None, {"group": "sales"})


@pytest.mark.sqlite_only  # a SQLite store from before a migration
async def test_widgets_from_before_the_column_are_enabled(tmp_path):
    """A store made by the migrations before `disabled_at`, with a widget in it: after the
    upgrade the widget reads as enabled, and can be disabled."""
    before = next(i for i, script in enumerate(MIGRATIONS) if "disabled_at" in script)
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:before]:
        for statement in split_statements(script):
            db.execute(statement)
    db.execute("INSERT INTO agent_groups (name, strategy, ring_timeout) VALUES ('sales',"
               " 'ring-all', 20)")
    db.execute("INSERT INTO widgets (id, name, public_key, settings, created_at) VALUES"
               " ('old', 'Old', 'wk_old', ?, 1)", (json.dumps({"group": "sales"}),))
    db.execute(f"PRAGMA user_version = {before}")
    db.commit()
    db.close()
    async with Store.open(path, DATA_KEY) as store:
        assert (await store.get_widget("old")).enabled
        assert not (await store.set_widget_disabled("old", 5.0)).enabled
        assert await store.schema_version() == len(MIGRATIONS)


@pytest.mark.sqlite_only  # reads the SQLite files
async def test_a_lead_journaled_for_a_widget_removed_meanwhile_holds_up_no_other(env,
                                                                                 monkeypatch):
    """The race the removal can't close: a visitor's request read the widget before it went
    and journals its lead after. That lead is dropped (logged) when the journal is moved;
    the leads after it move as ever."""
    from callengine.storage import intake

    services, store, lead = env
    monkeypatch.setattr(intake, "MOVE_GATHER_S", 0.3)  # the mover waits: the removal goes first
    spare = await store.get_widget("spare")
    await store.create_lead(spare, phone_e164="+48601234569", phone_region="PL",
                            phone_kind="mobile", name=None, email=None,
                            consent=Consent(False, False, "v1"), now=time.time())
    async with store._transaction() as db:  # as remove_widget would, had it not seen the lead
        await db.execute("DELETE FROM widgets WHERE id = 'spare'")
    shop = await store.get_widget("shop")
    later = await store.create_lead(shop, phone_e164="+48601234570", phone_region="PL",
                                    phone_kind="mobile", name=None, email=None,
                                    consent=Consent(False, False, "v1"), now=time.time())
    assert sorted(x.id for x in await store.list_leads()) == sorted([lead.id, later.id])
    assert await store.widget_references("spare") == (0, 0)  # nothing left in the journal
