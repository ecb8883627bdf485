"""The widget drives a real callback: Chromium submits it from a page of another origin, the
engine calls through the real Asterisk and the sipp phones, and the widget shows each stage."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from callengine.app import running
from tests.support.engine import ADMIN_TOKEN, add_widget, make_config, wait_for_lead
from tests.support.phones import Phone
from tests.widget.conftest import CLAUSES, HOST_PAGE, _start

pytestmark = pytest.mark.asterisk
W = "callengine-widget"

RECORD_CODES = """() => {
  window.__codes = [];
  const st = document.querySelector('callengine-widget').shadowRoot
    .querySelector('[data-part=status]');
  new MutationObserver(() => {
    const c = st.getAttribute('data-code');
    if (c && window.__codes[window.__codes.length - 1] !== c) window.__codes.push(c);
  }).observe(st, {attributes: true, childList: true, characterData: true, subtree: true});
}"""


async def test_widget_shows_a_real_call_stage_by_stage(asterisk, tmp_path, browser):
    state: dict[str, str] = {}

    async def page_handler(request: web.Request) -> web.Response:
        return web.Response(text=HOST_PAGE.format(lang="en", **state), content_type="text/html")
    host = web.Application()
    host.router.add_get("/", page_handler)
    host_runner, host_port = await _start(host)
    page_origin = f"http://127.0.0.1:{host_port}"
    try:
        async with running(make_config(tmp_path, asterisk)) as service, \
                Phone(5081, "answer", tone_hz=440, answer_after_ms=1500), \
                Phone(5070, "answer", tone_hz=1000, answer_after_ms=1500,
                      hangup_after_ms=3000) as visitor:
            widget = await add_widget(service.store, agents=("agent1",),
                                      allowed_origins=[page_origin], challenge="on")
            async with aiohttp.ClientSession(
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
                async with http.post(f"{service.base_url}/api/v1/widgets/shop/clauses", json={
                        "language": "en", "version": "2026-12", "text": CLAUSES["en"],
                        "privacy_url": "https://shop.example/privacy"}) as r:
                    assert r.status == 201, await r.text()
            state.update(engine=service.base_url, key=widget.public_key)
            page = await browser.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            await page.goto(page_origin + "/")
            await page.locator(f"{W} button.l").wait_for()
            await page.keyboard.press("Tab")
            await page.keyboard.press("Enter")
            await page.evaluate(RECORD_CODES)
            await page.keyboard.type("+48 601 234 567")
            await page.keyboard.press("Enter")  # submits the form
            await page.locator(f"{W} [data-part=countdown]").wait_for(timeout=15_000)
            await page.locator(f"{W} [data-part=status][data-code=connected]").wait_for(
                timeout=30_000)
            [lead] = await service.store.list_leads()
            lead = await wait_for_lead(service.store, lead.id, timeout=30)
            await page.wait_for_function("window.__codes.includes('connected') &&"
                                         " document.querySelector('callengine-widget').shadowRoot"
                                         ".querySelector('[data-part=countdown]') === null",
                                         timeout=15_000)
            codes = await page.evaluate("window.__codes")
            final = await page.locator(f"{W} [data-part=status]").text_content()
    finally:
        await host_runner.cleanup()
    print(f"\nwidget status codes: {codes}; last message: {final!r}")
    assert lead.outcome == "connected" and visitor.calls_answered == 1
    stages = [c for c in codes if c in ("ringing-agents", "dialling-visitor", "connected")]
    assert stages[:1] == ["ringing-agents"] and "dialling-visitor" in stages, codes
    assert any(u.endswith("/events") for u in requests), requests  # live, by server-sent events
    assert codes[-1] == "connected" and "The call is over" in final, (codes, final)
