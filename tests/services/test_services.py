"""The use cases at the services level, with a real store and vault and no edge: each act does
all of its parts together (permission, effect, audit entry), once."""

from __future__ import annotations

import time

import pytest

from callengine import crypto
from callengine.access import Forbidden, Principal, Role
from callengine.errors import ChallengeFailed, InvalidInput, NotFound, UnknownWidget
from callengine.model import (
    LEAD_QUEUED,
    RECORDING_DELETED,
    lead_from_input,
    widget_settings_from_input,
)
from callengine.numbers import NumberRejected
from callengine.recordings import RecordingVault
from callengine.services import Services
from callengine.storage import KeyStore, Store
from tests.support.engine import DATA_KEY
from tests.support.recordings import seed_recording, two_tones
from tests.support.shop import shop_with_lead
from tests.support.widget import solution_payload

ADMIN = Principal("ops", Role.ADMIN)
SUPERVISOR = Principal("sup", Role.SUPERVISOR)
VIEWER = Principal("view", Role.VIEWER)
NOW = 1_800_000_000.0


@pytest.fixture
async def env(tmp_path):
    """Services over a store holding the "shop" widget, one lead and one recording of it."""
    private, public = crypto.generate_recipient_keypair()
    (tmp_path / "recordings").mkdir()
    woken = []
    async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store, \
            KeyStore.open(tmp_path / "ks.db") as keystore:
        vault = RecordingVault(tmp_path / "recordings", keystore, [private])
        lead = await shop_with_lead(store)
        attempt = await store.start_attempt(lead.id, NOW)
        recording_id = await seed_recording(store, vault, attempt, public, two_tones(1, 8000),
                                            sample_rate=8000)
        services = Services(store, vault=vault, clock=lambda: NOW,
                            on_lead=lambda: woken.append(1), channel="test")
        yield services, store, keystore, lead, recording_id, woken


async def actions(store: Store) -> list[str]:
    return [e.action for e in await store.audit_entries()]


async def test_delete_recording_shreds_marks_and_audits_together(env, tmp_path):
    services, store, keystore, lead, recording_id, _ = env
    with pytest.raises(Forbidden):
        await services.recordings.delete(SUPERVISOR, recording_id)
    assert await keystore.get(recording_id) is not None and await actions(store) == []
    assert await services.recordings.delete(ADMIN, recording_id) == 1
    assert await keystore.get(recording_id) is None  # the shred
    assert not (tmp_path / "recordings" / f"{recording_id}.cerec").exists()
    assert (await store.get_recording(recording_id)).status == RECORDING_DELETED
    entries = await store.audit_entries()
    assert [(e.action, e.actor, e.target, e.detail) for e in entries] == [
        ("recordings.delete", "ops", f"recording:{recording_id}", f"lead:{lead.id}")]
    with pytest.raises(NotFound):  # a tombstone plays nothing
        await services.recordings.play(ADMIN, recording_id)


async def test_play_audits_once_it_opens(env):
    services, store, _, _, recording_id, _ = env
    plain = await services.recordings.play(SUPERVISOR, recording_id)
    assert plain.sample_rate == 8000 and plain.size == 8000 * 2
    assert await actions(store) == ["recordings.play"]
    with pytest.raises(Forbidden):
        await services.recordings.play(VIEWER, recording_id)
    assert await actions(store) == ["recordings.play"]


async def test_unmask_is_checked_and_audited_once(env):
    services, store, _, lead, _, _ = env
    masked = await services.leads.detail(VIEWER, lead.id)
    assert masked["phone"] == "+48 *** *** 567" and await actions(store) == []
    with pytest.raises(Forbidden):
        await services.leads.detail(VIEWER, lead.id, unmask=True)
    assert await actions(store) == []
    shown = await services.leads.detail(SUPERVISOR, lead.id, unmask=True)
    assert shown["phone"] == "+48601234567"
    entries = await store.audit_entries()
    assert [(e.action, e.target, e.detail) for e in entries] == [
        ("numbers.unmask", f"lead:{lead.id}", "test")]
    listing = await services.leads.list(SUPERVISOR, widget_id=None, status=None, limit=10,
                                        unmask=True)
    assert [row["phone"] for row in listing] == ["+48601234567"]
    assert await actions(store) == ["numbers.unmask", "numbers.unmask"]


