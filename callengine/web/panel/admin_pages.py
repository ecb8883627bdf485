"""The admin's pages: agents and groups, API tokens, the audit log with its
verification, and the data subjects' export and erasure (after a confirmation naming what
will go). The phone number of a data subject travels in POSTed forms only, never in a URL."""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from callengine.access import Forbidden, Permission, Role
from callengine.errors import Conflict, InvalidInput, NotFound
from callengine.flow import Strategy
from callengine.services.configuration import KEEP
from callengine.web.panel.context import principal
from callengine.web.panel.render import PANEL, form, form_page, page, panel_services, render


POSITION = "position:"  # a group form's field per agent: its place in the ring order


async def _agents_context(request: web.Request) -> dict:
    who = principal(request)
    services = panel_services(request)
    board = await services.board.snapshot(who)  # what each agent is doing now
    return {"agents": await services.config.agents(who),
            "states": {a["name"]: a["state"] for a in board["agents"]},
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
        _whole(data.get("ring_timeout", "")), members,
        accept_digit=data.get("accept_digit") or None,
        accept_timeout=_whole(data.get("accept_timeout", "10")))
    raise web.HTTPSeeOther(f"{PANEL}/agents")


def _row_form(kind: str) -> Callable[[web.Request], str]:
    """The id of the edit form of the row the path names (the page has one per agent, group)."""
    return lambda request: f"edit-{kind}-{request.match_info['name']}"


@form_page("agents.html", _row_form("agent"), _agents_context)
async def edit_agent(request: web.Request) -> web.Response:
    data = await form(request)
    await panel_services(request).config.update_agent(
        principal(request), request.match_info["name"], endpoint=data.get("endpoint", ""))
    raise web.HTTPSeeOther(f"{PANEL}/agents")


@page
async def enable_agent(request: web.Request) -> web.Response:
    """POST …/enable or …/disable: a disabled agent is not rung for new calls (the engine's
    next round); a call it is on goes on to its end."""
    await form(request)
    await panel_services(request).config.update_agent(
        principal(request), request.match_info["name"],
        enabled=request.match_info["state"] == "enable")
    raise web.HTTPSeeOther(f"{PANEL}/agents")


@page
async def pause_agent(request: web.Request) -> web.Response:
    """POST …/pause or …/resume: a paused agent is not rung until resumed (as *45 from the
    agent's phone does)."""
    await form(request)
    await panel_services(request).config.update_agent(
        principal(request), request.match_info["name"],
        paused=request.match_info["state"] == "pause")
    raise web.HTTPSeeOther(f"{PANEL}/agents")


@form_page("agents.html", _row_form("group"), _agents_context)
async def edit_group(request: web.Request) -> web.Response:
    data = await form(request)
    await panel_services(request).config.update_group(
        principal(request), request.match_info["name"], strategy=data.get("strategy", ""),
        ring_timeout=_whole(data.get("ring_timeout", "")), agents=_ordered(data),
        # the accept key: empty turns it off; a form without the fields leaves it be
        accept_digit=(data["accept_digit"] or None) if "accept_digit" in data else KEEP,
        accept_timeout=_whole(data["accept_timeout"]) if "accept_timeout" in data else None)
    raise web.HTTPSeeOther(f"{PANEL}/agents")


def _ordered(data: dict[str, str]) -> list[str]:
    """A group's members from its form's "position:NAME" fields: those numbered, 1 rung
    first (equal numbers in the page's order); an empty one is not a member."""
    chosen = []
    for index, (field, value) in enumerate(data.items()):
        if field.startswith(POSITION) and value.strip():
            if not value.strip().isdigit():
                raise InvalidInput("agents", "a position is a whole number (1 is rung first)"
                                             " or empty (not in the group)")
            chosen.append((int(value), index, field[len(POSITION):]))
    return [name for *_, name in sorted(chosen)]


def _removing(request: web.Request) -> tuple[str, str]:
    """(agent or group, its name) from the path."""
    kind = "agent" if request.path.startswith(f"{PANEL}/agents/") else "group"
    return kind, request.match_info["name"]


@page
async def confirm_removal(request: web.Request) -> web.Response:
    kind, name = _removing(request)
    config = panel_services(request).config
    listed = await (config.agents if kind == "agent" else config.groups)(principal(request))
    if name not in {item.name for item in listed}:
        raise NotFound(kind, name)
    return render(request, "remove.html", {"kind": kind, "name": name})


@page
async def remove(request: web.Request) -> web.Response:
    """Refused while in use: the confirmation page again, with the reason (409)."""
    kind, name = _removing(request)
    await form(request)
    config = panel_services(request).config
    try:
        await (config.remove_agent if kind == "agent" else config.remove_group)(
            principal(request), name)
    except Conflict as exc:
        return render(request, "remove.html", {"kind": kind, "name": name,
                                               "refused": str(exc)}, status=409)
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
    ("POST", "/agents/{name}/edit", edit_agent),
    ("POST", "/agents/{name}/{state:enable|disable}", enable_agent),
    ("POST", "/agents/{name}/{state:pause|resume}", pause_agent),
    ("GET", "/agents/{name}/remove", confirm_removal),
    ("POST", "/agents/{name}/remove", remove),
    ("POST", "/groups/{name}/edit", edit_group),
    ("GET", "/groups/{name}/remove", confirm_removal),
    ("POST", "/groups/{name}/remove", remove),
    ("POST", "/tokens", create_token),
    ("POST", "/tokens/{name}/revoke", revoke_token),
    ("GET", "/tokens", tokens),
    ("GET", "/audit", audit),
    ("GET", "/subjects", subjects),
    ("POST", "/subjects/export", subject_export),
    ("POST", "/subjects/erase/confirm", subject_erase_confirm),
    ("POST", "/subjects/erase", subject_erase),
]
