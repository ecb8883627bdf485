"""The widget pages through the test client (tests/support/panel.py's seeded panel, logged in by
the X-Test-User header): the list with its links and a create form, a widget's page with a
field for every setting, an edit saved and one refused inline, disable and enable, removal
refused for the seeded widget (it has a lead) and done for a fresh one, the framed preview
(its own frame headers, nothing else relaxed), and only admins for all of it."""

from __future__ import annotations

import html as htmllib
import json
import re

import pytest

from callengine.access import Principal, Role
from callengine.model import WidgetSettings
from callengine.web.panel.widget_pages import FIELDSETS
from tests.support.panel import CSRF, user_headers
from tests.support.shop import disabled_long_ago

ADMIN = user_headers("admin")


async def actions(panel) -> list[str]:
    return [e.action for e in await panel.store.audit_entries()]


def edit_form(html: str) -> dict[str, list[str]]:
    """The edit form's fields as a browser would send them (checked boxes only)."""
    form = re.search(r'<form[^>]*id="widget-form".*?</form>', html, re.S).group(0)
    fields: dict[str, list[str]] = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if name is None:
            continue
        kind = (re.search(r'type="([^"]+)"', tag) or [None, "text"])[1]
        value = htmllib.unescape((re.search(r'value="([^"]*)"', tag) or [None, "on"])[1])
        if kind == "checkbox" and " checked" not in tag:
            continue
        fields.setdefault(name.group(1), []).append(value)
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form,
                                 re.S):
        fields[name] = [htmllib.unescape(body)]
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r"<option selected>([^<]*)</option>", body) or re.search(
            r"<option>([^<]*)</option>", body)
        fields[name] = [htmllib.unescape(chosen.group(1))]
    return fields


def post_data(fields: dict[str, list[str]], **changes: str) -> list[tuple[str, str]]:
    data = [(k, v) for k, values in fields.items() for v in values if k not in changes]
    return data + list(changes.items())


def test_the_form_has_a_field_for_every_setting():
    names = [name for _, fields in FIELDSETS for name, _ in fields]
    assert sorted(names) == sorted(WidgetSettings.__dataclass_fields__)


async def test_the_list_links_each_widget_and_creates_one(client, panel):
    html = await (await client.get("/panel/widgets", headers=ADMIN)).text()
    assert 'href="/panel/widgets/shop"' in html
    created = await client.post("/panel/widgets", headers=ADMIN, allow_redirects=False, data={
        "csrf": CSRF, "id": "spare", "name": "Spare", "group": "sales",
        "allowed_regions": "PL, DE"})
    assert created.status == 303 and created.headers["Location"] == "/panel/widgets/spare"
    widget = await panel.store.get_widget("spare")
    assert widget.settings.allowed_regions == ("PL", "DE")
    refused = await client.post("/panel/widgets", headers=ADMIN, data={
        "csrf": CSRF, "id": "Bad Id", "name": "x", "group": "sales"})
    assert refused.status == 422
    text = await refused.text()
    assert 'id="new-id-error"' in text and 'value="Bad Id"' in text  # beside it, kept
    assert await actions(panel) == ["config.widget.create"]


