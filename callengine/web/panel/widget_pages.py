"""The admin's widget pages: the list with a form for a new widget, and a page per widget with
a form for every setting (a refused one shown beside its field: render.form_page), its
information clause versions, its calling hours, disable/enable, removal (after a confirmation
naming it; refused with the reason while leads name it, 409), the embed snippet and a preview.

The preview is the real widget.js on a page of its own, framed by the widget's page (the only
panel page that may be framed, and only by the panel: render.FRAMED_BY_PANEL), given the
widget's public config as `data-preview`, so it never asks for a challenge nor sends a lead.
GET shows the saved settings; the edit form POSTs its unsaved ones into the frame (a button
without JavaScript, and static/widget_preview.js on every change), validated, never saved."""

from __future__ import annotations

import json
import re
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from callengine.errors import Conflict, InvalidInput
from callengine.hours import DAYS
from callengine.appearance import WIDGET_POSITIONS
from callengine.model import ALLOWED_KINDS, RETRYABLE_OUTCOMES
from callengine.numbers import DIAL_FORMATS
from callengine.services.widgets import public_config
from callengine.web.panel.context import principal
from callengine.web.panel.render import (
    FRAMED_BY_PANEL, PANEL, form, form_page, language, page, panel_services, render,
)
from callengine.web.panel.texts import LANGUAGES

# Every setting's field, by fieldset: (setting, kind). Kinds: text, optional (empty: null),
# int, optional_int, bool (a checkbox), select / choices (one / several of OPTIONS), list
# (comma-separated), lines (one per line), json (a textarea), colour, group.
FIELDSETS: list[tuple[str, list[tuple[str, str]]]] = [
    ("fs_look", [("colour", "colour"), ("position", "select"), ("texts", "json"),
                 ("ask_name", "bool"), ("ask_email", "bool"), ("countdown_s", "int"),
                 ("open_after_s", "optional_int"), ("exit_intent", "bool"),
                 ("challenge", "select"), ("allowed_origins", "lines")]),
    ("fs_calling", [("group", "group"), ("visitor_endpoint", "text"),
                    ("number_format", "select"), ("caller_id", "text"),
                    ("visitor_ring_timeout", "int"), ("whisper", "optional"),
                    ("max_attempts", "int"), ("retry_delay_s", "int"),
                    ("retry_on", "choices"), ("retry_schedule", "json"),
                    ("queue", "optional"), ("queue_wait_s", "int")]),
    ("fs_numbers", [("allowed_regions", "list"), ("default_region", "optional"),
                    ("allowed_kinds", "choices")]),
    ("fs_limits", [("max_leads_per_number_per_15min", "int"),
                   ("max_leads_per_number_per_hour", "int"),
                   ("max_leads_per_number_per_day", "int"),
                   ("max_numbers_per_client_per_hour", "int"),
                   ("max_numbers_per_client_per_day", "int"),
                   ("max_leads_per_hour", "int"), ("duplicate_window_s", "int")]),
    ("fs_recording", [("recording", "select"), ("recording_requires_consent", "bool"),
                      ("recording_notice", "optional"), ("lead_retention_days", "int"),
                      ("recording_retention_days", "int")]),
    ("fs_hours", [("time_zone", "text"), ("hours", "json"), ("holidays", "list"),
                  ("slot_minutes", "int"), ("slot_capacity", "int"), ("slot_days", "int")]),
]
OPTIONS: dict[str, list[str]] = {
    "number_format": sorted(DIAL_FORMATS), "recording": ["off", "on"],
    "challenge": ["on", "off"], "position": list(WIDGET_POSITIONS),
    "retry_on": sorted(RETRYABLE_OUTCOMES), "allowed_kinds": sorted(ALLOWED_KINDS),
}
_WHOLE = re.compile(r"-?\d{1,12}")


def shown(kind: str, value: Any) -> Any:
    """A setting's value as its field holds it."""
    if kind in ("bool", "choices"):
        return value if kind == "bool" else list(value)
    if kind == "json":
        return "" if value in (None, {}) else json.dumps(value, indent=2, ensure_ascii=False)
    if kind in ("list", "lines"):
        return (", " if kind == "list" else "\n").join(value)
    return "" if value is None else str(value)


def settings_from_form(data: Any) -> dict[str, Any]:
    """Every setting from the edit form's fields (a MultiDict), as the service takes them: a
    value it refuses is passed on as typed, for its message."""
    settings: dict[str, Any] = {}
    for _, fields in FIELDSETS:
        for name, kind in fields:
            raw = data.get(name, "")
            raw = raw.strip() if isinstance(raw, str) else ""
            if kind == "bool":
                settings[name] = name in data
            elif kind == "choices":
                settings[name] = [v for v in data.getall(name, []) if isinstance(v, str)]
            elif kind in ("int", "optional_int"):
                settings[name] = (None if kind == "optional_int" and not raw
                                  else int(raw) if _WHOLE.fullmatch(raw) else raw)
            elif kind == "optional":
                settings[name] = raw or None
            elif kind in ("list", "lines"):
                settings[name] = [p.strip() for p in re.split(r"[,\n]", raw) if p.strip()]
            elif kind == "json":
                settings[name] = _json(name, raw)
            else:
                settings[name] = raw
    return settings


