"""The widget's calling hours (public, by the widget's key): open now?, the next opening, the
slots a visitor may pick with their free places."""

from __future__ import annotations

from aiohttp import web

from callengine.web.deps import services
from callengine.web.security import widget_of


async def widget_hours(request: web.Request) -> web.Response:
    response = web.json_response(await services(request).hours.public(widget_of(request)))
    response.headers["Cache-Control"] = "no-store"
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/widgets/{key}/hours", widget_hours)
