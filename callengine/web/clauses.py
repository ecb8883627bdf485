"""Information clauses: the admin's versions (authenticated) and the widget's current clause
for a language (public, by the widget's key). See docs/consent.md."""

from __future__ import annotations

from aiohttp import web

from callengine.errors import NotFound
from callengine.services.clauses import ClauseMissing, clause_admin_view, clause_view
from callengine.web.auth import principal
from callengine.web.deps import services
from callengine.web.security import widget_of
from callengine.web.problems import Problem, json_body


async def create_clause(request: web.Request) -> web.Response:
    who = await principal(request)
    data = await json_body(request)
    clause = await services(request).clauses.create(
        who, request.match_info["widget_id"], data, replace=bool(data.get("replace", False)))
    return web.json_response(clause_admin_view(clause), status=201)


async def list_clauses(request: web.Request) -> web.Response:
    who = await principal(request)
    rows = await services(request).clauses.list(
        who, request.match_info["widget_id"], request.query.get("lang"))
    return web.json_response({"clauses": [clause_admin_view(row) for row in rows]})


async def get_clause(request: web.Request) -> web.Response:
    who = await principal(request)
    clauses = services(request).clauses
    widget_id, version = request.match_info["widget_id"], request.match_info["version"]
    rows = [row for row in await clauses.list(who, widget_id, request.query.get("lang"))
            if row["version"] == version]
    if not rows:
        raise NotFound("clause", f"{widget_id}/{version}")
    return web.json_response({"clauses": [clause_admin_view(row) for row in rows]})


async def public_clause(request: web.Request) -> web.Response:
    widget = widget_of(request)
    try:
        clause = await services(request).clauses.current(
            widget.id, request.query.get("lang", "en"))
    except ClauseMissing:
        raise Problem(404, "clause-missing", "No information clause",
                      "this widget has no information clause for the language") from None
    return web.json_response(clause_view(clause))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/widgets/{widget_id}/clauses", create_clause)
    app.router.add_get("/api/v1/widgets/{widget_id}/clauses", list_clauses)
    app.router.add_get("/api/v1/widgets/{widget_id}/clauses/{version}", get_clause)
    app.router.add_get("/api/v1/widgets/{key}/clause", public_clause)