def _json(name: str, raw: str) -> Any:
    if not raw:
        return None if name == "hours" else {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(name, f"is not valid JSON: {exc}") from None


def _local(at: float, zone: str) -> str:
    return datetime.fromtimestamp(at, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def _hours_view(settings: Any, public: dict[str, Any]) -> dict[str, Any]:
    """The calling hours as the page shows them: a weekly table in the widget's time zone,
    its holidays, and whether it is open now or when it opens next (services.hours)."""
    hours = settings.hours
    days = [(day, None if hours is None else
             ", ".join(f"{a}–{b}" for a, b in hours.get(day, ()))) for day in DAYS]
    opening = public["next_open_at"]
    return {"always": hours is None, "days": days, "zone": settings.time_zone,
            "holidays": list(settings.holidays), "open": public["open"],
            "next": None if opening is None else _local(opening, settings.time_zone)}


def _embed(request: web.Request, public_key: str) -> str:
    origin = f"{request.scheme}://{request.host}"
    return (f'<script async src="{escape(origin)}/widget.js"'
            f' data-widget="{escape(public_key)}"></script>')


async def _list_context(request: web.Request) -> dict[str, Any]:
    who = principal(request)
    services = panel_services(request)
    return {"widgets": await services.config.widgets(who),
            "groups": await services.config.groups(who)}


@page
async def widgets(request: web.Request) -> web.Response:
    return render(request, "widgets.html", await _list_context(request))


@form_page("widgets.html", "new", _list_context)
async def create_widget(request: web.Request) -> web.Response:
    data = await form(request)
    settings: dict[str, Any] = {"group": data.get("group", "")}
    regions = [r.strip() for r in data.get("allowed_regions", "").split(",") if r.strip()]
    if regions:
        settings["allowed_regions"] = regions
    widget = await panel_services(request).config.add_widget(
        principal(request), data.get("id", ""), data.get("name", ""), settings)
    raise web.HTTPSeeOther(f"{PANEL}/widgets/{widget.id}")


async def _widget_context(request: web.Request) -> dict[str, Any]:
    who = principal(request)
    services = panel_services(request)
    widget = await services.config.widget(who, request.match_info["widget_id"])
    settings = widget.settings
    return {
        "widget": widget,
        "fieldsets": [(legend, [(name, kind, shown(kind, getattr(settings, name)))
                                for name, kind in fields]) for legend, fields in FIELDSETS],
        "options": {**OPTIONS, "group": [g.name for g in await services.config.groups(who)]},
        "clauses": await services.clauses.list(who, widget.id),
        "hours": _hours_view(settings, await services.hours.public(widget)),
        "embed": _embed(request, widget.public_key),
        "disabled_at": None if widget.enabled else _local(widget.disabled_at or 0, "UTC"),
        "languages": LANGUAGES,
    }


@page
async def widget_page(request: web.Request) -> web.Response:
    return render(request, "widget.html", await _widget_context(request))


@form_page("widget.html", "edit", _widget_context)
async def edit_widget(request: web.Request) -> web.Response:
    data = await request.post()
    name = data.get("name")
    await panel_services(request).config.edit_widget(
        principal(request), request.match_info["widget_id"],
        name=name if isinstance(name, str) else None, settings=settings_from_form(data))
    raise web.HTTPSeeOther(request.path)


async def _set_enabled(request: web.Request, enabled: bool) -> web.Response:
    await form(request)
    widget = await panel_services(request).config.set_widget_enabled(
        principal(request), request.match_info["widget_id"], enabled)
    raise web.HTTPSeeOther(f"{PANEL}/widgets/{widget.id}")


@page
async def disable_widget(request: web.Request) -> web.Response:
    return await _set_enabled(request, False)


@page
async def enable_widget(request: web.Request) -> web.Response:
    return await _set_enabled(request, True)


async def _remove_context(request: web.Request) -> dict[str, Any]:
    who = principal(request)
    services = panel_services(request)
    widget = await services.config.widget(who, request.match_info["widget_id"])
    refused = await services.config.removal_refused(who, widget.id)
    return {"widget": widget, "refused": str(refused) if refused else None}


@page
async def remove_confirm(request: web.Request) -> web.Response:
    return render(request, "widget_remove.html", await _remove_context(request))


@page
async def remove_widget(request: web.Request) -> web.Response:
    await form(request)
    try:
        await panel_services(request).config.remove_widget(principal(request),
                                                           request.match_info["widget_id"])
    except Conflict as exc:  # in use since the confirmation was shown, or asked anyway
        return render(request, "widget_remove.html",
                      {**await _remove_context(request), "refused": str(exc)}, status=409)
    raise web.HTTPSeeOther(f"{PANEL}/widgets")


@page
async def preview(request: web.Request) -> web.Response:
    """The framed preview: GET the saved settings, POST the edit form's (not saved)."""
    request[FRAMED_BY_PANEL] = True
    who = principal(request)
    widget_id = request.match_info["widget_id"]
    data = await request.post() if request.method == "POST" else request.query
    lang = data.get("preview_lang") or data.get("lang") or language(request)
    lang = lang if lang in LANGUAGES else "en"
    settings = settings_from_form(data) if request.method == "POST" else None
    try:
        widget = await panel_services(request).config.widget_preview(who, widget_id, settings)
    except InvalidInput as exc:
        return render(request, "widget_preview.html",
                      {"error": f"{exc.field}: {exc.message}", "preview_lang": lang}, status=422)
    return render(request, "widget_preview.html", {
        "widget": widget, "config": public_config(widget, lang), "preview_lang": lang})


ROUTES = [  # (method, path under /panel, handler)
    ("GET", "/widgets", widgets),
    ("POST", "/widgets", create_widget),
    ("GET", "/widgets/{widget_id}", widget_page),
    ("POST", "/widgets/{widget_id}", edit_widget),
    ("POST", "/widgets/{widget_id}/disable", disable_widget),
    ("POST", "/widgets/{widget_id}/enable", enable_widget),
    ("GET", "/widgets/{widget_id}/remove", remove_confirm),
    ("POST", "/widgets/{widget_id}/remove", remove_widget),
    ("GET", "/widgets/{widget_id}/preview", preview),
    ("POST", "/widgets/{widget_id}/preview", preview),
]
