"""The panel's pages through aiohttp's test client, as each role: what each may open, what it
sees, that forbidden acts are neither shown nor done (403 page), and that a viewer's answers
never hold the full number."""

from __future__ import annotations

import json
import re
import time

import pytest

from callengine.access import Principal, Role
from callengine.model import RECORDING_DELETED, Consent
from callengine.web.panel.texts import EN, PL, TEXTS
from tests.support.panel import CSRF, NUMBER, RATE, RECORDING_S, holds_number, user_headers

ROLES = ("admin", "supervisor", "agent", "viewer")
PAGES = ["/panel/leads", "/panel/board", "/panel/leads/{lead}", "/panel/reports",
         "/panel/reports?widget=shop", "/panel/reports.csv?widget=shop", "/panel/widgets",
         "/panel/agents", "/panel/tokens", "/panel/audit", "/panel/subjects",
         "/panel/recordings/{recording}/delete", "/panel/users", "/panel/account"]
# Who may open each page (the rest get the 403 page).
MAY_OPEN = {
    "/panel/leads": set(ROLES), "/panel/leads/{lead}": set(ROLES), "/panel/board": set(ROLES),
    "/panel/reports": {"admin", "supervisor", "viewer"},
    "/panel/reports?widget=shop": {"admin", "supervisor", "viewer"},
    "/panel/reports.csv?widget=shop": {"admin", "supervisor", "viewer"},
    "/panel/widgets": {"admin"}, "/panel/agents": {"admin"}, "/panel/tokens": {"admin"},
    "/panel/audit": {"admin"}, "/panel/subjects": {"admin"},
    "/panel/recordings/{recording}/delete": {"admin"},
    "/panel/users": {"admin"}, "/panel/account": set(ROLES),
}


def url(page: str, panel) -> str:
    return page.format(lead=panel.lead.id, recording=panel.recording_id)


async def actions(panel) -> list[str]:
    return [e.action for e in await panel.store.audit_entries()]


@pytest.mark.parametrize("role", ROLES)
async def test_each_page_opens_for_the_roles_that_may_and_is_403_html_for_the_rest(
        client, panel, role):
    for page in PAGES:
        response = await client.get(url(page, panel), headers=user_headers(role))
        body = await response.read()
        expected = 200 if role in MAY_OPEN[page] else 403
        assert response.status == expected, (page, role, body[:300])
        if page.endswith(".csv?widget=shop") and expected == 200:
            assert response.content_type == "text/csv"
            assert response.headers["Content-Disposition"].startswith("attachment")
        else:
            assert response.content_type == "text/html", (page, role)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp and response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"
        assert holds_number(body) == [], (page, role)  # no page shows the number by itself
        if response.content_type == "text/html":
            title = re.search(rb"<title>(.*?)</title>", body, re.S).group(1)
            assert b"<" not in title and body.count(b"<h1") == 1, (page, role)
        assert not re.search(rb"<script(?![^>]*\ssrc=)", body)  # no inline script
        assert b"style=" not in body and b"<style" not in body
        assert not re.search(rb"\son[a-z]+=", body) and b"javascript:" not in body


@pytest.mark.parametrize("role", ROLES)
async def test_the_nav_shows_only_what_the_role_may_open(client, panel, role):
    html = await (await client.get("/panel/leads", headers=user_headers(role))).text()
    links = set(re.findall(r'<nav.*?</nav>', html, re.S)[0].split('href="')[1:])
    links = {link.split('"')[0] for link in links}
    for page, roles in MAY_OPEN.items():
        if "{" in page or "?" in page or page == "/panel/account":  # account: in the top bar
            continue
        assert (page in links) == (role in roles), (page, role, links)


@pytest.mark.parametrize("role", ROLES)
async def test_the_lead_page_shows_evidence_and_only_the_permitted_controls(client, panel, role):
    html = await (await client.get(f"/panel/leads/{panel.lead.id}",
                                   headers=user_headers(role))).text()
    assert "+48 *** *** 567" in html
    assert "Shop Ltd. is the controller of your data" in html  # the exact clause text
    assert EN["clause_verified"] in html
    assert re.search(r'data-consent="marketing">\s*not ticked', html)
    assert re.search(r'data-consent="recording">\s*ticked', html)
    assert "normal clearing" in html and "16" in html and "6.5" in html  # cause, q850, ring
    assert re.search(r"data-acceptances>PJSIP/agent1: accepted, 5\.2\d* s<", html)
    assert ("<audio" in html) == (role in ("admin", "supervisor", "agent"))
    assert (f"/panel/recordings/{panel.recording_id}/delete" in html) == (role == "admin")
    assert (EN["show_number"] in html) == (role in ("admin", "supervisor"))
    assert await actions(panel) == []  # reading masked pages audits nothing


