"""The panel in a real headless Chromium (Debian's, through Playwright; the widget tests'
fixture), logged in as each role through the login form (the admin with its TOTP code) as
the engine serves it: what each role receives
(DOM, every network response, the page source), playback in the <audio> element, the
forbidden acts refused, screenshots of each page and an axe scan of each."""

from __future__ import annotations

import re
import time

from callengine.access import Principal, Role
from callengine.flow import Outcome, Result
from callengine.model import Consent

from tests.support.panel import NUMBER, RECORDING_S, holds_number, log_in
from tests.widget.conftest import SCREENSHOTS

PAGES = {  # name: (path, roles that may open it)
    "leads": ("/panel/leads", ("admin", "supervisor", "agent", "viewer")),
    "lead": ("/panel/leads/{lead}", ("admin", "supervisor", "agent", "viewer")),
    "board": ("/panel/board", ("admin", "supervisor", "agent", "viewer")),
    "reports": ("/panel/reports?widget=shop", ("admin", "supervisor", "viewer")),
    "widgets": ("/panel/widgets", ("admin",)),
    "widget": ("/panel/widgets/shop", ("admin",)),
    "agents": ("/panel/agents", ("admin",)),
    "tokens": ("/panel/tokens", ("admin",)),
    "audit": ("/panel/audit", ("admin",)),
    "subjects": ("/panel/subjects", ("admin",)),
    "delete": ("/panel/recordings/{recording}/delete", ("admin",)),
    "users": ("/panel/users", ("admin",)),
    "account": ("/panel/account", ("admin", "supervisor", "agent", "viewer")),
}


# A form post made from the page with the session's own CSRF token: refused by the role only.
FORGED_POST = """async (url) => {
    const csrf = document.querySelector('input[name=csrf]').value;
    const r = await fetch(url, {method: 'POST', body: new URLSearchParams({csrf})});
    return r.status; }"""


def acts(entries) -> list:
    """The audit entries of acts (the accounts made, logins and session ends left out)."""
    return [e for e in entries if not e.action.startswith(("panel.", "users.add"))]


class Session:
    """A browser context logged in as `role`, keeping every response's body."""

    def __init__(self, page, bodies):
        self.page, self.bodies = page, bodies

    @classmethod
    async def open(cls, browser, served, role: str, width: int = 1280, height: int = 900):
        panel, origin = served
        context = await browser.new_context(viewport={"width": width, "height": height})
        page = await context.new_page()
        await log_in(page, origin, role, panel.totp_secret)
        bodies: list[tuple[str, bytes]] = []

        async def keep(response):
            try:
                bodies.append((response.url, await response.body()))
            except Exception:  # a streamed body the browser let go (audio): fetched below
                pass
        page.on("response", keep)
        return cls(page, bodies)

    async def close(self):
        await self.page.context.close()


def path_of(name: str, panel) -> str:
    return PAGES[name][0].format(lead=panel.lead.id, recording=panel.recording_id)


async def leaks(session) -> list[str]:
    """Every place the full number shows in what the browser holds: the DOM, its text, each
    response body (the page source among them)."""
    page = session.page
    found = [f"dom: {f}" for f in holds_number((await page.content()).encode())]
    found += [f"text: {f}" for f in holds_number(
        (await page.evaluate("document.body.innerText")).encode())]
    for url, body in session.bodies:
        found += [f"{url}: {f}" for f in holds_number(body)]
    return found


async def test_a_viewer_never_receives_the_full_number(browser, served):
    panel, origin = served
    s = await Session.open(browser, served, "viewer")
    for name, (_, roles) in PAGES.items():
        response = await s.page.goto(origin + path_of(name, panel))
        assert response.status == (200 if "viewer" in roles else 403), name
        assert await leaks(s) == [], name
    await s.page.goto(origin + path_of("lead", panel))
    assert await s.page.locator("button", has_text="Show number").count() == 0
    assert await s.page.locator("audio").count() == 0
    # asked anyway (a forged form post from the page): 403, and still no number anywhere
    status = await s.page.evaluate(FORGED_POST, f"/panel/leads/{panel.lead.id}/number")
    assert status == 403
    source = await s.page.evaluate("""async (url) => (await fetch(url)).text()""",
                                   f"/panel/leads/{panel.lead.id}")
    assert holds_number(source.encode()) == [] and await leaks(s) == []
    csv = await s.page.evaluate("""async (url) => (await fetch(url)).text()""",
                                "/panel/reports.csv?widget=shop")
    assert "+48 *** *** 567" in csv and holds_number(csv.encode()) == []
    await s.close()