async def test_the_widget_page_shows_every_setting_hours_clauses_and_the_preview(client, panel):
    await panel.services.config.edit_widget(
        _admin(), "shop", settings={"time_zone": "Europe/Warsaw", "holidays": ["2026-12-25"],
                                    "hours": {"mon": [["09:00", "17:00"]],
                                              "sat": [["10:00", "12:00"], ["13:00", "14:00"]]}})
    response = await client.get("/panel/widgets/shop", headers=ADMIN)
    assert response.status == 200
    html = await response.text()
    fields = edit_form(html)
    for _, settings in FIELDSETS:
        for name, kind in settings:
            assert f'name="{name}"' in html, name
    assert fields["colour"] == ["#1f5fbf"] and fields["allowed_regions"] == ["PL"]
    assert json.loads(fields["hours"][0])["sat"][1] == ["13:00", "14:00"]
    assert "Europe/Warsaw" in html and "09:00–17:00" in html and "10:00–12:00, 13:00–14:00" in html
    assert "2026-12-25" in html
    assert "2026-12" in html and "Shop Ltd. is the controller" in html  # the clause, its text
    assert '<iframe name="widget-preview"' in html and 'src="/panel/widgets/shop/preview' in html
    assert '<script src="/panel/static/widget_preview.js"' in html
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_an_edit_is_saved_and_a_refused_one_shows_inline_keeping_what_was_typed(
        client, panel):
    fields = edit_form(await (await client.get("/panel/widgets/shop", headers=ADMIN)).text())
    saved = await client.post("/panel/widgets/shop", headers=ADMIN, allow_redirects=False,
                              data=post_data(fields, csrf=CSRF, name="Shop PL",
                                             colour="#aa0000", position="bottom-left",
                                             countdown_s="12", ask_email="on"))
    assert saved.status == 303, await saved.text()
    widget = await panel.store.get_widget("shop")
    assert widget.name == "Shop PL" and widget.settings.colour == "#aa0000"
    assert widget.settings.position == "bottom-left" and widget.settings.countdown_s == 12
    assert widget.settings.ask_email is True
    assert widget.settings.allowed_regions == ("PL",) and widget.settings.challenge == "off"
    [entry] = [e for e in await panel.store.audit_entries() if e.action == "config.widget.update"]
    assert json.loads(entry.detail) == {"name": "Shop PL", "colour": "#aa0000",
                                        "position": "bottom-left", "countdown_s": 12,
                                        "ask_email": True}
    for change, field in (({"max_attempts": "99"}, "max_attempts"),
                          ({"texts": "{not json"}, "texts"),
                          ({"hours": '{"mon": [["9", "17"]]}'}, "hours")):
        refused = await client.post("/panel/widgets/shop", headers=ADMIN,
                                    data=post_data(fields, csrf=CSRF, **change))
        assert refused.status == 422, field
        text = await refused.text()
        assert f'id="edit-{field}-error"' in text, field
        assert next(iter(change.values())) in htmllib.unescape(text), field  # kept
    assert (await panel.store.get_widget("shop")).settings == widget.settings


async def test_disable_and_enable(client, panel):
    disabled = await client.post("/panel/widgets/shop/disable", headers=ADMIN,
                                 data={"csrf": CSRF}, allow_redirects=False)
    assert disabled.status == 303
    assert not (await panel.store.get_widget("shop")).enabled
    html = await (await client.get("/panel/widgets/shop", headers=ADMIN)).text()
    assert "disabled since" in html and 'action="/panel/widgets/shop/enable"' in html
    preview = await (await client.get("/panel/widgets/shop/preview", headers=ADMIN)).text()
    assert "visitors don't see it" in htmllib.unescape(preview)
    await client.post("/panel/widgets/shop/enable", headers=ADMIN, data={"csrf": CSRF})
    assert (await panel.store.get_widget("shop")).enabled
    assert [a for a in await actions(panel)] == ["config.widget.disable", "config.widget.enable"]


async def test_removal_is_refused_with_the_reason_while_a_lead_names_it(client, panel):
    confirm = await (await client.get("/panel/widgets/shop/remove", headers=ADMIN)).text()
    assert "widget 'shop' has 1 lead: disable it instead" in htmllib.unescape(confirm)
    assert 'action="/panel/widgets/shop/remove"' not in confirm  # no button that can't work
    refused = await client.post("/panel/widgets/shop/remove", headers=ADMIN, data={"csrf": CSRF})
    assert refused.status == 409
    assert "has 1 lead: disable it instead" in htmllib.unescape(await refused.text())
    assert await panel.store.get_widget("shop")
    assert await actions(panel) == []


async def test_a_fresh_widget_is_removed_after_a_confirmation_naming_it(client, panel):
    await panel.services.config.add_widget(_admin(), "spare", "Spare shop", {"group": "sales"})
    confirm = await (await client.get("/panel/widgets/spare/remove", headers=ADMIN)).text()
    assert "is enabled: disable it first" in confirm  # a request may be reading it
    assert 'action="/panel/widgets/spare/remove"' not in confirm
    asked = await client.post("/panel/widgets/spare/remove", headers=ADMIN, data={"csrf": CSRF})
    assert asked.status == 409 and await panel.store.get_widget("spare")
    await panel.services.config.set_widget_enabled(_admin(), "spare", False)
    await disabled_long_ago(panel.store, "spare")
    confirm = await (await client.get("/panel/widgets/spare/remove", headers=ADMIN)).text()
    assert "Spare shop" in confirm and 'action="/panel/widgets/spare/remove"' in confirm
    removed = await client.post("/panel/widgets/spare/remove", headers=ADMIN,
                                data={"csrf": CSRF}, allow_redirects=False)
    assert removed.status == 303 and removed.headers["Location"] == "/panel/widgets"
    assert (await client.get("/panel/widgets/spare", headers=ADMIN)).status == 404
    assert (await actions(panel))[-1] == "config.widget.remove"