@pytest.mark.parametrize("role", ["admin", "supervisor"])
async def test_show_number_is_a_post_answered_with_the_number_and_audited(client, panel, role):
    response = await client.post(f"/panel/leads/{panel.lead.id}/number", data={"csrf": CSRF},
                                 headers=user_headers(role))
    html = await response.text()
    assert response.status == 200 and NUMBER in html
    assert NUMBER not in str(response.url) and f"<title>Lead {panel.lead.id}" in html
    entries = await panel.store.audit_entries()
    assert [(e.action, e.actor, e.target, e.detail) for e in entries] == [
        ("numbers.unmask", f"{role}-user", f"lead:{panel.lead.id}", "panel")]


@pytest.mark.parametrize("role", ["agent", "viewer"])
async def test_show_number_is_refused_to_roles_that_may_not(client, panel, role):
    response = await client.post(f"/panel/leads/{panel.lead.id}/number", data={"csrf": CSRF},
                                 headers=user_headers(role))
    body = await response.read()
    assert response.status == 403 and response.content_type == "text/html"
    assert EN["forbidden_text"].encode() in body and holds_number(body) == []
    assert await actions(panel) == []


async def test_a_post_without_the_csrf_token_is_refused(client, panel):
    response = await client.post(f"/panel/leads/{panel.lead.id}/number",
                                 headers=user_headers("admin"))
    assert response.status == 403 and await actions(panel) == []


@pytest.mark.parametrize("role", ["admin", "supervisor", "agent"])
async def test_playback_streams_a_wav_with_its_length_and_is_audited(client, panel, role):
    response = await client.get(f"/panel/recordings/{panel.recording_id}/audio",
                                headers=user_headers(role))
    body = await response.read()
    assert response.status == 200 and response.content_type == "audio/wav"
    size = int(RECORDING_S * RATE * 2)
    assert int(response.headers["Content-Length"]) == len(body) == 44 + size
    assert body[:4] == b"RIFF" and int.from_bytes(body[40:44], "little") == size
    assert int.from_bytes(body[24:28], "little") == RATE
    assert await actions(panel) == ["recordings.play"]
    assert list(panel.vault_dir.iterdir()) == [panel.vault_dir / f"{panel.recording_id}.cerec"]


async def test_a_viewer_may_not_play(client, panel):
    response = await client.get(f"/panel/recordings/{panel.recording_id}/audio",
                                headers=user_headers("viewer"))
    assert response.status == 403 and response.content_type == "text/html"
    assert await actions(panel) == []


@pytest.mark.parametrize("role", ["supervisor", "agent", "viewer"])
async def test_delete_is_refused_to_all_but_the_admin(client, panel, role):
    response = await client.post(f"/panel/recordings/{panel.recording_id}/delete",
                                 data={"csrf": CSRF}, headers=user_headers(role))
    assert response.status == 403
    assert (await panel.store.get_recording(panel.recording_id)).status != RECORDING_DELETED


async def test_the_admin_deletes_after_the_confirmation(client, panel):
    confirm = await (await client.get(f"/panel/recordings/{panel.recording_id}/delete",
                                      headers=user_headers("admin"))).text()
    assert "crypto-shred" in confirm and 'method="post"' in confirm
    response = await client.post(f"/panel/recordings/{panel.recording_id}/delete",
                                 data={"csrf": CSRF}, headers=user_headers("admin"))
    assert response.status == 200 and EN["deleted_title"] in await response.text()
    assert (await panel.store.get_recording(panel.recording_id)).status == RECORDING_DELETED
    assert not (panel.vault_dir / f"{panel.recording_id}.cerec").exists()
    assert await actions(panel) == ["recordings.delete"]
    html = await (await client.get(f"/panel/leads/{panel.lead.id}",
                                   headers=user_headers("admin"))).text()
    assert "<audio" not in html and EN["deleted"] in html
    gone = await client.get(f"/panel/recordings/{panel.recording_id}/audio",
                            headers=user_headers("admin"))
    assert gone.status == 404


async def test_leads_filter_by_widget_and_status(client, panel):
    h = user_headers("viewer")
    assert panel.lead.id in await (await client.get("/panel/leads?widget=shop&status=done",
                                                    headers=h)).text()
    assert panel.lead.id not in await (await client.get("/panel/leads?status=queued",
                                                        headers=h)).text()
    assert (await client.get("/panel/leads?status=nonsense", headers=h)).status == 422