async def test_an_agent_plays_with_the_right_duration_but_cannot_delete(browser, served):
    panel, origin = served
    s = await Session.open(browser, served, "agent")
    await s.page.goto(origin + path_of("lead", panel))
    assert await s.page.locator(f"a[href$='/recordings/{panel.recording_id}/delete']").count() == 0
    audio = s.page.locator("audio")
    assert await audio.get_attribute("preload") == "none"  # opening the page plays nothing
    assert acts(await panel.store.audit_entries()) == []
    await s.page.locator("h1").click()  # a user gesture: the page may play
    await audio.evaluate("a => a.play()")
    await s.page.wait_for_function(
        "() => { const a = document.querySelector('audio'); return a.currentTime > 0.3 }",
        timeout=10_000)
    duration = await audio.evaluate("a => a.duration")
    assert abs(duration - RECORDING_S) < 0.05, duration
    assert await audio.evaluate("a => a.error") is None
    assert "recordings.play" in [e.action for e in await panel.store.audit_entries()]
    assert await leaks(s) == []  # an agent doesn't unmask either
    refused = await s.page.goto(origin + path_of("delete", panel))
    assert refused.status == 403 and "Your role may not do this." in await s.page.content()
    status = await s.page.evaluate(FORGED_POST, f"/panel/recordings/{panel.recording_id}/delete")
    assert status == 403
    assert (await panel.store.get_recording(panel.recording_id)).status != "deleted"
    await s.close()


async def test_a_supervisor_shows_a_number_by_post_and_it_stays_out_of_the_url(browser, served):
    panel, origin = served
    s = await Session.open(browser, served, "supervisor")
    await s.page.goto(origin + "/panel/leads")
    assert await leaks(s) == []
    await s.page.locator(f"tr[data-lead='{panel.lead.id}'] button").click()
    await s.page.wait_for_load_state()
    assert NUMBER in await s.page.locator("h1").text_content()
    assert NUMBER not in s.page.url and "601" not in s.page.url
    assert NUMBER not in await s.page.title()
    entries = acts(await panel.store.audit_entries())
    assert [(e.action, e.actor) for e in entries] == [("numbers.unmask", "user:supervisor-user")]
    await s.close()


async def test_the_admin_deletes_a_recording_after_the_confirmation(browser, served):
    panel, origin = served
    s = await Session.open(browser, served, "admin")
    await s.page.goto(origin + path_of("lead", panel))
    await s.page.locator("a.danger").click()
    await s.page.wait_for_url(re.compile(r".*/delete$"))
    await s.page.locator("button.danger").click()
    await s.page.locator("h1", has_text="The recording was deleted").wait_for()
    assert (await panel.store.get_recording(panel.recording_id)).status == "deleted"
    await s.close()


async def test_screenshots_and_accessibility_of_each_page_for_each_role(browser, served):
    from axe_playwright_python.async_playwright import Axe
    panel, origin = served
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    axe = Axe()
    bad: list[str] = []
    context = await browser.new_context(viewport={"width": 768, "height": 900})
    page = await context.new_page()
    await page.goto(origin + "/panel/login")  # before anyone logs in
    await page.screenshot(path=str(SCREENSHOTS / "panel-login-768.png"), full_page=True)
    bad += [f"login: {v['id']} ({v['impact']})" for v in (await axe.run(page)).response[
        "violations"] if v["impact"] in ("serious", "critical")]
    await context.close()
    for role in ("admin", "supervisor", "agent", "viewer"):
        s = await Session.open(browser, served, role)  # one login (an admin's code is single-use)
        for width in (1280, 768):
            await s.page.set_viewport_size({"width": width, "height": 900})
            for name, (_, roles) in PAGES.items():
                if role not in roles:
                    continue
                response = await s.page.goto(origin + path_of(name, panel))
                assert response.status == 200, (role, name)
                await s.page.screenshot(path=str(SCREENSHOTS / f"panel-{name}-{role}-{width}.png"),
                                        full_page=True)
                results = await axe.run(s.page)
                bad += [f"{role} {name} {width}: {v['id']} ({v['impact']})"
                        for v in results.response["violations"]
                        if v["impact"] in ("serious", "critical")]
        await s.close()
    s = await Session.open(browser, served, "viewer")
    await s.page.goto(origin + path_of("widgets", panel))  # the 403 page too
    await s.page.screenshot(path=str(SCREENSHOTS / "panel-forbidden-viewer-1280.png"))
    bad += [f"viewer 403: {v['id']} ({v['impact']})"
            for v in (await axe.run(s.page)).response["violations"]
            if v["impact"] in ("serious", "critical")]
    await s.close()
    assert bad == [], bad
    print(f"\nscreenshots in {SCREENSHOTS}")


