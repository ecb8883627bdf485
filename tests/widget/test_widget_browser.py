"""The widget in headless Chromium, embedded by a page of another origin (no Asterisk)."""

from __future__ import annotations

import gzip
import time
import hashlib
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.support.widget import solution_payload
from tests.widget.conftest import ADMIN, SCREENSHOTS, STATIC

W = "callengine-widget"
WAW = ZoneInfo("Europe/Warsaw")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def open_page(browser, site, lang="en", width=1280, height=800):
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await page.goto(site.url(lang))
    await page.locator(f"{W} button.l").wait_for()
    return page, requests


async def active(page) -> str:
    """What has focus inside the widget's shadow root: a short description."""
    return await page.evaluate("""() => {
        const w = document.querySelector('callengine-widget');
        const a = w && w.shadowRoot.activeElement;
        if (!a) return '';
        return a.tagName.toLowerCase() + (a.type ? ':' + a.type : '') + (a.name ? ':' + a.name : '')
            + (a.className ? '.' + a.className : '');
    }""")


async def tab_to(page, want: str, limit: int = 20) -> None:
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if want in await active(page):
            return
    raise AssertionError(f"Tab never reached {want}; at {await active(page)}")


async def status(page, code=None, timeout=10_000):
    loc = page.locator(f"{W} [data-part=status]")
    if code:
        await page.locator(f"{W} [data-part=status][data-code='{code}']").wait_for(timeout=timeout)
    return (await loc.text_content()).strip()


async def test_keyboard_only_lead_with_the_exact_clause_and_only_two_origins(browser, site):
    page, requests = await open_page(browser, site)
    await tab_to(page, "button.l")
    await page.keyboard.press("Enter")
    dialog = page.locator(f"{W} [role=dialog]")
    assert await dialog.get_attribute("aria-modal") == "true"
    assert "input:tel:phone" in await active(page)  # focus moved into the dialog
    await page.keyboard.type("+48 601 234 567")
    await tab_to(page, "checkbox:marketing")
    assert not await page.locator(f"{W} input[name=marketing]").is_checked()  # never pre-ticked
    await page.keyboard.press("Space")
    shown = await page.locator(f"{W} [data-part=clause]").text_content()
    assert hashlib.sha256(shown.encode("utf-8")).hexdigest() == site.clauses["en"]["sha256"]
    assert await page.locator(f"{W} a[href='https://shop.example/privacy']").count() == 1
    await tab_to(page, "button:submit")
    await page.keyboard.press("Enter")
    await page.locator(f"{W} [data-part=countdown]").wait_for()
    assert "We'll call you in" in await page.locator(f"{W} [data-part=countdown]").text_content()
    leads = await site.store.list_leads()
    assert len(leads) == 1
    lead = leads[0]
    assert lead.phone_e164 == "+48601234567"
    assert lead.consent.marketing is True and lead.consent.recording is False
    assert lead.consent.clause_version == "2026-12"
    # the lead's evidence: the hash of exactly the text the page showed, and the page's origin
    assert lead.consent.clause_sha256 == hashlib.sha256(shown.encode("utf-8")).hexdigest()
    assert lead.consent.origin == site.page
    assert {origin(u) for u in requests} <= {site.page, site.engine}, requests
    # Escape closes and returns focus to the launcher
    await page.keyboard.press("Escape")
    assert await dialog.count() == 0
    assert "button.l" in await active(page)


async def test_focus_is_trapped_in_the_dialog(browser, site):
    page, _ = await open_page(browser, site)
    await page.locator(f"{W} button.l").click()
    seen = set()
    for _ in range(15):
        await page.keyboard.press("Tab")
        now = await active(page)
        assert now, "focus left the widget"
        seen.add(now)
    assert "button:submit.s" in seen and "button.l" not in seen
    await page.keyboard.press("Shift+Tab")
    assert await active(page)


async def test_refusals_have_their_own_messages(browser, site_factory):
    site = await site_factory({"max_leads_per_number_per_day": 1, "duplicate_window_s": 0})
    page, _ = await open_page(browser, site)
    await page.locator(f"{W} button.l").click()
    phone = page.locator(f"{W} input[type=tel]")
    submit = page.locator(f"{W} button.s")
    await phone.fill("12ab")  # the light client-side check, before any request
    await submit.click()
    assert "digits" in (await page.locator(f"{W} [id$=pe]").text_content())
    assert await site.store.list_leads() == []
    await phone.fill("+44 909 876 5432")
    await submit.click()
    assert "can't call numbers in that country" in await status(page, "number-country-not-allowed")
    await phone.fill("+48 701 234 567")
    await submit.click()
    assert "kind of number" in await status(page, "number-type-not-allowed")
    await phone.fill("+48 601 234 567")
    await submit.click()
    await page.locator(f"{W} [data-part=countdown]").wait_for()
    # a new visit asks again for the same number: too many requests, with when to retry
    page, _ = await open_page(browser, site)
    await page.locator(f"{W} button.l").click()
    await page.locator(f"{W} input[type=tel]").fill("+48 601 234 567")
    await page.locator(f"{W} button.s").click()
    text = await status(page, "rate-limited")
    assert text.startswith("Too many requests. Please try again in") and "min" in text


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=WAW).timestamp()


