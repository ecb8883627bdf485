"""The widget in a real headless Chromium: the engine on one loopback port, a host page on
another (a second origin) embedding `<script async src=ENGINE/widget.js data-widget=KEY>`."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from callengine.flow import Strategy
from callengine.model import Agent, widget_settings_from_input
from callengine.services import Services
from callengine.storage import Store
from callengine.web import WebDeps, make_app
from tests.support.ci import unavailable
from tests.support.engine import DATA_KEY

ADMIN = "admin-token-0123456789abcdef"
STATIC = Path(__file__).resolve().parents[2] / "callengine" / "web" / "static"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
CLAUSES = {
    "en": "Shop Ltd. is the controller of your data; we use your number only to call you back."
          "\nDetails: see the privacy policy.",
    "pl": "Administratorem Twoich danych jest Sklep sp. z o.o.; numer służy tylko do oddzwonienia."
          "\nSzczegóły: polityka prywatności. Żółć.",
}


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
async def browser():
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        unavailable("Chromium is not installed (scripts/setup: apt-get install chromium)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield b
        finally:
            await b.close()


HOST_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shop</title>
<style>* {{ color: red !important; font-size: 40px !important }} button {{ display: none }}</style>
</head><body><main><h1>Shop</h1><p>Our products.</p></main>
<script async src="{engine}/widget.js" data-widget="{key}"></script>
</body></html>"""


async def _start(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


def engine_app(deps: WebDeps) -> web.Application:
    """The engine's app; serves widget.js itself when the branch has no route for it yet."""
    app = make_app(deps)
    if not any(getattr(r.resource, "canonical", None) == "/widget.js" for r in app.router.routes()):
        async def widget_js(request: web.Request) -> web.Response:
            return web.Response(body=(STATIC / "widget.js").read_bytes(),
                                content_type="application/javascript", charset="utf-8")
        app.router.add_get("/widget.js", widget_js)
    return app


@dataclass
class Site:
    store: Store
    widget: Any
    engine: str  # origin
    page: str  # origin of the host page
    clauses: dict[str, dict]

    def url(self, lang: str = "en") -> str:
        return f"{self.page}/?lang={lang}"


async def make_site(tmp_path, settings: dict | None = None, clock=time.time,
                    edge: dict | None = None):
    """Start both servers; returns (Site, cleanup coroutine function). `edge`: WebDeps'
    own settings (the event streams' limits, say)."""
    store_cm = Store.open(tmp_path / "w.db", DATA_KEY)
    store = await store_cm.__aenter__()
    await store.add_agent(Agent("alice", "PJSIP/agent1"))
    await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])

    state: dict[str, str] = {}

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=HOST_PAGE.format(lang=request.query.get("lang", "en"), **state),
                            content_type="text/html")
    host = web.Application()
    host.router.add_get("/", page)
    host_runner, host_port = await _start(host)
    page_origin = f"http://127.0.0.1:{host_port}"
    values = {"group": "sales", "allowed_regions": ["PL"], "allowed_origins": [page_origin],
              "challenge": "off"}
    values.update(settings or {})
    widget = await store.add_widget("shop", "Shop", widget_settings_from_input(values), clock())
    engine_runner, engine_port = await _start(
        engine_app(WebDeps(Services(store, clock=clock), ADMIN, **(edge or {}))))
    engine_origin = f"http://127.0.0.1:{engine_port}"

    state.update(engine=engine_origin, key=widget.public_key)

    clauses = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as http:
        for lang, text in CLAUSES.items():
            async with http.post(f"{engine_origin}/api/v1/widgets/shop/clauses", json={
                    "language": lang, "version": "2026-12", "text": text,
                    "privacy_url": "https://shop.example/privacy"}) as r:
                assert r.status == 201, await r.text()
            async with http.get(f"{engine_origin}/api/v1/widgets/{widget.public_key}/clause",
                                params={"lang": lang}) as r:
                clauses[lang] = await r.json()

    async def cleanup():
        await engine_runner.cleanup()
        await host_runner.cleanup()
        await store_cm.__aexit__(None, None, None)
    return Site(store, widget, engine_origin, page_origin, clauses), cleanup


@pytest.fixture
async def site_factory(tmp_path):
    cleanups = []

    async def factory(settings: dict | None = None, clock=time.time,
                      edge: dict | None = None) -> Site:
        site, cleanup = await make_site(tmp_path, settings, clock, edge)
        cleanups.append(cleanup)
        return site
    yield factory
    for cleanup in reversed(cleanups):
        await cleanup()


@pytest.fixture
async def site(site_factory):
    return await site_factory()