async def test_the_report_and_its_csv_are_masked(client, panel):
    h = user_headers("supervisor")
    html = await (await client.get("/panel/reports?widget=shop", headers=h)).text()
    assert "+48 *** *** 567" in html and "1 rows" in html
    csv = await (await client.get("/panel/reports.csv?widget=shop", headers=h)).text()
    assert csv.splitlines()[0].startswith("lead,created_at") and "+48 *** *** 567" in csv
    assert holds_number(csv.encode()) == []


async def test_the_audit_page_shows_the_verification(client, panel):
    await client.post(f"/panel/leads/{panel.lead.id}/number", data={"csrf": CSRF},
                      headers=user_headers("supervisor"))
    html = await (await client.get("/panel/audit", headers=user_headers("admin"))).text()
    assert 'data-part="verify"' in html and "numbers.unmask" in html


async def test_subject_export_is_a_download_and_erasure_confirms_what_goes(client, panel):
    h = user_headers("admin")
    export = await client.post("/panel/subjects/export", data={"csrf": CSRF, "phone": NUMBER},
                               headers=h)
    assert export.status == 200 and export.headers["Content-Disposition"].startswith("attachment")
    assert (await export.json())["leads"][0]["phone"] == NUMBER
    confirm = await client.post("/panel/subjects/erase/confirm",
                                data={"csrf": CSRF, "phone": "+48 601 234 567"}, headers=h)
    html = await confirm.text()
    assert panel.lead.id in html and "1 " + EN["erase_leads"] in html
    assert "1 " + EN["erase_recordings"] in html and "+48 *** *** 567" in html
    assert (await panel.store.leads_for_number(NUMBER)) != []  # not yet
    done = await client.post("/panel/subjects/erase", data={"csrf": CSRF, "phone": NUMBER},
                             headers=h)
    assert EN["erased_text"].format(leads=1, recordings=1) in await done.text()
    assert await panel.store.leads_for_number(NUMBER) == []
    assert [a for a in await actions(panel) if a.startswith("subjects")] == [
        "subjects.export", "subjects.erase"]


@pytest.mark.parametrize("role", ["supervisor", "agent", "viewer"])
async def test_subject_acts_are_refused_to_all_but_the_admin(client, panel, role):
    for path in ("/panel/subjects/export", "/panel/subjects/erase/confirm",
                 "/panel/subjects/erase"):
        response = await client.post(path, data={"csrf": CSRF, "phone": NUMBER},
                                     headers=user_headers(role))
        assert response.status == 403, path
    assert await panel.store.leads_for_number(NUMBER) != []


async def test_polish_after_the_language_switch(client, panel):
    h = user_headers("viewer")
    switch = await client.post("/panel/language", data={
        "csrf": CSRF, "language": "pl", "next": "/panel/leads?status=done"}, headers=h,
        allow_redirects=False)
    assert switch.status == 303 and switch.headers["Location"] == "/panel/leads?status=done"
    html = await (await client.get("/panel/leads", headers=h)).text()
    assert '<html lang="pl">' in html and PL["leads_title"] in html
    evil = await client.post("/panel/language", data={
        "csrf": CSRF, "language": "pl", "next": "https://evil.example/"}, headers=h,
        allow_redirects=False)
    assert evil.headers["Location"] == "/panel/leads"


def test_no_text_module_redefines_another_ones_words():
    from callengine.web.panel import texts, texts_users, texts_widgets
    for lang in ("EN", "PL"):
        parts = [getattr(m, lang) for m in (texts, texts_users, texts_widgets)]
        keys = [k for part in parts for k in part]
        assert sorted(k for k in set(keys) if keys.count(k) > 1) == [], lang


def test_both_languages_have_the_same_texts():
    assert set(TEXTS["en"]) == set(TEXTS["pl"])
    assert all(text.strip() for text in TEXTS["pl"].values())


async def test_static_css_is_served(client):
    response = await client.get("/panel/static/panel.css")
    assert response.status == 200 and response.content_type == "text/css"


