"""The widget's routes: its script, its configuration per language, its challenge, its lead's
live progress; CORS for an allowed origin and 403 for another on every widget route."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callengine.errors import InvalidInput
from callengine.flow import Outcome, Result, Strategy
from callengine.appearance import WIDGET_TEXT_KEYS
from callengine.checks import is_one_line
from callengine.model import Agent, widget_settings_from_input
from callengine.services import Services
from callengine.services.widget_texts import BUILT_IN
from callengine.storage import Store
from callengine.web import WebDeps, make_app
from callengine.web import events as event_routes
from tests.support.engine import DATA_KEY
from tests.support.widget import solve_challenge
from tests.web.test_web import ADMIN, Clock, lead_body

SHOP = "https://shop.example"
OTHER = "+48 601 234 568"


@pytest.fixture
async def env(tmp_path):
    clock = Clock()
    async with Store.open(tmp_path / "t.db", DATA_KEY) as store:
        await store.add_agent(Agent("alice", "PJSIP/agent1"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        settings = widget_settings_from_input({
            "group": "sales", "allowed_regions": ["PL"], "default_region": "PL",
            "allowed_origins": [SHOP], "max_leads_per_number_per_day": 50,
            "texts": {"pl": {"button": "Oddzwońcie"}, "de": {"button": "Rückruf"}},
            "ask_name": True, "colour": "#AA0000", "position": "bottom-left"})
        widget = await store.add_widget("shop", "Shop", settings, clock.now)
        app = make_app(WebDeps(Services(store, clock=clock), ADMIN))
        async with TestClient(TestServer(app)) as client:
            yield client, store, widget, clock


def config_url(widget, lang=None):
    return f"/api/v1/widgets/{widget.public_key}/config" + (f"?lang={lang}" if lang else "")


@pytest.mark.parametrize("lang, language, button, submit", [
    ("pl", "pl", "Oddzwońcie", "Zadzwońcie"),  # Polish, with the widget's override
    ("pl-PL", "pl", "Oddzwońcie", "Zadzwońcie"),  # the primary subtag
    ("de", "de", "Rückruf", "Call me"),  # only overrides: the rest in English
    ("xx", "en", "Call me back", "Call me"),  # unknown: English
    (None, "en", "Call me back", "Call me"),
])
async def test_config_per_language(env, lang, language, button, submit):
    client, _, widget, _ = env
    response = await client.get(config_url(widget, lang), headers={"Origin": SHOP})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    config = await response.json()
    assert config["language"] == language
    assert config["texts"]["button"] == button and config["texts"]["submit"] == submit
    assert config["colour"] == "#aa0000" and config["position"] == "bottom-left"
    assert config["ask_name"] is True and config["ask_email"] is False
    assert config["challenge"] == "on" and config["recording"] == "off"
    assert config["default_region"] == "PL" and config["allowed_regions"] == ["PL"]
    assert config["countdown_s"] == 30 and config["open_after_s"] is None
    assert config["endpoints"]["leads"] == f"/api/v1/widgets/{widget.public_key}/leads"


async def test_config_from_another_origin_is_refused(env):
    client, _, widget, _ = env
    response = await client.get(config_url(widget), headers={"Origin": "https://evil.example"})
    assert response.status == 403
    assert response.content_type == "application/problem+json"
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("settings", [
    {"challenge": "maybe"}, {"ask_name": "yes"}, {"countdown_s": -1}, {"colour": "red"},
    {"position": "top"}, {"open_after_s": "5"}, {"exit_intent": 1},
    {"texts": {"english": {"button": "x"}}}, {"texts": {"en": {"nope": "x"}}},
    {"texts": {"en": {"button": "a\nb"}}}, {"texts": {"en": {"button": "x" * 301}}},
    {"texts": {"en": {"button": 3}}}, {"texts": ["en"]},
])
def test_appearance_settings_are_validated(settings):
    with pytest.raises(InvalidInput):
        widget_settings_from_input({"group": "g", **settings})


def test_appearance_settings_round_trip():
    s = widget_settings_from_input({"group": "g", "texts": {"en": {"title": "Hi"}},
                                    "open_after_s": 10, "exit_intent": True})
    assert widget_settings_from_input(s.to_json()) == s


async def test_script_is_served_gzipped_with_etag(env):
    client, _, _, _ = env
    response = await client.get("/widget.js", headers={"Accept-Encoding": "gzip"},
                                auto_decompress=False)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    body = gzip.decompress(await response.read())
    etag = response.headers["ETag"]
    plain = await client.get("/widget.js", headers={"Accept-Encoding": "identity"})
    assert await plain.read() == body and "Content-Encoding" not in plain.headers
    assert plain.headers["ETag"] != etag
    for tag in (etag, plain.headers["ETag"]):
        again = await client.get("/widget.js", headers={"If-None-Match": tag})
        assert again.status == 304 and await again.read() == b""


def leads_url(widget):
    return f"/api/v1/widgets/{widget.public_key}/leads"


async def refused(client, store, widget, body, slug):
    response = await client.post(leads_url(widget), json=body, headers={"Origin": SHOP})
    assert response.status == 422, await response.text()
    assert response.content_type == "application/problem+json"
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    problem = await response.json()
    assert problem["type"].endswith("/" + slug), problem
    assert await store.list_leads(limit=100) == []  # nothing written
    return problem


def tampered(payload: str) -> str:
    data = json.loads(base64.b64decode(payload))
    data["number"] += 1
    return base64.b64encode(json.dumps(data).encode()).decode()


async def test_challenge_is_required_when_on(env):
    client, store, widget, clock = env
    challenge = await client.get(f"/api/v1/widgets/{widget.public_key}/challenge",
                                 headers={"Origin": SHOP})
    assert challenge.status == 200
    assert challenge.headers["Access-Control-Allow-Origin"] == SHOP
    assert {"algorithm", "challenge", "maxNumber", "salt", "signature"} <= set(
        await challenge.json())
    solved = await solve_challenge(client, widget.public_key)
    for altcha in (None, "", "not base64!", base64.b64encode(b"[1]").decode(),
                   base64.b64encode(b'{"algorithm": "SHA-256"}').decode(), tampered(solved),
                   123, {"number": 1}):
        body = lead_body() if altcha is None else lead_body(altcha=altcha)
        await refused(client, store, widget, body, "challenge-failed")
    clock.now += 301  # past the challenge's expiry
    await refused(client, store, widget, lead_body(altcha=solved), "challenge-failed")
    clock.now -= 301
    response = await client.post(leads_url(widget), json=lead_body(altcha=solved),
                                 headers={"Origin": SHOP})
    assert response.status == 201, await response.text()
    created = await response.json()
    assert created["events_url"] == f"{leads_url(widget)}/{created['id']}/events"
    again = await client.post(leads_url(widget), json=lead_body(altcha=solved, phone=OTHER))
    assert again.status == 422 and (await again.json())["type"].endswith("/challenge-failed")
    assert len(await store.list_leads(limit=100)) == 1


async def test_a_refused_lead_does_not_spend_the_challenge(env):
    client, store, widget, _ = env
    solved = await solve_challenge(client, widget.public_key)
    await refused(client, store, widget, lead_body(altcha=solved, phone="+49 1512 3456789"),
                  "number-country-not-allowed")
    response = await client.post(leads_url(widget), json=lead_body(altcha=solved))
    assert response.status == 201, await response.text()


async def test_honeypot_is_refused(env):
    client, store, widget, _ = env
    solved = await solve_challenge(client, widget.public_key)
    problem = await refused(client, store, widget, lead_body(altcha=solved, website="x.com"),
                            "invalid-field")
    assert problem["field"] == "website"
    response = await client.post(leads_url(widget), json=lead_body(altcha=solved, website=""))
    assert response.status == 201, await response.text()


async def test_challenge_off_needs_none(env):
    client, store, _, clock = env
    settings = widget_settings_from_input({"group": "sales", "allowed_regions": ["PL"],
                                           "challenge": "off"})
    open_widget = await store.add_widget("open", "Open", settings, clock.now)
    response = await client.post(leads_url(open_widget), json=lead_body())
    assert response.status == 201, await response.text()


async def read_events(response, until_eof=True):
    """The stream's events as (name, data) pairs, comments as ("comment", text)."""
    events, name = [], None
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith(":"):
            events.append(("comment", line[1:].strip()))
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


