"""The HTTP edge with a real store and no Asterisk: validation, problem details, auth, limits."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callengine.flow import Strategy
from callengine.model import Agent, Consent, widget_settings_from_input
from callengine.storage import Store
from tests.support.engine import DATA_KEY
from callengine.services import Services
from callengine.web import WebDeps, make_app

ADMIN = "admin-token-0123456789abcdef"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
MOBILE = "+48 601 234 567"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def env(tmp_path):
    clock = Clock()
    woken = []
    async with Store.open(tmp_path / "t.db", DATA_KEY) as store:
        await store.add_agent(Agent("alice", "PJSIP/agent1"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        settings = widget_settings_from_input(
            {"group": "sales", "allowed_regions": ["PL"], "max_leads_per_number_per_day": 2,
             "duplicate_window_s": 0, "allowed_origins": ["https://shop.example"],
             "challenge": "off"}
        )
        widget = await store.add_widget("shop", "Shop", settings, clock.now)
        app = make_app(WebDeps(Services(store, on_lead=lambda: woken.append(1), clock=clock), ADMIN))
        async with TestClient(TestServer(app)) as client:
            yield client, store, widget, clock, woken


def lead_body(**overrides):
    body = {
        "phone": MOBILE,
        "name": "Ann",
        "consent": {"marketing": False, "recording": True},
        "clause_version": "2026-11",
    }
    body.update(overrides)
    return body


async def test_intake_persists_lead_and_wakes_engine(env):
    client, store, widget, clock, woken = env
    response = await client.post(f"/api/v1/widgets/{widget.public_key}/leads", json=lead_body())
    assert response.status == 201
    data = await response.json()
    assert data["status"] == "queued"
    lead = await store.get_lead(data["id"])
    assert lead.phone_e164 == "+48601234567"
    assert lead.consent.recording is True and lead.consent.clause_version == "2026-11"
    assert woken == [1]
    status = await client.get(data["status_url"])
    assert (await status.json()) == {
        "id": lead.id, "status": "queued", "progress": None, "outcome": None,
        "scheduled_for": None,
    }


@pytest.mark.parametrize(
    "body, status, slug, field",
    [
        (lead_body(phone="+44 909 876 5432"), 422, "number-country-not-allowed", "phone"),
        (lead_body(phone="+48 701 234 567"), 422, "number-type-not-allowed", "phone"),
        (lead_body(phone="+48 801 234 567"), 422, "number-type-not-allowed", "phone"),
        (lead_body(phone="12"), 422, None, "phone"),
        (lead_body(phone=""), 422, "invalid-field", "phone"),
        (lead_body(consent={"marketing": "yes", "recording": True}), 422, "invalid-field", "consent"),
        (lead_body(clause_version=""), 422, "invalid-field", "clause_version"),
        (lead_body(email="not-an-email"), 422, "invalid-field", "email"),
        (lead_body(surprise=1), 422, "invalid-field", "surprise"),
    ],
)
async def test_intake_refuses_bad_input_and_stores_nothing(env, body, status, slug, field):
    client, store, widget, *_ = env
    response = await client.post(f"/api/v1/widgets/{widget.public_key}/leads", json=body)
    assert response.status == status
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["status"] == status and problem["field"] == field
    if slug:
        assert problem["type"].endswith("/" + slug)
    assert "601234567" not in (await response.text()).replace(" ", "")
    assert await store.list_leads() == []


async def test_malformed_json_and_wrong_type(env):
    client, store, widget, *_ = env
    url = f"/api/v1/widgets/{widget.public_key}/leads"
    response = await client.post(url, data="{", headers={"Content-Type": "application/json"})
    assert response.status == 400 and (await response.json())["type"].endswith("malformed-json")
    response = await client.post(url, data="phone=1", headers={"Content-Type": "text/plain"})
    assert response.status == 415
    response = await client.post("/api/v1/widgets/wk_nope/leads", json=lead_body())
    assert response.status == 404 and (await response.json())["type"].endswith("unknown-widget")
    assert await store.list_leads() == []


async def test_rate_limit_per_number(env):
    client, store, widget, clock, _ = env
    url = f"/api/v1/widgets/{widget.public_key}/leads"
    for _ in range(2):
        assert (await client.post(url, json=lead_body())).status == 201
    response = await client.post(url, json=lead_body(phone="0048601234567"))
    assert response.status == 429 and response.headers["Retry-After"] == "86400"
    assert (await response.json())["limit"] == "number"
    assert len(await store.list_leads()) == 2
    clock.now += 86401  # a day later the number may ask again
    assert (await client.post(url, json=lead_body())).status == 201


async def test_rate_limit_per_widget_hour(env):
    client, store, _, clock, _ = env
    settings = widget_settings_from_input(
        {"group": "sales", "allowed_regions": ["PL"], "max_leads_per_hour": 2,
         "challenge": "off"})
    widget = await store.add_widget("busy", "Busy", settings, clock.now)
    url = f"/api/v1/widgets/{widget.public_key}/leads"
    for n in range(2):
        assert (await client.post(url, json=lead_body(phone=f"+4860123450{n}"))).status == 201
    response = await client.post(url, json=lead_body(phone="+48601234509"))
    problem = await response.json()
    assert response.status == 429 and response.headers["Retry-After"] == "3600"
    assert "hourly limit" in problem["detail"] and problem["limit"] == "widget"
    clock.now += 3601  # the next hour may ask again
    assert (await client.post(url, json=lead_body(phone="+48601234509"))).status == 201
    assert len(await store.list_leads()) == 3


async def test_created_lead_is_what_the_store_holds(env):
    _, store, widget, clock, _ = env
    lead = await store.create_lead(
        widget, phone_e164="+48601234567", phone_region="PL", phone_kind="mobile", name="Ann",
        email="ann@example.com", consent=Consent(True, False, "2026-11"), now=clock.now)
    assert lead == await store.get_lead(lead.id)
    assert lead.status == "queued" and lead.next_attempt_at == clock.now


async def test_admin_api_needs_token_and_masks_numbers(env):
    client, store, widget, *_ = env
    created = await client.post(f"/api/v1/widgets/{widget.public_key}/leads", json=lead_body())
    lead_id = (await created.json())["id"]
    response = await client.get(f"/api/v1/leads/{lead_id}")
    assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    response = await client.get(f"/api/v1/leads/{lead_id}",
                                headers={"Authorization": "Bearer wrong"})
    assert response.status == 401
    response = await client.get(f"/api/v1/leads/{lead_id}", headers=ADMIN_HEADERS)
    assert response.status == 200
    data = await response.json()
    assert data["phone"] == "+48 *** *** 567"
    assert "601234567" not in (await response.text())
    listing = await client.get("/api/v1/leads?status=queued", headers=ADMIN_HEADERS)
    assert [lead["id"] for lead in (await listing.json())["leads"]] == [lead_id]
    assert (await client.get("/api/v1/leads?status=bogus", headers=ADMIN_HEADERS)).status == 422


async def test_admin_creates_agents_groups_widgets(env):
    client, store, *_ = env
    r = await client.post("/api/v1/agents", json={"name": "bob", "endpoint": "PJSIP/agent2"},
                          headers=ADMIN_HEADERS)
    assert r.status == 201
    r = await client.post("/api/v1/agents", json={"name": "bob", "endpoint": "PJSIP/agent2"},
                          headers=ADMIN_HEADERS)
    assert r.status == 409
    r = await client.post("/api/v1/agents", json={"name": "Bad Name", "endpoint": "x"},
                          headers=ADMIN_HEADERS)
    assert r.status == 422
    r = await client.post("/api/v1/groups", json={"name": "support", "agents": ["bob", "ghost"]},
                          headers=ADMIN_HEADERS)
    assert r.status == 404
    assert [g.name for g in await store.list_groups()] == ["sales"]  # nothing half-written
    r = await client.post("/api/v1/groups", json={"name": "support", "agents": ["bob"],
                                                  "strategy": "sequential"}, headers=ADMIN_HEADERS)
    assert r.status == 201
    r = await client.post("/api/v1/widgets", json={"id": "blog", "settings": {
        "group": "support", "allowed_regions": ["DE"], "whisper": None}}, headers=ADMIN_HEADERS)
    assert r.status == 201
    assert (await r.json())["public_key"].startswith("wk_")
    r = await client.post("/api/v1/widgets", json={"id": "x", "settings": {
        "group": "support", "allowed_kinds": ["premium_rate"]}}, headers=ADMIN_HEADERS)
    assert r.status == 422 and (await r.json())["field"] == "allowed_kinds"


async def test_cors_only_for_allowed_origins(env):
    client, _, widget, *_ = env
    url = f"/api/v1/widgets/{widget.public_key}/leads"
    ok = await client.options(url, headers={"Origin": "https://shop.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    other = await client.options(url, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_personal_data_is_encrypted_at_rest(env, tmp_path):
    client, store, widget, *_ = env
    body = lead_body(name="Zofia Przykładowa", email="zofia@example.com")
    response = await client.post(f"/api/v1/widgets/{widget.public_key}/leads", json=body)
    assert response.status == 201
    lead = await store.get_lead((await response.json())["id"])
    assert (lead.phone_e164, lead.name, lead.email) == (
        "+48601234567", "Zofia Przykładowa", "zofia@example.com")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("t.db*"))
    for secret in (b"601234567", "Przykładowa".encode(), b"zofia@example.com"):
        assert secret not in raw


async def test_duplicate_within_the_window_is_the_same_lead(env):
    client, store, _, clock, _ = env
    widget = await store.add_widget("dup", "Dup", widget_settings_from_input(
        {"group": "sales", "allowed_regions": ["PL"], "duplicate_window_s": 60,
         "challenge": "off"}), clock.now)
    url = f"/api/v1/widgets/{widget.public_key}/leads"
    first = await client.post(url, json=lead_body())
    assert first.status == 201 and "duplicate" not in await first.json()
    again = await client.post(url, json=lead_body())
    body = await again.json()
    assert again.status == 200 and body["duplicate"] is True
    assert body["id"] == (await first.json())["id"]
    assert len(await store.list_leads()) == 1


async def test_the_client_limit_through_http(env):
    client, store, _, clock, _ = env
    widget = await store.add_widget("cl", "Cl", widget_settings_from_input(
        {"group": "sales", "allowed_regions": ["PL"], "max_numbers_per_client_per_hour": 2,
         "challenge": "off"}),
        clock.now)
    url = f"/api/v1/widgets/{widget.public_key}/leads"
    for n in range(2):
        assert (await client.post(url, json=lead_body(phone=f"+4860123450{n}"))).status == 201
    response = await client.post(url, json=lead_body(phone="+48601234509"))
    problem = await response.json()
    assert response.status == 429 and problem["limit"] == "client"
    assert response.headers["Retry-After"] == str(problem["retry_after"]) == "3600"
    clock.now += 3601
    assert (await client.post(url, json=lead_body(phone="+48601234509"))).status == 201