class Fixed:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_after_hours_shows_the_next_opening_and_a_picked_slot_is_scheduled(browser, site_factory):
    clock = Fixed(at("2026-12-01 18:00"))  # a Tuesday, after hours
    site = await site_factory({"time_zone": "Europe/Warsaw", "slot_capacity": 1,
                               "slot_minutes": 60, "slot_days": 2,
                               "hours": {"wed": [["09:00", "11:00"]]}}, clock)
    page, _ = await open_page(browser, site)
    await page.locator(f"{W} button.l").click()
    closed = await page.locator(f"{W} [data-part=closed]").text_content()
    assert closed.startswith("We're closed now. Next opening:")
    radios = page.locator(f"{W} input[name=slot]")
    assert await radios.count() == 3  # "at the next opening" + the two free slots
    await page.locator(f"{W} input[type=tel]").fill("+48 601 234 567")
    slot = int(at("2026-12-02 10:00"))
    await page.locator(f"{W} input[name=slot][value='{slot}']").check()
    await page.locator(f"{W} button.s").click()
    scheduled = await status(page, "scheduled")
    assert "We'll call you at" in scheduled and "10:00" in scheduled, scheduled
    [lead] = await site.store.list_leads()
    assert lead.next_attempt_at == slot


async def test_polish_page_gets_polish_texts_and_clause(browser, site):
    page, _ = await open_page(browser, site, lang="pl")
    assert (await page.locator(f"{W} button.l").text_content()) == "Zadzwońcie do mnie"
    await page.locator(f"{W} button.l").click()
    assert await page.locator(f"{W} h2").text_content() == "Oddzwonimy do Ciebie"
    shown = await page.locator(f"{W} [data-part=clause]").text_content()
    assert hashlib.sha256(shown.encode("utf-8")).hexdigest() == site.clauses["pl"]["sha256"]
    await page.locator(f"{W} input[type=tel]").fill("+44 909 876 5432")
    await page.locator(f"{W} button.s").click()
    assert "Nie dzwonimy na numery w tym kraju" in await status(page, "number-country-not-allowed")


async def test_screenshots_and_accessibility_at_375_and_1280(browser, site):
    from axe_playwright_python.async_playwright import Axe
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in (375, 1280):
        page, _ = await open_page(browser, site, width=width, height=740)
        await page.screenshot(path=str(SCREENSHOTS / f"widget-closed-{width}.png"))
        await page.locator(f"{W} button.l").click()
        box = await page.locator(f"{W} [role=dialog]").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width  # fits the viewport
        await page.screenshot(path=str(SCREENSHOTS / f"widget-open-{width}.png"))
        results = await Axe().run(page)
        bad = [f"{v['id']} ({v['impact']})" for v in results.response["violations"]
               if v["impact"] in ("serious", "critical")]
        assert bad == [], bad
        await page.context.close()
    print(f"\nscreenshots in {SCREENSHOTS}")


def test_widget_is_at_most_15_kb_gzipped():
    size = len(gzip.compress((STATIC / "widget.js").read_bytes(), 9))
    print(f"\nwidget.js gzipped: {size} bytes")
    assert size <= 15 * 1024


async def test_challenge_on_is_solved_in_the_browser_and_a_forged_one_refused(browser, site_factory):
    site = await site_factory({"challenge": "on"})
    page, requests = await open_page(browser, site)
    await page.locator(f"{W} button.l").click()
    await page.locator(f"{W} input[type=tel]").fill("+48 601 234 567")
    await page.locator(f"{W} button.s").click()
    await page.locator(f"{W} [data-part=countdown]").wait_for()
    assert any(u.split("?")[0].endswith("/challenge") for u in requests)
    assert len(await site.store.list_leads()) == 1

    async def forged(route):  # a challenge whose signature the engine never made
        response = await route.fetch()
        data = await response.json()
        data["signature"] = "0" * len(data["signature"])
        await route.fulfill(response=response, json=data)
    page, _ = await open_page(browser, site)
    await page.route("**/challenge*", forged)
    await page.locator(f"{W} button.l").click()
    await page.locator(f"{W} input[type=tel]").fill("+48 601 234 568")
    await page.locator(f"{W} button.s").click()
    assert "browser check failed" in await status(page, "challenge-failed")
    assert len(await site.store.list_leads()) == 1


async def test_opens_by_itself_after_n_seconds_once_per_session(browser, site_factory):
    site = await site_factory({"open_after_s": 1})
    page, _ = await open_page(browser, site)
    dialog = page.locator(f"{W} [role=dialog]")
    await dialog.wait_for(timeout=5_000)
    await page.keyboard.press("Escape")
    await page.reload()  # the same tab: the same session
    await page.locator(f"{W} button.l").wait_for()
    await page.wait_for_timeout(2_000)
    assert await dialog.count() == 0


