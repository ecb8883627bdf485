"""The leads page's filters (widget, status, outcome, from, to) through the seeded panel as
each role: the leads they take, how many matched and that a page holds at most LEADS_PAGE, the
choices kept, a refused filter shown beside its field (422), in English and Polish; and the
form in Chromium, a refused filter's page scanned by axe."""

from __future__ import annotations

import re

import pytest

from callengine.model import LEAD_OUTCOMES
from callengine.web.panel import pages
from callengine.web.panel.texts import EN, PL
from tests.support.lead_filters import NEWEST_FIRST, add_widgets, seed_leads
from tests.support.panel import holds_number, user_headers
from tests.widget.conftest import SCREENSHOTS, _start

ROLES = ("admin", "supervisor", "agent", "viewer")
NOVEMBER = {"from": "2026-11-01", "to": "2026-12-01"}  # the set's month (not the panel's lead)


@pytest.fixture
async def ids(panel):
    await add_widgets(panel.store, shop=False)
    return await seed_leads(panel.store)


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-lead="([^"]+)"', html)


def named(ids: dict[str, str], names: str) -> list[str]:
    return [ids[name] for name in NEWEST_FIRST if name in names]


async def page(client, query: dict[str, str] | None = None, role="viewer", expected=200
               ) -> str:
    response = await client.get("/panel/leads", params=query or {}, headers=user_headers(role))
    html = await response.text()
    assert response.status == expected, html[:500]
    assert response.content_type == "text/html"
    assert holds_number(html.encode()) == [] and "style=" not in html
    return html


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_filters_the_leads(client, ids, role):
    html = await page(client, {"outcome": "connected", "widget": "shop", **NOVEMBER}, role)
    assert rows(html) == named(ids, "a")
    assert EN["leads_matched"].format(matched=1) in html
    assert EN["leads_page"].format(limit=pages.LEADS_PAGE) in html
    assert '<option value="connected" selected>' in html
    assert '<option value="shop" selected>' in html
    assert 'name="from" type="date" value="2026-11-01"' in html
    assert 'name="to" type="date" value="2026-12-01"' in html


@pytest.mark.parametrize("query, names", [
    ({**NOVEMBER, "status": "queued"}, "de"),
    ({**NOVEMBER, "outcome": "agents-no-answer"}, "d"),
    ({"from": "2026-11-02", "to": "2026-11-03"}, "bc"),
    ({**NOVEMBER, "widget": "desk", "status": "done", "outcome": "connected"}, "c"),
    ({**NOVEMBER, "outcome": "failed", "widget": "desk"}, ""),
])
async def test_the_filters_together(client, ids, query, names):
    html = await page(client, query)
    assert rows(html) == named(ids, names)
    assert EN["leads_matched"].format(matched=len(names)) in html
    assert (EN["no_leads"] in html) == (not names)


async def test_an_empty_field_is_any(client, panel, ids):
    """The form sends every field; left empty, each takes every lead."""
    html = await page(client, {"widget": "", "status": "", "outcome": "", "from": "", "to": ""})
    assert rows(html) == [panel.lead.id, *named(ids, "abcdef")]
    assert EN["leads_matched"].format(matched=7) in html
    for outcome in LEAD_OUTCOMES:
        assert f'<option value="{outcome}">{EN["outcome_" + outcome]}</option>' in html


async def test_a_page_shows_at_most_leads_page_and_says_so(client, panel, ids, monkeypatch):
    monkeypatch.setattr(pages, "LEADS_PAGE", 3)
    html = await page(client)
    assert rows(html) == [panel.lead.id, *named(ids, "abcdef")[:2]]
    assert EN["leads_matched"].format(matched=7) in html
    assert EN["leads_page"].format(limit=3) in html
    assert EN["leads_more"].format(shown=3) in html
    html = await page(client, {"widget": "desk"})  # fewer than a page: no note of more
    assert len(rows(html)) == 2 and EN["leads_more"].format(shown=2) not in html


@pytest.mark.parametrize("query, field, typed", [
    ({"outcome": "nope"}, "outcome", None),
    ({"status": "closed"}, "status", None),
    ({"from": "yesterday"}, "from", "yesterday"),
    ({"to": "2026-02-30"}, "to", "2026-02-30"),
    ({"from": "2026-11-03", "to": "2026-11-02"}, "to", "2026-11-02"),
])
async def test_a_refused_filter_shows_beside_its_field(client, panel, ids, query, field, typed):
    before = await panel.store.audit_entries()
    html = await page(client, query, "supervisor", 422)
    error = re.search(rf'<span class="field-error" id="filters-{field}-error" role="alert">'
                      r'([^<]+)</span>', html)
    assert error, html
    assert f'name="{field}"' in html and 'aria-invalid="true"' in html
    assert f'aria-describedby="filters-{field}-error"' in html
    assert html.count('aria-invalid="true"') == 1
    if typed is not None:  # what was typed is kept in its field
        assert f'name="{field}" type="date" value="{typed}"' in html
    assert rows(html) == [] and EN["no_leads"] not in html  # no listing beside a refusal
    assert await panel.store.audit_entries() == before


async def test_in_polish(client, ids):
    client.session.cookie_jar.update_cookies({"panel_language": "pl"})
    html = await page(client, {"outcome": "visitor-busy", **NOVEMBER})
    assert rows(html) == named(ids, "b")
    assert PL["leads_matched"].format(matched=1) in html
    assert PL["leads_page"].format(limit=pages.LEADS_PAGE) in html
    assert f'<option value="visitor-busy" selected>{PL["outcome_visitor-busy"]}</option>' in html
    assert f'<td>{PL["outcome_visitor-busy"]}</td>' in html
    assert PL["to"] in html and PL["from"] in html
    html = await page(client, {"from": "wczoraj"}, expected=422)
    assert 'id="filters-from-error"' in html


def test_the_texts_name_every_outcome():
    for texts in (EN, PL):
        assert {f"outcome_{o}" for o in LEAD_OUTCOMES} <= set(texts)


async def test_in_chromium_the_form_filters_and_a_refusal_is_accessible(browser, panel, ids):
    from axe_playwright_python.async_playwright import Axe

    runner, port = await _start(panel.app)
    context = await browser.new_context(viewport={"width": 768, "height": 900},
                                        extra_http_headers=user_headers("supervisor"))
    try:
        page = await context.new_page()
        await page.goto(f"http://127.0.0.1:{port}/panel/leads")
        await page.select_option("#f-outcome", "connected")
        await page.fill("#f-from", "2026-11-01")
        await page.fill("#f-to", "2026-12-01")
        await page.locator("form.filters button[type=submit]").click()
        await page.locator("#leads-matched", has_text="Matching leads: 2.").wait_for()
        assert rows(await page.content()) == named(ids, "ac")
        assert "outcome=connected" in page.url and "2026-11-01" in page.url
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "panel-leads-filtered-supervisor-768.png"),
                              full_page=True)
        await page.fill("#f-to", "2026-10-01")  # before from: refused beside "to"
        async with page.expect_navigation() as navigation:
            await page.locator("form.filters button[type=submit]").click()
        assert (await navigation.value).status == 422
        error = page.locator("#filters-to-error")
        assert "later than from" in await error.inner_text()
        assert await page.get_attribute("#f-to", "aria-invalid") == "true"
        assert await page.input_value("#f-to") == "2026-10-01"  # kept as typed
        await page.screenshot(path=str(SCREENSHOTS / "panel-leads-refused-supervisor-768.png"),
                              full_page=True)
        violations = (await Axe().run(page)).response["violations"]
        assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []
    finally:
        await context.close()
        await runner.cleanup()