async def posted_lead(client, widget):
    solved = await solve_challenge(client, widget.public_key)
    response = await client.post(leads_url(widget), json=lead_body(altcha=solved))
    assert response.status == 201, await response.text()
    return await response.json()


async def test_events_follow_a_lead_until_done(env, monkeypatch):
    client, store, widget, clock = env
    monkeypatch.setattr(event_routes, "POLL_S", 0.02)
    lead = await posted_lead(client, widget)

    async def engine():  # what the engine writes as the call goes
        await asyncio.sleep(0.15)
        attempt = await store.start_attempt(lead["id"], clock.now)
        for progress, connected in (("ringing-agents", False), ("connected", True)):
            await asyncio.sleep(0.15)
            await store.set_progress(lead["id"], progress, connected, attempt.id, clock.now)
        await asyncio.sleep(0.15)
        await store.finish_attempt(attempt, Result(Outcome.CONNECTED, connected=True),
                                   clock.now, retry_at=None)

    driver = asyncio.create_task(engine())
    response = await client.get(lead["events_url"], headers={"Origin": SHOP})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    events = await asyncio.wait_for(read_events(response), 10)
    await driver
    assert all(name == "progress" for name, _ in events)
    stages = [(data["status"], data["progress"]) for _, data in events]
    assert stages[0][0] == "queued" and stages[-1][0] == "done"
    assert ("calling", "ringing-agents") in stages and ("calling", "connected") in stages
    assert events[-1][1]["outcome"] == "connected"
    assert set(events[0][1]) == {"status", "progress", "outcome", "scheduled_for"}


