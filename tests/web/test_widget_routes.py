"""The widget's routes: its script, its configuration per language, its challenge, its lead's
live progress; CORS for an allowed origin and 403 for another on every widget route."""

from __future__ import annotations

import gzip

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callengine.errors import InvalidInput
from callengine.flow import Strategy
from callengine.model import Agent, widget_settings_from_input
from callengine.services import Services
from callengine.storage import Store
from callengine.web import WebDeps, make_app
from tests.support.engine import DATA_KEY
from tests.web.test_web import ADMIN, Clock

SHOP = "https://shop.example"


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