async def test_exit_intent_opens_it_when_configured(browser, site_factory):
    site = await site_factory({"exit_intent": True})
    page, _ = await open_page(browser, site)
    await page.evaluate("document.dispatchEvent(new MouseEvent('mouseout',"
                        " {clientY: -1, relatedTarget: null, bubbles: true}))")
    await page.locator(f"{W} [role=dialog]").wait_for(timeout=5_000)


async def test_recording_notice_and_its_own_consent_checkbox(browser, site_factory):
    site = await site_factory({"recording": "on", "recording_notice": "sound:beep"})
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as http:
        async with http.post(f"{site.engine}/api/v1/widgets/shop/clauses", json={
                "language": "en", "version": "2026-12b", "text": "Clause with recording.",
                "privacy_url": "https://shop.example/privacy",
                "recording_notice": {"version": "rec-1", "text": "Calls are recorded."}}) as r:
            assert r.status == 201, await r.text()
    page, _ = await open_page(browser, site)
    await page.locator(f"{W} button.l").click()
    assert await page.locator(f"{W} [data-part=recording-notice]").text_content() == \
        "Calls are recorded."
    recording = page.locator(f"{W} input[name=recording]")
    assert not await recording.is_checked()
    await page.locator(f"{W} input[type=tel]").fill("+48 601 234 567")
    await recording.check()
    await page.locator(f"{W} button.s").click()
    await page.locator(f"{W} [data-part=countdown]").wait_for()
    [lead] = await site.store.list_leads()
    assert lead.consent.recording is True and lead.consent.marketing is False
    assert lead.consent.clause_version == "2026-12b"


async def test_without_server_sent_events_it_polls_the_status(browser, site):
    page, requests = await open_page(browser, site)
    await page.route("**/events", lambda route: route.abort())
    await page.locator(f"{W} button.l").click()
    await page.locator(f"{W} input[type=tel]").fill("+48 601 234 567")
    await page.locator(f"{W} button.s").click()
    await page.locator(f"{W} [data-part=countdown]").wait_for()
    [lead] = await site.store.list_leads()
    attempt = await site.store.start_attempt(lead.id, time.time())
    await site.store.set_progress(lead.id, "dialling-visitor", False, attempt.id, time.time())
    assert "calling you now" in (await status(page, "dialling-visitor", timeout=6_000)).lower()
    assert any(u.endswith(f"/leads/{lead.id}") for u in requests)  # the status URL, polled


@pytest.mark.parametrize("edge, ends", [
    ({"events_lifetime_s": 1.0}, "its lifetime"),  # the stream opens, then the engine ends it
    ({"events_per_lead": 0}, "refused"),  # the stream is refused: 429 too-many-streams
])
async def test_a_stream_ended_or_refused_falls_back_to_polling(browser, site_factory, edge, ends):
    site = await site_factory(edge=edge)
    page, requests = await open_page(browser, site)
    answers: list[tuple[str, int]] = []
    page.on("response", lambda r: answers.append((r.url, r.status)))
    await page.locator(f"{W} button.l").click()
    await page.locator(f"{W} input[type=tel]").fill("+48 601 234 567")
    await page.locator(f"{W} button.s").click()
    await page.locator(f"{W} [data-part=countdown]").wait_for()
    [lead] = await site.store.list_leads()
    await page.wait_for_timeout(1_500)  # past the stream's lifetime
    attempt = await site.store.start_attempt(lead.id, time.time())
    await site.store.set_progress(lead.id, "dialling-visitor", False, attempt.id, time.time())
    assert "calling you now" in (await status(page, "dialling-visitor", timeout=6_000)).lower()
    streams = [status_ for url, status_ in answers if url.endswith("/events")]
    assert streams == ([200] if ends == "its lifetime" else [429])  # not reopened
    assert any(u.endswith(f"/leads/{lead.id}") for u in requests)  # the status URL, polled


async def test_a_slot_taken_meanwhile_gets_its_own_message(browser, site_factory):
    clock = Fixed(at("2026-12-01 18:00"))
    site = await site_factory({"time_zone": "Europe/Warsaw", "slot_capacity": 1,
                               "slot_minutes": 60, "slot_days": 2,
                               "hours": {"wed": [["09:00", "11:00"]]}}, clock)
    page, _ = await open_page(browser, site)
    await page.locator(f"{W} button.l").click()
    slot = int(at("2026-12-02 09:00"))
    async with aiohttp.ClientSession() as http:  # another visitor takes it first
        key = site.widget.public_key
        async with http.get(f"{site.engine}/api/v1/widgets/{key}/challenge") as r:
            proof = solution_payload(await r.json())
        async with http.post(f"{site.engine}/api/v1/widgets/{key}/leads",
                             json={"phone": "+48 601 234 568", "slot": slot, "altcha": proof,
                                   "consent": {"marketing": False, "recording": False},
                                   "clause_version": "2026-12"}) as r:
            assert r.status == 201, await r.text()
    await page.locator(f"{W} input[type=tel]").fill("+48 601 234 567")
    await page.locator(f"{W} input[name=slot][value='{slot}']").check()
    await page.locator(f"{W} button.s").click()
    assert "no longer free" in await status(page, "slot-full")
    assert len(await site.store.list_leads()) == 1
