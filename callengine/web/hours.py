"""The widget's calling hours (public, by the widget's key): open now?, the next opening, the
slots a visitor may pick with their free places."""

from __future__ import annotations

from aiohttp import web

from callengine.web.deps import services
from callengine.web.intake import _cors


async def widget_hours(request: web.Request) -> web.Response:
    found = services(request)
    widget = await found.leads.widget_for_key(request.match_info["key"])
    response = web.json_response(await found.hours.public(widget))
    response.headers["Cache-Control"] = "no-store"
    _cors(request, widget, response)
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/widgets/{key}/hours", widget_hours)