async def test_the_preview_page_is_framed_by_the_panel_only_and_shows_unsaved_settings(
        client, panel):
    widget = await panel.store.get_widget("shop")
    response = await client.get("/panel/widgets/shop/preview?lang=pl", headers=ADMIN)
    assert response.status == 200
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in csp and "frame-ancestors 'none'" not in csp
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp  # nothing else relaxed
    html = await response.text()
    assert '<html lang="pl">' in html
    assert f'src="/widget.js" data-widget="{widget.public_key}" data-preview=' in html
    config = json.loads(htmllib.unescape(re.search(r"data-preview='([^']*)'", html).group(1)))
    assert config["colour"] == "#1f5fbf" and config["texts"]["button"] == "Zadzwońcie do mnie"
    assert not re.search(r"<script(?![^>]*\ssrc=)", html) and "style=" not in html
    fields = edit_form(await (await client.get("/panel/widgets/shop", headers=ADMIN)).text())
    unsaved = await client.post("/panel/widgets/shop/preview", headers=ADMIN, data=post_data(
        fields, csrf=CSRF, colour="#00aa00", preview_lang="en",
        texts='{"en": {"button": "Ring me"}}'))
    assert unsaved.status == 200
    assert unsaved.headers["X-Frame-Options"] == "SAMEORIGIN"
    config = json.loads(htmllib.unescape(
        re.search(r"data-preview='([^']*)'", await unsaved.text()).group(1)))
    assert config["colour"] == "#00aa00" and config["texts"]["button"] == "Ring me"
    assert (await panel.store.get_widget("shop")).settings.colour == "#1f5fbf"  # not saved
    bad = await client.post("/panel/widgets/shop/preview", headers=ADMIN,
                            data=post_data(fields, csrf=CSRF, colour="green"))
    assert bad.status == 422 and "colour" in await bad.text()
    assert await actions(panel) == []


@pytest.mark.parametrize("role", ["supervisor", "agent", "viewer"])
async def test_only_admins(client, panel, role):
    h = user_headers(role)
    for path in ("/panel/widgets", "/panel/widgets/shop", "/panel/widgets/shop/remove",
                 "/panel/widgets/shop/preview"):
        assert (await client.get(path, headers=h)).status == 403, path
    for path in ("/panel/widgets", "/panel/widgets/shop", "/panel/widgets/shop/disable",
                 "/panel/widgets/shop/remove", "/panel/widgets/shop/preview"):
        response = await client.post(path, headers=h, data={"csrf": CSRF, "id": "x",
                                                            "group": "sales", "name": "x"})
        assert response.status == 403, path
    assert (await panel.store.get_widget("shop")).enabled
    assert [w.id for w in await panel.store.list_widgets()] == ["shop"]
    assert await actions(panel) == []


def _admin() -> Principal:
    return Principal("ops", Role.ADMIN)


async def test_the_widget_pages_in_polish(client, panel):
    client.session.cookie_jar.update_cookies({"panel_language": "pl"})
    for path, words in (("/panel/widgets", "Nowy widżet"),
                        ("/panel/widgets/shop", "Godziny dzwonienia"),
                        ("/panel/widgets/shop/remove", "Tego widżetu nie można usunąć"),
                        ("/panel/widgets/shop/preview", "Podgląd widżetu")):
        response = await client.get(path, headers=ADMIN)
        assert response.status == 200, path
        assert words in await response.text(), path


def test_the_widget_texts_have_the_same_keys_in_both_languages():
    from callengine.web.panel import texts_widgets

    assert set(texts_widgets.EN) == set(texts_widgets.PL)
