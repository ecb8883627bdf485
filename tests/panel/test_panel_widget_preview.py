"""The widget page's live preview in a real headless Chromium (Debian's, through Playwright),
logged in as an admin through the real login: the real widget.js in the page's preview frame,
under the panel's strict CSP, shows the widget's launcher in the widget's colour, follows the
edit form's unsaved colour and texts, and a submit in it sends nothing and makes no lead. An
axe scan of the page (and of the preview with the widget's dialog open) finds nothing serious
or critical. And a disabled widget on a site's page."""

from __future__ import annotations

import asyncio

from callengine.storage import LeadFilter
from tests.support.panel import log_in
from tests.widget.conftest import SCREENSHOTS

LAUNCHER = "callengine-widget button.l"  # in the widget's (open) shadow root


async def background(frame) -> str:
    return await frame.locator(LAUNCHER).evaluate("b => getComputedStyle(b).backgroundColor")


async def until(check, timeout_s: float = 10.0):
    """Poll `check()` (a coroutine function) until it is truthy; its last value."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await check()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_the_preview_is_the_real_widget_live_and_it_sends_nothing(browser, served):
    from axe_playwright_python.async_playwright import Axe

    panel, origin = served
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await log_in(page, origin, "admin", panel.totp_secret)  # the real login, session, CSRF
    requests: list[str] = []
    context.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    refused: list[str] = []  # the console's CSP refusals, in the page and its frame
    page.on("console", lambda m: refused.append(m.text)
            if "Content Security Policy" in m.text else None)
    response = await page.goto(origin + "/panel/widgets/shop")
    assert response.status == 200
    frame = page.frame(name="widget-preview")
    await frame.locator(LAUNCHER).wait_for()
    assert await frame.locator(LAUNCHER).inner_text() == "Call me back"
    assert await background(frame) == "rgb(31, 95, 191)"  # #1f5fbf: its styles applied

    # Live: the form's unsaved colour and texts reach the preview, nothing saved.
    await page.fill("#f-colour", "#aa0000")
    await page.fill("#f-texts", '{"en": {"button": "Ring me"}}')
    assert await until(lambda: _shows(frame, "rgb(170, 0, 0)", "Ring me")), \
        (await background(frame), await frame.locator(LAUNCHER).inner_text())
    assert (await panel.store.get_widget("shop")).settings.colour == "#1f5fbf"
    await page.screenshot(path=str(_screenshot("panel-widget-admin-1280.png")), full_page=True)

    # Leaving the field fires its "change": the values are shown already, so the frame is not
    # reloaded (it was, 400 ms later, and reset the widget being tried below: seen in CI).
    reloads = len([r for r in requests if r.startswith("POST") and "/preview" in r])
    await page.locator("#f-texts").blur()
    await asyncio.sleep(1.0)
    assert len([r for r in requests if r.startswith("POST") and "/preview" in r]) == reloads

    # A submit in the preview: it says so, and nothing is sent.
    await page.locator("#widget-preview").scroll_into_view_if_needed()
    await frame.locator(LAUNCHER).click()
    await frame.locator("callengine-widget input[type=tel]").fill("+48 601 234 567")
    await frame.locator("callengine-widget button.s").click()
    status = frame.locator("callengine-widget [data-part=status]")
    assert await until(lambda: _code(status, "preview"))
    assert "Preview: no call is requested." in await status.inner_text()
    await asyncio.sleep(0.5)
    sent = [r for r in requests if "/leads" in r or "/challenge" in r or r.startswith("POST")
            and "/preview" not in r]
    assert sent == [], sent
    assert [lead.id for lead in await panel.store.list_leads(LeadFilter(widget_id="shop"))] == [panel.lead.id]
    assert refused == [], refused

    axe = Axe()
    bad = [f"widget page: {v['id']} ({v['impact']})"
           for v in (await axe.run(page)).response["violations"]
           if v["impact"] in ("serious", "critical")]
    await page.goto(origin + "/panel/widgets/shop/preview")
    await page.locator(LAUNCHER).click()
    await page.locator("callengine-widget [role=dialog]").wait_for()
    await page.screenshot(path=str(_screenshot("panel-widget-preview-admin-1280.png")))
    bad += [f"preview: {v['id']} ({v['impact']})"
            for v in (await axe.run(page)).response["violations"]
            if v["impact"] in ("serious", "critical")]
    assert bad == [], bad
    await context.close()


async def _shows(frame, colour: str, text: str) -> bool:
    try:
        return (await background(frame) == colour
                and await frame.locator(LAUNCHER).inner_text() == text)
    except Exception:  # the frame is navigating to the next preview
        return False


async def _code(status, code: str) -> bool:
    return await status.get_attribute("data-code") == code


def _screenshot(name: str):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name


async def test_a_disabled_widget_shows_nothing_and_says_why_it_refuses(browser, served):
    """On a page of an allowed origin (routed by the browser to the engine's origin): the
    enabled widget shows its launcher; disabled while open, its submit is refused with the
    widget's own words (403 widget-disabled), nothing written; reloaded, it shows nothing."""
    from callengine.access import Principal, Role

    panel, origin = served
    admin = Principal("ops", Role.ADMIN)
    widget = await panel.services.config.edit_widget(
        admin, "shop", settings={"allowed_origins": [origin]})
    context = await browser.new_context()
    page = await context.new_page()
    host = (f'<!doctype html><html lang="pl"><head><title>Sklep</title></head><body><main>'
            f'<h1>Sklep</h1></main><script async src="{origin}/widget.js"'
            f' data-widget="{widget.public_key}"></script></body></html>')
    await page.route(origin + "/shop-page", lambda route: route.fulfill(
        body=host, content_type="text/html"))
    await page.goto(origin + "/shop-page")
    await page.locator(LAUNCHER).click()
    await page.locator("callengine-widget input[type=tel]").fill("+48 601 234 567")
    await panel.services.config.set_widget_enabled(admin, "shop", False)
    await page.locator("callengine-widget button.s").click()
    status = page.locator("callengine-widget [data-part=status]")
    assert await until(lambda: _code(status, "widget-disabled"))
    assert "Prośby o oddzwonienie są teraz wyłączone" in await status.inner_text()
    assert [lead.id for lead in await panel.store.list_leads(LeadFilter(widget_id="shop"))] == [panel.lead.id]
    await page.reload()
    await page.locator("h1").wait_for()
    await asyncio.sleep(1.0)  # the widget's config has come by now
    assert await page.locator("callengine-widget").count() == 1
    assert await page.locator(LAUNCHER).count() == 0  # disabled: nothing shown
    await context.close()