async def test_the_live_board_updates_by_server_sent_events(browser, served):
    panel, origin = served
    s = await Session.open(browser, served, "viewer")
    await s.page.goto(origin + "/panel/board")
    calls = s.page.locator("[data-part=calls] tr")
    assert await calls.count() == 0
    lead = await panel.store.create_lead(
        await panel.store.get_widget("shop"), phone_e164="+48601234999", phone_region="PL",
        phone_kind="mobile", name=None, email=None, consent=Consent(False, False, "2026-12"),
        now=time.time())
    attempt = await panel.store.start_attempt(lead.id, time.time())
    await s.page.locator(f"[data-part=calls] tr[data-lead='{lead.id}']").wait_for(timeout=10_000)
    assert "+48 *** *** 999" in await calls.first.text_content()
    await panel.store.finish_attempt(attempt, Result(Outcome.CONNECTED, talk_s=1.0,
                                                     connected=True), time.time(), retry_at=None)
    await s.page.locator(f"[data-part=calls] tr[data-lead='{lead.id}']").wait_for(
        state="detached", timeout=10_000)
    assert "601234999" not in await s.page.content()
    await s.close()


async def test_no_inline_script_or_style_runs_under_the_csp(browser, served):
    """The CSP holds: nothing the page carries is refused by it (no inline anything)."""
    panel, origin = served
    s = await Session.open(browser, served, "admin")
    violations: list[str] = []
    s.page.on("console", lambda m: violations.append(m.text)
              if "Content Security Policy" in m.text else None)
    for name in PAGES:
        await s.page.goto(origin + path_of(name, panel))
    assert violations == []
    colour = await s.page.evaluate(
        "getComputedStyle(document.querySelector('.top')).borderBottomStyle")
    assert colour == "solid"  # the external stylesheet applied
    await s.close()


async def test_polish_through_the_language_switch(browser, served):
    from axe_playwright_python.async_playwright import Axe
    panel, origin = served
    s = await Session.open(browser, served, "supervisor", width=768)
    await s.page.goto(origin + path_of("lead", panel))
    await s.page.select_option("#language", "pl")
    await s.page.locator("form[action='/panel/language'] button").click()
    await s.page.locator("h1", has_text="Zgłoszenie").wait_for()
    assert s.page.url.endswith(path_of("lead", panel))  # back on the same page
    assert await s.page.get_attribute("html", "lang") == "pl"
    assert "Dowód zgody" in await s.page.content()
    await s.page.screenshot(path=str(SCREENSHOTS / "panel-lead-supervisor-pl-768.png"),
                            full_page=True)
    violations = (await Axe().run(s.page)).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []
    await s.close()


async def test_the_admin_adds_an_admin_and_sees_its_qr_code_once(browser, served):
    from axe_playwright_python.async_playwright import Axe
    panel, origin = served
    s = await Session.open(browser, served, "admin", width=768)
    await s.page.goto(origin + "/panel/users")
    await s.page.fill("#u-name", "ada")
    await s.page.select_option("#u-role", "admin")
    await s.page.fill("#u-password", "short")
    await s.page.evaluate("document.querySelector('#u-password').removeAttribute('minlength')")
    await s.page.click("form[action='/panel/users'] button[type=submit]")
    error = s.page.locator("#user-password-error")  # refused beside its field
    await error.wait_for()
    assert await s.page.get_attribute("#u-password", "aria-invalid") == "true"
    assert await s.page.input_value("#u-name") == "ada"
    await s.page.fill("#u-password", "a long enough password")
    await s.page.click("form[action='/panel/users'] button[type=submit]")
    await s.page.locator("[data-part=totp-qr] svg").wait_for()
    box = await s.page.locator("[data-part=totp-qr] svg").bounding_box()
    assert box["width"] > 100 and box["width"] == box["height"]
    await s.page.screenshot(path=str(SCREENSHOTS / "panel-user-made-admin-768.png"),
                            full_page=True)
    violations = (await Axe().run(s.page)).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []
    assert "ada" in [u["username"] for u in await panel.services.users.list(
        Principal("t", Role.ADMIN))]
    await s.close()