async def test_events_heartbeat_and_end_with_the_server(env, monkeypatch):
    client, _, widget, _ = env
    monkeypatch.setattr(event_routes, "POLL_S", 0.02)
    monkeypatch.setattr(event_routes, "HEARTBEAT_S", 0.05)
    lead = await posted_lead(client, widget)
    response = await client.get(lead["events_url"])
    await asyncio.sleep(0.3)
    await client.server.runner.shutdown()  # the app's shutdown: open streams end
    events = await asyncio.wait_for(read_events(response), 5)
    assert events[0][0] == "progress" and ("comment", "heartbeat") in events


async def test_events_of_an_unknown_lead_or_origin_are_problems(env):
    client, _, widget, _ = env
    lead = await posted_lead(client, widget)
    missing = await client.get(f"{leads_url(widget)}/nope/events", headers={"Origin": SHOP})
    assert missing.status == 404 and missing.content_type == "application/problem+json"
    assert missing.headers["Access-Control-Allow-Origin"] == SHOP
    other = await client.get(lead["events_url"], headers={"Origin": "https://evil.example"})
    assert other.status == 403 and other.content_type == "application/problem+json"


@pytest.mark.parametrize("route", ["config", "challenge", "hours", "clause", "leads/x",
                                   "leads/x/events"])
async def test_widget_routes_refuse_another_origin(env, route):
    client, _, widget, _ = env
    response = await client.get(f"/api/v1/widgets/{widget.public_key}/{route}",
                                headers={"Origin": "https://evil.example"})
    assert response.status == 403 and response.content_type == "application/problem+json"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_built_in_texts_cover_every_key_in_each_language():
    for language, texts in BUILT_IN.items():
        assert set(texts) == WIDGET_TEXT_KEYS, language
        assert all(is_one_line(t) and len(t) <= 300 for t in texts.values())
