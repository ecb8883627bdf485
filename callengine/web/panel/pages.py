"""The leads, a lead, its recordings and the call report: each handler reads the request,
calls one service (the same as the API and the CLI), renders a template. Numbers stay masked
unless a permitted role POSTs "show number" (the service checks and audits it); the full
number is in that answer's body only, never in a URL."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import date, timedelta

from aiohttp import web

from callengine.access import Permission, Principal, require
from callengine.errors import InvalidInput
from callengine.model import LEAD_STATUSES
from callengine.services import views
from callengine.services.board import AGENT_STATES, PROGRESS_STATES
from callengine.web.admin import stream_wav
from callengine.web.panel.context import principal
from callengine.web.panel.render import form, page, panel_services, render

LEADS_PAGE = 200


def _filters(request: web.Request) -> tuple[str | None, str | None]:
    widget = request.query.get("widget") or None
    status = request.query.get("status") or None
    return widget, status


@page
async def leads(request: web.Request) -> web.Response:
    who = principal(request)
    services = panel_services(request)
    widget, status = _filters(request)
    rows = await services.leads.list(who, widget_id=widget, status=status, limit=LEADS_PAGE)
    return render(request, "leads.html", {
        "leads": rows, "widgets": await services.config.widget_choices(who),
        "statuses": LEAD_STATUSES, "widget": widget or "", "status": status or ""})


async def _detail(request: web.Request, who: Principal, lead_id: str, *, unmask: bool
                  ) -> dict:
    services = panel_services(request)
    lead = await services.leads.detail(who, lead_id, unmask=unmask)
    recordings = await services.recordings.list(who, lead_id=lead_id, include_deleted=True)
    clause = await services.clauses.shown_for(who, lead_id)
    return {"lead": lead, "recordings": recordings, "clause": clause}


@page
async def lead(request: web.Request) -> web.Response:
    who = principal(request)
    context = await _detail(request, who, request.match_info["lead_id"], unmask=False)
    return render(request, "lead.html", context)


@page
async def show_number(request: web.Request) -> web.Response:
    """POST: the lead with its full number, for a role that may unmask (audited by the
    service; anyone else gets the 403 page)."""
    await form(request)
    who = principal(request)
    context = await _detail(request, who, request.match_info["lead_id"], unmask=True)
    return render(request, "lead.html", {**context, "unmasked": True})


@page
async def recording_audio(request: web.Request) -> web.StreamResponse:
    """The decrypted audio, streamed as it is decrypted (nothing written to disk), as a WAV
    whose header and Content-Length give the browser its exact duration; the service audits
    the playback."""
    who = principal(request)
    plain = await panel_services(request).recordings.play(who, request.match_info["recording_id"])
    return await stream_wav(request, plain, **{"Content-Disposition": "inline"})


async def _recording(request: web.Request, who: Principal) -> dict:
    """The recording named in the path (any status), with what the confirmation shows."""
    return await panel_services(request).recordings.get(who, request.match_info["recording_id"])


@page
async def delete_form(request: web.Request) -> web.Response:
    who = principal(request)
    require(who, Permission.DELETE_RECORDINGS)  # the confirmation is for those who may
    return render(request, "delete.html", {"recording": await _recording(request, who)})


@page
async def delete(request: web.Request) -> web.Response:
    await form(request)
    who = principal(request)
    recording = await _recording(request, who)
    await panel_services(request).recordings.delete(who, recording["id"])
    return render(request, "deleted.html", {"recording": recording})


def _period(request: web.Request) -> tuple[str, str]:
    today = date.today()
    start = request.query.get("from") or (today - timedelta(days=30)).isoformat()
    end = request.query.get("to") or (today + timedelta(days=1)).isoformat()
    return start, end


@page
async def reports(request: web.Request) -> web.Response:
    who = principal(request)
    services = panel_services(request)
    widget = request.query.get("widget", "")
    start, end = _period(request)
    rows = None
    if widget:
        rows = await services.reports.calls(who, widget, start, end)
    else:  # no service call yet: the form is for those who may read reports
        require(who, Permission.READ_REPORTS)
    return render(request, "reports.html", {
        "widgets": await services.config.widget_choices(who), "widget": widget,
        "start": start, "end": end, "rows": rows})


@page
async def report_csv(request: web.Request) -> web.Response:
    who = principal(request)
    widget = request.query.get("widget", "")
    if not widget:
        raise InvalidInput("widget", "required: the widget of the report")
    start, end = _period(request)
    rows = await panel_services(request).reports.calls(who, widget, start, end)
    name = f"report-{widget}-{start}-{end}.csv".replace("/", "-").replace('"', "")
    return web.Response(text=views.report_csv(rows), content_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


BOARD_EVERY_S = 1.0  # how often the board's stream looks for a change
BOARD_FOR_S = 300.0  # a stream ends after this (EventSource reconnects by itself)


@page
async def board(request: web.Request) -> web.Response:
    snapshot = await panel_services(request).board.snapshot(principal(request))
    return render(request, "board.html", {"board": snapshot, "agent_states": AGENT_STATES,
                                          "progress_states": PROGRESS_STATES})


@page
async def board_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the board's snapshot (JSON) each time it changes."""
    who = principal(request)
    services = panel_services(request)
    snapshot = await services.board.snapshot(who)  # refused before the stream opens
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})
    await response.prepare(request)
    last = None
    loop = asyncio.get_running_loop()
    until = loop.time() + BOARD_FOR_S
    while loop.time() < until:
        if request.transport is None or request.transport.is_closing():
            break  # the browser went away (aiohttp does not cancel the handler)
        text = json.dumps(snapshot, separators=(",", ":"))
        if text != last:
            await response.write(f"event: board\ndata: {text}\n\n".encode())
            last = text
        await asyncio.sleep(BOARD_EVERY_S)
        snapshot = await services.board.snapshot(who)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


ROUTES = [  # (method, path under /panel, handler)
    ("GET", "/leads", leads),
    ("GET", "/leads/{lead_id}", lead),
    ("POST", "/leads/{lead_id}/number", show_number),
    ("GET", "/recordings/{recording_id}/audio", recording_audio),
    ("GET", "/recordings/{recording_id}/delete", delete_form),
    ("POST", "/recordings/{recording_id}/delete", delete),
    ("GET", "/board", board),
    ("GET", "/board/events", board_events),
    ("GET", "/reports", reports),
    ("GET", "/reports.csv", report_csv),
]
