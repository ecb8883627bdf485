"""The authenticated API: leads, configuration, recordings, tokens, the audit log, data
subjects and reports. Each handler reads the request, calls one service, renders its view."""

from __future__ import annotations

from aiohttp import web

from callengine.errors import InvalidInput
from callengine.recordings import Plaintext
from callengine.services import views
from callengine.services.configuration import KEEP
from callengine.web.auth import principal, wants_unmasked
from callengine.web.deps import services
from callengine.web.problems import json_body

MAX_PAGE = 1000  # leads per listing


async def get_lead(request: web.Request) -> web.Response:
    who = await principal(request)
    view = await services(request).leads.detail(
        who, request.match_info["lead_id"], unmask=wants_unmasked(request))
    return web.json_response(view)


async def list_leads(request: web.Request) -> web.Response:
    who = await principal(request)
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise InvalidInput("limit", "must be a whole number") from None
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be from 1 to {MAX_PAGE}")
    query = request.query
    leads = await services(request).leads.list(
        who, widget_id=query.get("widget"), status=query.get("status"),
        outcome=query.get("outcome"), created_from=query.get("from"),
        created_to=query.get("to"), limit=limit, unmask=wants_unmasked(request))
    return web.json_response({"leads": leads})


async def create_lead(request: web.Request) -> web.Response:
    who = await principal(request)
    _, lead = await services(request).leads.create_for(who, await json_body(request))
    return web.json_response(
        {**views.lead_public_view(lead), "status_url": f"/api/v1/leads/{lead.id}"}, status=201)


async def create_agent(request: web.Request) -> web.Response:
    who = await principal(request)
    data = await json_body(request)
    agent = await services(request).config.add_agent(who, data.get("name"), data.get("endpoint"))
    return web.json_response(views.agent_view(agent, enabled=False), status=201)


async def create_group(request: web.Request) -> web.Response:
    who = await principal(request)
    data = await json_body(request)
    group = await services(request).config.add_group(
        who, data.get("name"), data.get("strategy", "ring-all"), data.get("ring_timeout", 20),
        data.get("agents"), accept_digit=data.get("accept_digit"),
        accept_timeout=data.get("accept_timeout", 10))
    return web.json_response(views.group_view(group), status=201)


async def list_agents(request: web.Request) -> web.Response:
    agents = await services(request).config.agents(await principal(request))
    return web.json_response({"agents": [views.agent_view(a) for a in agents]})


async def update_agent(request: web.Request) -> web.Response:
    who = await principal(request)
    data = await _changes(request, ("endpoint", "enabled", "paused"))
    agent = await services(request).config.update_agent(
        who, request.match_info["agent_name"], endpoint=data.get("endpoint"),
        enabled=data.get("enabled"), paused=data.get("paused"))
    return web.json_response(views.agent_view(agent))


async def remove_agent(request: web.Request) -> web.Response:
    who = await principal(request)
    await services(request).config.remove_agent(who, request.match_info["agent_name"])
    return web.Response(status=204)


async def list_groups(request: web.Request) -> web.Response:
    groups = await services(request).config.groups(await principal(request))
    return web.json_response({"groups": [views.group_view(g) for g in groups]})


async def update_group(request: web.Request) -> web.Response:
    who = await principal(request)
    data = await _changes(request, ("strategy", "ring_timeout", "agents", "accept_digit",
                                    "accept_timeout"))
    group = await services(request).config.update_group(
        who, request.match_info["group_name"], strategy=data.get("strategy"),
        ring_timeout=data.get("ring_timeout"), agents=data.get("agents"),
        accept_digit=data.get("accept_digit", KEEP), accept_timeout=data.get("accept_timeout"))
    return web.json_response(views.group_view(group))


async def remove_group(request: web.Request) -> web.Response:
    who = await principal(request)
    await services(request).config.remove_group(who, request.match_info["group_name"])
    return web.Response(status=204)


async def _changes(request: web.Request, fields: tuple[str, ...]) -> dict:
    """A PATCH's body: only these fields (another one is refused, not ignored); a null is
    as if it were not there."""
    data = await json_body(request)
    for name in data:
        if name not in fields:
            raise InvalidInput(name, f"can't be changed here (only {', '.join(fields)})")
    return data


async def create_widget(request: web.Request) -> web.Response:
    who = await principal(request)
    data = await json_body(request)
    widget = await services(request).config.add_widget(
        who, data.get("id"), data.get("name"), data.get("settings", {}))
    return web.json_response(views.widget_view(widget), status=201)


async def list_widgets(request: web.Request) -> web.Response:
    widgets = await services(request).config.widgets(await principal(request))
    return web.json_response({"widgets": [views.widget_view(w) for w in widgets]})


async def get_widget(request: web.Request) -> web.Response:
    widget = await services(request).config.widget(await principal(request),
                                                   request.match_info["widget_id"])
    return web.json_response(views.widget_view(widget))