async def test_lead_detail_has_one_shape(env):
    services, _, _, lead, _, _ = env
    view = await services.leads.detail(ADMIN, lead.id)
    assert view["id"] == lead.id and view["status"] != LEAD_QUEUED  # an attempt started
    (attempt,) = view["attempts_detail"]
    assert set(attempt) == {"number", "status", "outcome", "q850", "cause", "agent",
                            "agent_ring_s", "visitor_ring_s", "talk_s", "started_at",
                            "ended_at", "acceptances"}


async def test_create_lead_validates_queues_and_wakes(env):
    services, store, _, _, _, woken = env
    widget = await store.get_widget("shop")
    with pytest.raises(UnknownWidget):
        await services.leads.widget_for_key("nope")
    body = {"phone": "+48 601 000 111", "consent": {"marketing": True, "recording": False},
            "clause_version": "v2"}
    with pytest.raises(NumberRejected) as refused:
        await services.leads.create(widget, {**body, "phone": "+49 1512 3456789"})
    assert refused.value.code == "country-not-allowed" and woken == []
    lead = await services.leads.create(widget, body)
    assert lead.status == LEAD_QUEUED and lead.created_at == NOW and woken == [1]
    assert (await store.get_lead(lead.id)).consent.clause_version == "v2"


def test_lead_from_input_names_the_bad_field():
    policy = widget_settings_from_input({"group": "g", "allowed_regions": ["PL"]}).number_policy()
    good = {"phone": "601 234 567", "name": " Ann ", "consent":
            {"marketing": False, "recording": True}, "clause_version": "2026-11"}
    parsed = lead_from_input({**good, "phone": "+48 601 234 567"}, policy)
    assert parsed.number.e164 == "+48601234567" and parsed.name == "Ann"
    assert parsed.consent.recording and parsed.email is None
    for bad, field in [({"extra": 1}, "extra"), ({"phone": ""}, "phone"),
                       ({"consent": {"marketing": True}}, "consent"),
                       ({"clause_version": "no spaces"}, "clause_version"),
                       ({"name": "a\nb"}, "name"), ({"email": "ann@"}, "email")]:
        with pytest.raises(InvalidInput) as error:
            lead_from_input({**good, "phone": "+48 601 234 567", **bad}, policy)
        assert error.value.field == field
    with pytest.raises(NumberRejected):  # national format without a default region
        lead_from_input(good, policy)


async def test_tokens_are_audited_and_resolve_to_their_role(env):
    services, store, _, _, _, _ = env
    with pytest.raises(Forbidden):
        await services.tokens.create(SUPERVISOR, "t1", "viewer")
    made = await services.tokens.create(ADMIN, "t1", "viewer")
    assert await services.tokens.principal_for(made.token) == Principal("t1", Role.VIEWER)
    await services.tokens.revoke(ADMIN, "t1")
    assert await services.tokens.principal_for(made.token) is None
    assert await actions(store) == ["tokens.create", "tokens.revoke"]
    check = await services.audit.verify()
    assert len(check.entries) == 2 and check.problem is None


async def test_widget_leads_need_the_challenge_the_crm_does_not(env):
    services, store, _, _, _, _ = env
    settings = widget_settings_from_input({"group": "sales", "allowed_regions": ["PL"]})
    widget = await store.add_widget("guarded", "Guarded", settings, NOW)
    body = {"phone": "+48 601 000 222", "consent": {"marketing": False, "recording": False},
            "clause_version": "v1"}
    with pytest.raises(ChallengeFailed):
        await services.leads.create(widget, body)
    payload = solution_payload(services.leads.challenge(widget))
    assert (await services.leads.create(widget, {**body, "altcha": payload})).status == "queued"
    with pytest.raises(ChallengeFailed):  # once only
        await services.leads.create(widget, {**body, "phone": "+48 601 000 223",
                                             "altcha": payload})
    _, lead = await services.leads.create_for(
        ADMIN, {**body, "phone": "+48 601 000 224", "widget": "guarded"})
    assert lead.status == "queued"


async def test_the_challenge_key_is_configured_or_derived(tmp_path):
    async with Store.open(tmp_path / "a.db", DATA_KEY) as store:
        derived = Services(store).leads.challenge
        configured = Services(store, challenge_key=b"k" * 32).leads.challenge
        widget = await shop_with_lead(store)
        payload = solution_payload(derived(widget))
        other = Services(store, challenge_key=b"k" * 32)
        with pytest.raises(ChallengeFailed):
            other.context.challenges.redeem(payload, NOW)
        Services(store).context.challenges.redeem(payload, time.time())  # same derived key
        assert configured(widget)["signature"] != derived(widget)["signature"]
