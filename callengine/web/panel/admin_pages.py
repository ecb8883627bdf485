"""The admin's pages: agents and groups, API tokens, the audit log with its
verification, and the data subjects' export and erasure (after a confirmation naming what
will go). The phone number of a data subject travels in POSTed forms only, never in a URL."""

from __future__ import annotations

import json

from aiohttp import web

from callengine.access import Forbidden, Permission, Role
from callengine.flow import Strategy
from callengine.web.panel.context import principal
from callengine.web.panel.render import PANEL, form, form_page, page, panel_services, render


async def _agents_context(request: web.Request) -> dict:
    who = principal(request)
    services = panel_services(request)
    return {"agents": await services.config.agents(who),
            "groups": await services.config.groups(who),
            "strategies": [s.value for s in Strategy]}


@page
async def agents(request: web.Request) -> web.Response:
    return render(request, "agents.html", await _agents_context(request))


@form_page("agents.html", "agent", _agents_context)
async def create_agent(request: web.Request) -> web.Response:
    data = await form(request)
    await panel_services(request).config.add_agent(principal(request), data.get("name"),
                                                   data.get("endpoint"))
    raise web.HTTPSeeOther(f"{PANEL}/agents")


@form_page("agents.html", "group", _agents_context)
async def create_group(request: web.Request) -> web.Response:
    data = await form(request)
    members = [v for v in (await request.post()).getall("agents", []) if isinstance(v, str)]
    await panel_services(request).config.add_group(
        principal(request), data.get("name"), data.get("strategy"),
        _whole(data.get("ring_timeout", "")), members)
    raise web.HTTPSeeOther(f"{PANEL}/agents")


def _whole(text: str) -> int | str:
    """A form's number as int (the service validates the range); else the text, refused."""
    return int(text) if text.strip().isdigit() else text


@page
async def create_token(request: web.Request) -> web.Response:
    """The new token is shown once, in this answer's body (never in a URL)."""
    data = await form(request)
    made = await panel_services(request).tokens.create(principal(request), data.get("name"),
                                                       data.get("role"))
    return render(request, "token_made.html", {"made": made})


@page
async def revoke_token(request: web.Request) -> web.Response:
    await form(request)
    await panel_services(request).tokens.revoke(principal(request), request.match_info["name"])
    raise web.HTTPSeeOther(f"{PANEL}/tokens")


@page
async def tokens(request: web.Request) -> web.Response:
    rows = await panel_services(request).tokens.list(principal(request))
    return render(request, "tokens.html", {"tokens": rows, "roles": [r.value for r in Role]})


@page
async def audit(request: web.Request) -> web.Response:
    check = await panel_services(request).audit.log(principal(request))
    return render(request, "audit.html", {
        "check": check, "entries": list(reversed(check.entries)),
        "problems": check.problems, "notes": [f for f in check.findings if not f.problem]})


@page
async def subjects(request: web.Request) -> web.Response:
    who = principal(request)
    if not (who.may(Permission.EXPORT_SUBJECT) or who.may(Permission.ERASE_SUBJECT)):
        raise Forbidden(who, Permission.EXPORT_SUBJECT)
    return render(request, "subjects.html", {})


@page
async def subject_export(request: web.Request) -> web.Response:
    data = await form(request)
    export = await panel_services(request).subjects.export(principal(request), data.get("phone"))
    return web.Response(
        body=json.dumps(export, ensure_ascii=False, indent=2).encode(),
        content_type="application/json", headers={
            "Content-Disposition": 'attachment; filename="subject-export.json"'})


@page
async def subject_erase_confirm(request: web.Request) -> web.Response:
    data = await form(request)
    preview = await panel_services(request).subjects.preview(principal(request),
                                                             data.get("phone"))
    return render(request, "erase.html", {"preview": preview, "phone": data.get("phone", "")})


@page
async def subject_erase(request: web.Request) -> web.Response:
    data = await form(request)
    erasure = await panel_services(request).subjects.erase(principal(request), data.get("phone"))
    assert erasure is not None  # confirmed on the page before
    return render(request, "erased.html", {"erasure": erasure})


ROUTES = [  # (method, path under /panel, handler)
    ("GET", "/agents", agents),
    ("POST", "/agents", create_agent),
    ("POST", "/groups", create_group),
    ("POST", "/tokens", create_token),
    ("POST", "/tokens/{name}/revoke", revoke_token),
    ("GET", "/tokens", tokens),
    ("GET", "/audit", audit),
    ("GET", "/subjects", subjects),
    ("POST", "/subjects/export", subject_export),
    ("POST", "/subjects/erase/confirm", subject_erase_confirm),
    ("POST", "/subjects/erase", subject_erase),
]