async def test_a_refused_form_comes_back_with_the_reason_beside_its_field(client, panel):
    h = user_headers("admin")
    bad = await client.post("/panel/groups", data=[
        ("csrf", CSRF), ("name", "night-shift"), ("strategy", "sequential"),
        ("ring_timeout", "x"), ("agents", "alice")], headers=h)
    html = await bad.text()
    assert bad.status == 422 and bad.content_type == "text/html"
    field = re.search(r'<input id="g-timeout"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in field and 'value="x"' in field
    error = re.search(r'<span class="field-error" id="group-ring_timeout-error"[^>]*>([^<]+)<',
                      html)
    assert error and error.group(1).strip(), html
    assert 'value="night-shift"' in html and '<option selected>sequential</option>' in html
    assert re.search(r'value="alice" checked>', html)  # the members ticked stay ticked
    assert 'id="a-name" name="name" value=""' in html  # the other form is left alone
    again = await client.post("/panel/agents", data={
        "csrf": CSRF, "name": "alice", "endpoint": "PJSIP/agent9"}, headers=h)
    text = await again.text()
    assert again.status == 409 and re.search(r'class="form-error" role="alert">[^<]*alice', text)
    assert 'value="PJSIP/agent9"' in text
    assert len(await panel.services.config.agents(Principal("t", Role.ADMIN))) == 1


async def test_the_admin_creates_agents_groups_and_tokens_and_revokes_a_token(client, panel):
    h = user_headers("admin")
    made = await client.post("/panel/agents", data={
        "csrf": CSRF, "name": "bob", "endpoint": "PJSIP/agent2"}, headers=h)
    assert made.status == 200 and "PJSIP/agent2" in await made.text()  # after the redirect
    again = await client.post("/panel/agents", data={
        "csrf": CSRF, "name": "bob", "endpoint": "PJSIP/agent2"}, headers=h)
    assert again.status == 409 and again.content_type == "text/html"
    group = await client.post("/panel/groups", data=[
        ("csrf", CSRF), ("name", "support"), ("strategy", "sequential"), ("ring_timeout", "15"),
        ("agents", "alice"), ("agents", "bob")], headers=h)
    assert group.status == 200 and "alice, bob" in await group.text()
    bad = await client.post("/panel/groups", data={
        "csrf": CSRF, "name": "empty", "strategy": "ring-all", "ring_timeout": "x"}, headers=h)
    assert bad.status == 422
    token = await client.post("/panel/tokens", data={"csrf": CSRF, "name": "crm",
                                                     "role": "supervisor"}, headers=h)
    html = await token.text()
    secret = re.search(r'data-part="token">(ce_[^<]+)<', html).group(1)
    assert (await panel.services.tokens.principal_for(secret)).actor == "crm"
    listed = await (await client.get("/panel/tokens", headers=h)).text()
    assert "crm" in listed and secret not in listed
    await client.post("/panel/tokens/crm/revoke", data={"csrf": CSRF}, headers=h)
    assert await panel.services.tokens.principal_for(secret) is None
    assert [a for a in await actions(panel) if a.startswith(("config", "tokens"))] == [
        "config.agent.create", "config.group.create", "tokens.create", "tokens.revoke"]


@pytest.mark.parametrize("role", ["supervisor", "agent", "viewer"])
async def test_configuration_is_refused_to_all_but_the_admin(client, panel, role):
    h = user_headers(role)
    for path, data in (("/panel/agents", {"name": "eve", "endpoint": "PJSIP/eve"}),
                       ("/panel/groups", {"name": "g", "strategy": "ring-all",
                                          "ring_timeout": "20", "agents": "alice"}),
                       ("/panel/tokens", {"name": "t", "role": "admin"}),
                       ("/panel/tokens/x/revoke", {})):
        response = await client.post(path, data={"csrf": CSRF, **data}, headers=h)
        assert response.status == 403, path
    assert await actions(panel) == []


async def test_the_board_streams_its_snapshot_as_server_sent_events(client, panel):
    queued = await panel.store.create_lead(
        await panel.store.get_widget("shop"), phone_e164="+48601234999", phone_region="PL",
        phone_kind="mobile", name=None, email=None,
        consent=Consent(False, False, "2026-12"), now=time.time())
    await panel.store.start_attempt(queued.id, time.time())
    html = await (await client.get("/panel/board", headers=user_headers("viewer"))).text()
    assert queued.id in html and "+48 *** *** 999" in html and "601234999" not in html
    async with client.get("/panel/board/events", headers=user_headers("viewer")) as events:
        assert events.content_type == "text/event-stream"
        assert (await events.content.readline()) == b"event: board\n"
        data = json.loads((await events.content.readline()).decode()[len("data: "):])
    assert [c["lead"] for c in data["calls"]] == [queued.id]
    assert data["calls"][0]["phone"] == "+48 *** *** 999"
    # no engine runs beside this panel: it says it does not know what alice is doing
    assert data["agents"] == [{"name": "alice", "enabled": True, "paused": False,
                              "state": "unknown"}]
    assert re.search(r'data-agent="alice" data-state="unknown"><td>alice</td><td>unknown', html)


async def test_the_widgets_page_has_every_setting_its_clause_versions_and_the_snippet(client,
                                                                                      panel):
    html = await (await client.get("/panel/widgets/shop", headers=user_headers("admin"))).text()
    widget = await panel.store.get_widget("shop")
    assert widget.public_key in html and "allowed_regions" in html and "2026-12" in html
    assert f'data-widget=&#34;{widget.public_key}&#34;' in html or \
        f"data-widget=&quot;{widget.public_key}&quot;" in html  # the snippet, escaped as text