async def edit_widget(request: web.Request) -> web.Response:
    """PATCH: {name?, settings?, enabled?}; the settings given are merged over the current."""
    who = await principal(request)
    data = await json_body(request)
    unknown = sorted(set(data) - {"name", "settings", "enabled"})
    if unknown:
        raise InvalidInput(unknown[0], "unknown field")
    widget = await services(request).config.edit_widget(
        who, request.match_info["widget_id"], name=data.get("name"),
        settings=data.get("settings"), enabled=data.get("enabled"))
    return web.json_response(views.widget_view(widget))


async def remove_widget(request: web.Request) -> web.Response:
    who = await principal(request)
    await services(request).config.remove_widget(who, request.match_info["widget_id"])
    return web.Response(status=204)


async def list_recordings(request: web.Request) -> web.Response:
    recordings = await services(request).recordings.list(
        await principal(request), lead_id=request.query.get("lead"))
    return web.json_response({"recordings": recordings})


async def recording_audio(request: web.Request) -> web.StreamResponse:
    """Decrypt on the fly into the response: plaintext exists only in memory, never on disk."""
    who = await principal(request)
    plain = await services(request).recordings.play(who, request.match_info["recording_id"])
    return await stream_wav(request, plain)


async def stream_wav(request: web.Request, plain: Plaintext, **headers: str
                     ) -> web.StreamResponse:
    """A played recording as a WAV streamed as it is decrypted: its header and Content-Length
    give a browser its exact duration (the API's route and the panel's)."""
    response = web.StreamResponse(headers={
        "Content-Type": "audio/wav",
        "Content-Length": str(44 + plain.size),
        "Cache-Control": "no-store",
        "X-Recording-Complete": "true" if plain.complete else "false",
        **headers,
    })
    await response.prepare(request)
    await response.write(plain.wav_header())
    for chunk in plain.chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def delete_recording(request: web.Request) -> web.Response:
    who = await principal(request)
    await services(request).recordings.delete(who, request.match_info["recording_id"])
    return web.Response(status=204)


async def create_token(request: web.Request) -> web.Response:
    who = await principal(request)
    data = await json_body(request)
    made = await services(request).tokens.create(who, data.get("name"), data.get("role"))
    return web.json_response(views.new_token_view(made.name, made.role.value, made.token),
                             status=201)


async def audit_log(request: web.Request) -> web.Response:
    check = await services(request).audit.log(await principal(request))
    return web.json_response(views.audit_log_view(check))


async def subject_export(request: web.Request) -> web.Response:
    who = await principal(request)
    data = await json_body(request)
    export = await services(request).subjects.export(who, data.get("phone"))
    return web.json_response(export, headers={"Cache-Control": "no-store"})


async def subject_erase(request: web.Request) -> web.Response:
    who = await principal(request)
    data = await json_body(request)
    erasure = await services(request).subjects.erase(who, data.get("phone"))
    assert erasure is not None  # no confirmation step over HTTP
    return web.json_response({"leads": erasure.leads, "recordings": erasure.recordings})


async def report(request: web.Request) -> web.Response:
    who = await principal(request)
    widget_id = request.query.get("widget", "")
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidInput("format", "must be json or csv")
    rows = await services(request).reports.calls(
        who, widget_id, request.query.get("from", ""), request.query.get("to", ""),
        unmask=wants_unmasked(request))
    if fmt == "csv":
        return web.Response(text=views.report_csv(rows), content_type="text/csv")
    return web.json_response({"widget": widget_id, "rows": rows})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/leads", list_leads)
    app.router.add_post("/api/v1/leads", create_lead)
    app.router.add_get("/api/v1/leads/{lead_id}", get_lead)
    app.router.add_get("/api/v1/agents", list_agents)
    app.router.add_post("/api/v1/agents", create_agent)
    app.router.add_patch("/api/v1/agents/{agent_name}", update_agent)
    app.router.add_delete("/api/v1/agents/{agent_name}", remove_agent)
    app.router.add_get("/api/v1/groups", list_groups)
    app.router.add_post("/api/v1/groups", create_group)
    app.router.add_patch("/api/v1/groups/{group_name}", update_group)
    app.router.add_delete("/api/v1/groups/{group_name}", remove_group)
    app.router.add_get("/api/v1/widgets", list_widgets)
    app.router.add_post("/api/v1/widgets", create_widget)
    app.router.add_get("/api/v1/widgets/{widget_id}", get_widget)
    app.router.add_patch("/api/v1/widgets/{widget_id}", edit_widget)
    app.router.add_delete("/api/v1/widgets/{widget_id}", remove_widget)
    app.router.add_get("/api/v1/recordings", list_recordings)
    app.router.add_get("/api/v1/recordings/{recording_id}/audio", recording_audio)
    app.router.add_delete("/api/v1/recordings/{recording_id}", delete_recording)
    app.router.add_post("/api/v1/tokens", create_token)
    app.router.add_get("/api/v1/audit", audit_log)
    app.router.add_post("/api/v1/subjects/export", subject_export)
    app.router.add_post("/api/v1/subjects/erase", subject_erase)
    app.router.add_get("/api/v1/reports/calls", report)
